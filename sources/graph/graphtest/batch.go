package graphtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// MaxBatch is Graph's limit of requests in one $batch.
const MaxBatch = 20

// batchDispatch is how many of a batch's requests Graph hands the Outlook
// service at a time (Graph's throttling guidance): a batch of unordered
// requests stays within a mailbox's 4 at once only if nothing else of the
// app is in flight to that mailbox, which the in-flight count checks.
const batchDispatch = 4

type batchRequest struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	DependsOn []string          `json:"dependsOn"`
}

// batch serves JSON batching: each request is served as if sent alone,
// with the batch's token and its own headers, and counted, limited and
// throttled on its own, as Graph evaluates each against its limits. The
// answer carries each request's status, headers and body (JSON as it is,
// anything else base64). dependsOn is refused: the emulator does not
// order requests.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	valid := strings.HasPrefix(auth, "Bearer ") && s.tokens[strings.TrimPrefix(auth, "Bearer ")]
	s.mu.Unlock()
	if !valid {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "BadRequest", "$batch takes POST.")
		return
	}
	var in struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "Invalid batch payload format.")
		return
	}
	if len(in.Requests) == 0 || len(in.Requests) > MaxBatch {
		writeError(w, http.StatusBadRequest, "BadRequest", "The batch must hold 1 to 20 requests.")
		return
	}
	ids := map[string]bool{}
	for _, q := range in.Requests {
		if q.ID == "" || ids[q.ID] || len(q.DependsOn) > 0 || !strings.HasPrefix(q.URL, "/") {
			writeError(w, http.StatusBadRequest, "BadRequest", "Each request needs a unique id and a URL relative to the version; dependsOn is not emulated.")
			return
		}
		ids[q.ID] = true
	}
	s.mu.Lock()
	s.count("batch")
	s.stats.Batched += len(in.Requests)
	s.mu.Unlock()
	out := make([]map[string]any, len(in.Requests))
	sem := make(chan struct{}, batchDispatch)
	var wg sync.WaitGroup
	for i, q := range in.Requests {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = s.batchItem(r, auth, q)
		})
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, map[string]any{"responses": out})
}

func (s *Server) batchItem(outer *http.Request, auth string, q batchRequest) map[string]any {
	ctx, cancel := context.WithCancel(outer.Context())
	defer cancel() // out of flight once answered
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(q.Method), "https://"+outer.Host+"/v1.0"+q.URL, nil)
	if err != nil {
		return map[string]any{"id": q.ID, "status": http.StatusBadRequest, "body": map[string]any{"error": map[string]any{"code": "BadRequest", "message": "bad url"}}}
	}
	req.Host = outer.Host
	for k, v := range q.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", auth)
	rec := httptest.NewRecorder()
	segs := segments(req.URL.EscapedPath())
	if len(segs) < 2 {
		writeError(rec, http.StatusNotFound, "UnknownPath", "no such path "+q.URL)
	} else {
		s.graph(rec, req, segs[1:], false)
	}
	hdr := map[string]string{}
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v := rec.Header().Get(k); v != "" {
			hdr[k] = v
		}
	}
	item := map[string]any{"id": q.ID, "status": rec.Code, "headers": hdr}
	body := rec.Body.Bytes()
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		item["body"] = json.RawMessage(body)
	} else {
		item["body"] = body // base64, as Graph sends other content types
	}
	return item
}
