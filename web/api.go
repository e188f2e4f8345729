package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

var timeNow = time.Now

type apiError struct {
	Error string `json:"error"`
}

// api guards the JSON API: the admin token (Authorization: Bearer), or a
// signed-in admin session whose POSTs carry the X-CSRF-Token header.
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request, who string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if d := s.lock.locked("ip:" + s.clientIP(r)); d > 0 {
				writeJSON(w, http.StatusTooManyRequests, apiError{Error: "too many failed attempts; try again later"})
				return
			}
			if !s.adminOK(strings.TrimSpace(tok)) {
				if s.lock.fail("ip:" + s.clientIP(r)) {
					s.adminLocked(s.clientIP(r), "")
				}
				writeJSON(w, http.StatusUnauthorized, apiError{Error: "wrong API token"})
				return
			}
			h(w, r, s.tokenActor())
			return
		}
		ss := s.sess.get(r)
		if ss == nil || !ss.admin {
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "give the admin token (Authorization: Bearer TOKEN) or sign in to the dashboard"})
			return
		}
		if r.Method != http.MethodGet && !csrfOK(r, ss) {
			writeJSON(w, http.StatusForbidden, apiError{Error: "missing or wrong X-CSRF-Token"})
			return
		}
		if r.Method != http.MethodGet && ss.viewer {
			writeJSON(w, http.StatusForbidden, apiError{Error: tr("en", "viewer")})
			return
		}
		h(w, r, who(ss))
	}
}

// accountOut is an account in the API: counts, the seed's wording, no secrets.
type accountOut struct {
	ID        string       `json:"id"`
	Target    string       `json:"target"`
	State     string       `json:"state"`
	StateText string       `json:"state_text"`
	Counts    state.Counts `json:"counts"`
	Summary   string       `json:"summary"`
	Reason    string       `json:"reason,omitempty"`
	// ReasonCode and ReasonArgs are Reason as a catalogue code (absent for
	// a reason kept only as text); Reason is in the language asked for.
	ReasonCode string            `json:"reason_code,omitempty"`
	ReasonArgs map[string]string `json:"reason_args,omitempty"`
	Started    *time.Time        `json:"started,omitempty"`
	Finished   *time.Time        `json:"finished,omitempty"`
}

func accountJSON(lang string, a *state.Account) accountOut {
	out := accountOut{ID: a.ID, Target: a.Target, State: string(a.State), StateText: a.State.Text(lang),
		Counts: a.Counts, Summary: a.Counts.Line(lang), Reason: a.ReasonIn(lang)}
	if a.Why != nil && a.Reason != "" && a.Why.String() == a.Reason {
		out.ReasonCode, out.ReasonArgs = a.Why.Code, a.Why.Args
	}
	if !a.Started.IsZero() {
		t := a.Started
		out.Started = &t
	}
	if !a.Finished.IsZero() {
		t := a.Finished
		out.Finished = &t
	}
	return out
}

// jobOut is a job in the API: the seed's table row and the job's settings,
// with no secret (admin passwords are sealed in the state and left out).
type jobOut struct {
	ID          string         `json:"id"`
	State       string         `json:"state"`
	StateText   string         `json:"state_text"`
	Mode        string         `json:"mode"`
	Domain      string         `json:"domain,omitempty"`
	NewDomain   string         `json:"new_domain,omitempty"`
	Source      string         `json:"source"`
	Target      string         `json:"target"`
	Created     time.Time      `json:"created"`
	EnrollUntil *time.Time     `json:"enroll_until,omitempty"`
	Running     bool           `json:"running"`
	Error       string         `json:"error,omitempty"`
	All         int            `json:"all"`
	Accounts    map[string]int `json:"accounts"` // by state
	Counts      state.Counts   `json:"counts"`
	Summary     string         `json:"summary"`
	// Failures: accounts failed or finished with failures; Waiting:
	// listed members who have not started.
	Failures int `json:"failures"`
	Waiting  int `json:"waiting_members"`
	// ETASeconds: the time left at the rate the job moves now (absent
	// while unknown); OutsideWindow: the job waits for its window.
	ETASeconds    int64 `json:"eta_seconds,omitempty"`
	OutsideWindow bool  `json:"outside_window,omitempty"`
	cutoverOut
}

