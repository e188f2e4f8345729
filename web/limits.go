package web

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// limitBody bounds every request's body (an unauthenticated POST is
// otherwise read whole, and a multipart one spilled to disk) and reads
// forms here, in memory, so that a form too large is answered 413 rather
// than seen by the handler as an empty form.
func (s *Server) limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		limit := s.cfg.MaxBody
		if uploads(r) {
			limit = s.cfg.MaxUpload
		}
		if r.ContentLength > limit {
			// Refused before a byte of it is read; the server closes the
			// connection rather than read the rest.
			s.tooLarge(w, r, limit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			var err error
			switch ct {
			case "multipart/form-data":
				// In memory up to the limit, which the body cannot pass:
				// nothing goes to a temporary file.
				err = r.ParseMultipartForm(limit)
			case "application/x-www-form-urlencoded":
				err = r.ParseForm()
			}
			if err != nil {
				if tooLarge(err) {
					s.tooLarge(w, r, limit)
					return
				}
				s.badRequest(w, r, "cannot read the form: "+err.Error())
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// uploads reports whether a request may carry an accounts CSV: a new job
// or accounts added to one, from the dashboard or the API.
func uploads(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case p == "/admin/jobs" || p == "/api/jobs":
		return true
	case strings.HasSuffix(p, "/accounts"):
		return strings.HasPrefix(p, "/admin/jobs/") || strings.HasPrefix(p, "/api/jobs/")
	}
	return false
}

// tooLarge reports whether err is a body over its limit.
func tooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

func limitText(limit int64) string {
	if limit >= 1<<20 && limit%(1<<20) == 0 {
		return fmt.Sprintf("%d MB", limit>>20)
	}
	return fmt.Sprintf("%d bytes", limit)
}

func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	msg := fmt.Sprintf("the request body is larger than %s, the most this address takes", limitText(limit))
	if uploads(r) {
		msg += ": split the accounts CSV and add the rest to the job"
	}
	// The rest of the body is not read: the connection goes.
	w.Header().Set("Connection", "close")
	s.plainOrJSON(w, r, http.StatusRequestEntityTooLarge, msg)
}

// refuseBody answers a JSON body that could not be read: 413 when it was
// too large, else 400 with the decoder's words.
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request, err error) {
	if tooLarge(err) {
		limit := s.cfg.MaxBody
		if uploads(r) {
			limit = s.cfg.MaxUpload
		}
		s.tooLarge(w, r, limit)
		return
	}
	s.badRequest(w, r, err.Error())
}

func (s *Server) badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	s.plainOrJSON(w, r, http.StatusBadRequest, msg)
}

// plainOrJSON answers an error as the API's JSON or, for pages, as text.
func (s *Server) plainOrJSON(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, apiError{Error: msg})
		return
	}
	http.Error(w, msg, status)
}
