package web

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/banjia-mail/banjia/migrate"
)

// ShardView is banjia serve --shards DIR: a read-only view of a job run as
// shards (docs/scale-out.md), for a machine that sees only the shards'
// shared folder: the JSON API with the token, and the dashboard's job list
// and job pages behind banjia serve's sign-in (sharddash.go). It runs
// nothing and changes nothing: pause, resume and end go through the
// folder's order file (banjia job pause --shards DIR).
type ShardView struct {
	// Status merges one job's shards; Jobs names the jobs they hold.
	Status func(job string) (*migrate.Status, error)
	Jobs   func() ([]string, error)
	// Token is the API token every request but /healthz must give
	// (Authorization: Bearer TOKEN).
	Token string
	// The dashboard's sign-in, as in Config: the admin, more admins and
	// viewers (name -> bcrypt hash); the token signs in too. Everyone
	// who signs in only looks.
	AdminUser, AdminPassword string
	Admins, Viewers          map[string]string
	Lang                     string
	SecureCookies            bool
	TrustedProxies           []netip.Prefix
	// Dir is the shards' folder, which the pages name in the command
	// that pauses, resumes or ends a job.
	Dir string
	Log *slog.Logger
}

// Handler serves GET /api/jobs (the job names), GET /api/jobs/JOB (the
// merged status: one job, every shard's accounts), /healthz, and the
// dashboard: /admin/login, /admin (the jobs) and /admin/jobs/JOB.
func (v *ShardView) Handler() (http.Handler, error) {
	mux := http.NewServeMux()
	d, err := newShardDash(v)
	if err != nil {
		return nil, err
	}
	d.routes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /api/jobs", v.guard(func(w http.ResponseWriter, r *http.Request) {
		jobs, err := v.Jobs()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
	}))
	mux.HandleFunc("GET /api/jobs/{job}", v.guard(func(w http.ResponseWriter, r *http.Request) {
		st, err := v.Status(r.PathValue("job"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
	return mux, nil
}

func (v *ShardView) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || v.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(v.Token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "give the admin token (Authorization: Bearer TOKEN)"})
			return
		}
		h(w, r)
	}
}