func jobJSON(lang string, row jobRow) jobOut {
	j := row.Job
	out := jobOut{ID: j.ID, State: string(j.State), StateText: j.State.Text(lang), Mode: j.ModeOf(), Domain: j.Domain,
		NewDomain: j.NewDomain, Source: j.Source.String(), Target: j.Target.String(), Created: j.Created, Running: row.Running,
		Error: row.Err, All: row.All, Accounts: map[string]int{}, Counts: row.Counts,
		Summary: row.Counts.Line(lang), Failures: row.Failures, Waiting: row.Waiting}
	if !j.EnrollUntil.IsZero() {
		t := j.EnrollUntil
		out.EnrollUntil = &t
	}
	out.cutoverOut = cutoverJSON(lang, &j)
	out.ETASeconds, out.OutsideWindow = int64(row.ETA/time.Second), row.Outside
	for _, st := range []state.AccountState{state.AccountNotStarted, state.AccountRunning, state.AccountPaused, state.AccountSucceeded, state.AccountPartial, state.AccountFailed, state.AccountAbandoned} {
		out.Accounts[string(st)] = row.N[string(st)]
	}
	return out
}

func (s *Server) apiJobs(w http.ResponseWriter, r *http.Request, _ string) {
	sts, err := s.m.Summaries()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	lang := langOf(r, s.cfg.Lang)
	out := []jobOut{}
	for _, st := range sts {
		out = append(out, jobJSON(lang, rowOf(st, s.m.Err(st.Job.ID))))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) (*migrate.Status, bool) {
	st, err := s.m.Status(r.PathValue("id"))
	if errors.Is(err, state.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no job " + strconv.Quote(r.PathValue("id"))})
		return nil, false
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return nil, false
	}
	return st, true
}

func (s *Server) apiJob(w http.ResponseWriter, r *http.Request, _ string) {
	sm, ok := s.summary(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, jobJSON(langOf(r, s.cfg.Lang), rowOf(sm, s.m.Err(sm.Job.ID))))
}

func (s *Server) apiAccounts(w http.ResponseWriter, r *http.Request, _ string) {
	st, ok := s.status(w, r)
	if !ok {
		return
	}
	lang := langOf(r, s.cfg.Lang)
	filter := r.URL.Query().Get("state")
	if err := checkStateFilter(filter); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	out := []accountOut{}
	for i := range st.Accounts {
		if accountIn(st.Accounts[i].State, filter) {
			out = append(out, accountJSON(lang, &st.Accounts[i]))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// checkStateFilter refuses a ?state= that names no state: an empty list
// would say no account is in it.
func checkStateFilter(f string) error {
	names := []string{"all", "in_progress"}
	for _, st := range state.States {
		if !slices.Contains(names, string(st)) {
			names = append(names, string(st))
		}
	}
	if f == "" || slices.Contains(names, f) {
		return nil
	}
	return fmt.Errorf("state %q: want one of %s", f, strings.Join(names, ", "))
}

// readBody reads a JSON request body (limitBody bounds its size; a body
// over the limit is an error refuseBody answers with 413).
func readBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if tooLarge(err) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return errors.New("request body: empty; send a JSON object")
		}
		return errors.New("request body: " + err.Error())
	}
	return nil
}

func (s *Server) apiCreateJob(w http.ResponseWriter, r *http.Request, who string) {
	var req JobRequest
	if err := readBody(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	job, _, err := s.createJob(r, &req, who)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	st, err := s.m.Status(job.ID)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusCreated, jobJSON(langOf(r, s.cfg.Lang), rowOf(st.Summary(), nil)))
}

func (s *Server) apiAddAccounts(w http.ResponseWriter, r *http.Request, who string) {
	var req struct {
		Accounts string `json:"accounts"` // CSV
	}
	if err := readBody(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	n, err := s.addAccounts(r.PathValue("id"), req.Accounts, who)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"added": n})
}

func (s *Server) apiControl(w http.ResponseWriter, r *http.Request, who string) {
	id, op := r.PathValue("id"), r.PathValue("op")
	if err := s.m.Control(id, op, who); err != nil {
		status := http.StatusConflict
		if errors.Is(err, state.ErrNotFound) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, apiError{Error: err.Error()})
		return
	}
	s.apiJob(w, r, who)
}

func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request, _ string) {
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	job := r.PathValue("id")
	if job == "" {
		job = r.URL.Query().Get("job")
	}
	evs, err := s.store.Events(job, after, 1000)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	if evs == nil {
		evs = []*state.Event{}
	}
	// Message in the language asked for; Why keeps the code.
	lang := langOf(r, s.cfg.Lang)
	for i, e := range evs {
		evs[i] = inLang(lang, e)
	}
	writeJSON(w, http.StatusOK, evs)
}

func (s *Server) apiCheck(w http.ResponseWriter, r *http.Request, _ string) {
	var req CheckRequest
	if err := readBody(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	rep, err := s.check(r.Context(), &req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) apiProviders(w http.ResponseWriter, r *http.Request, _ string) {
	writeJSON(w, http.StatusOK, s.providers())
}

func (s *Server) apiInvite(w http.ResponseWriter, r *http.Request, who string) {
	n, err := s.invite(r, r.PathValue("id"), who)
	if err != nil {
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"invited": n})
}
