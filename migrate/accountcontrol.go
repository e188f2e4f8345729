package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// Per-account control: the admin pauses, resumes, abandons (放弃), retries
// or moves to the front of the queue one account or a set of them, while
// the job runs or not.
//
// A request reaches an account in one of two places, never between them
// (Runner.ctl orders the two):
//   - live (a round is copying it): pause and abandon stop it at its next
//     message boundary (its own edge, a child of the round's), and the
//     account records what it became when it unwinds (accountHold);
//   - stored (queued, waiting, finished, or no run at all): the record
//     changes at once, and a round taking accounts to start reads it again
//     before it starts one (Runner.next).
//
// Account states a request moves between:
//
//	not started, in progress --pause--> paused --resume--> not started (never began) or in progress (began)
//	anything but succeeded ----abandon--> abandoned (kept out of a job-wide retry; retried when named)
//	failed, finished with failures (any state when named) --retry--> not started (Manager.Retry)
//	not started, in progress (queued) --first--> the same, taken before every other queued account
//
// A paused account keeps the job running (the job waits for it, as a
// paused job waits for Resume); end abandons it with the rest. A resume
// that comes while the account is still stopping for its pause lets it go
// on (unhold), or, once it has stopped, is carried out as it leaves
// (stopDone).

// Per-account operations.
const (
	AccountPause   = "pause"
	AccountResume  = "resume"
	AccountAbandon = "abandon"
	AccountRetry   = "retry"
	AccountFirst   = "first"
)

// AccountOps lists the per-account operations, in the order help shows them.
var AccountOps = []string{AccountPause, AccountResume, AccountAbandon, AccountRetry, AccountFirst}

// AccountRequest is an admin's per-account control: an operation on the
// accounts named, or on every account in a state.
type AccountRequest struct {
	Op       string   `json:"op"`
	Accounts []string `json:"accounts,omitempty"` // old addresses
	// State selects every account in this state (as the account list
	// filters: failed, partial, in_progress, paused, ...) instead of names.
	State string `json:"state,omitempty"`
}

// accountHold is what a live account becomes when a request stops it.
type accountHold struct {
	to  state.AccountState // paused or abandoned
	who string
}

func (h *accountHold) reason() wording.Reason {
	if h.to == state.AccountAbandoned {
		return wording.New("abandoned.by", "who", h.who)
	}
	return wording.New("paused.by", "who", h.who)
}

func (h *accountHold) kind() string { return "account." + string(h.to) }

func (h *accountHold) line(id string) wording.Reason {
	return wording.New("ev.account.held", "id", id).Because(h.reason())
}

// takeHold is the request that stopped the account, if any still stands.
func (a *accountRun) takeHold() *accountHold {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.hold
	a.hold = nil
	return h
}

// stopDone releases the account's edge once its run is over (it is no
// longer live) and says whether a request stopped it: the round then no
// longer counts it as running, and takes it again once it is resumed. A
// resume that came after it had stopped as paused, while it was still
// live, is carried out now on the stored record.
func (a *accountRun) stopDone() bool {
	a.stopEdge(nil)
	r := a.r
	r.ctl.Lock()
	defer r.ctl.Unlock()
	a.mu.Lock()
	held, resumed, pending := a.held, a.resumed, a.hold
	a.hold = nil
	a.mu.Unlock()
	if resumed {
		if err := r.resumeStored(a.job.ID, a.acct.ID, a.resumedBy); err != nil {
			r.cfg.Log.Error("account not resumed", "job", a.job.ID, "account", a.acct.ID, "err", err)
		}
	}
	if pending != nil {
		if err := r.holdStored(a.job.ID, a.acct.ID, pending); err != nil {
			r.cfg.Log.Error("account request not applied", "job", a.job.ID, "account", a.acct.ID, "err", err)
		}
	}
	return held
}

// holdStored carries out on the stored record a pause or an abandon that
// reached the account after its run had decided how it ends (it was
// still live, so the request went to the run): an account abandoned as
// it failed is abandoned, not left failed.
func (r *Runner) holdStored(jobID, id string, h *accountHold) error {
	a, err := r.store.Account(jobID, id)
	if err != nil {
		return err
	}
	op := AccountPause
	if h.to == state.AccountAbandoned {
		op = AccountAbandon
	}
	if accountOpFits(op, a.State) != "" {
		return nil
	}
	a.State = h.to
	if h.to == state.AccountAbandoned {
		a.Finished = time.Now().UTC()
	}
	a.SetReason(h.reason())
	if err := r.store.PutAccounts(jobID, a); err != nil {
		return err
	}
	r.eventOfBy(h.who, jobID, id, h.kind(), h.line(id))
	return nil
}

// resumeStored puts a paused account back in the queue, as stored.
func (r *Runner) resumeStored(jobID, id, who string) error {
	a, err := r.store.Account(jobID, id)
	if err != nil || a.State != state.AccountPaused {
		return err
	}
	a.State, a.Reason = state.AccountNotStarted, ""
	if !a.Started.IsZero() {
		a.State = state.AccountRunning
	}
	if err := r.store.PutAccounts(jobID, a); err != nil {
		return err
	}
	r.eventOfBy(who, jobID, id, "account.resumed", wording.New("ev.account.resumed.by", "id", id, "who", who))
	return nil
}

// request stops a live account at its next message boundary as h says.
func (a *accountRun) request(h *accountHold) {
	a.mu.Lock()
	a.hold, a.held = h, true
	a.mu.Unlock()
	a.stopEdge(errStopped)
}

// unhold lets an account that is stopping for a pause go on: it is left
// in progress and the round takes it again; one that has stopped paused
// already is resumed as it leaves (stopDone). It reports whether the
// account was paused or stopping for a pause.
func (a *accountRun) unhold(who string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.hold != nil && a.hold.to == state.AccountPaused:
		a.hold = nil
		return true
	case a.hold == nil && a.acct.State == state.AccountPaused:
		a.resumed, a.resumedBy = true, who
		return true
	}
	return false
}

// next takes from the queue the account to start now, the one the admin
// moved to the front last, else the first queued, and makes it live. The
// stored record is read again: an account paused or abandoned since the
// queue was made is dropped. nil when the queue has nothing to start.
func (r *Runner) next(job *state.Job, queue *[]*state.Account, edge context.Context) *accountRun {
	r.ctl.Lock()
	defer r.ctl.Unlock()
	for len(*queue) > 0 {
		q := *queue
		i := 0
		r.mu.Lock()
		for k := range q {
			if r.front[q[k].ID].After(r.front[q[i].ID]) {
				i = k
			}
		}
		r.mu.Unlock()
		a := q[i]
		*queue = append(q[:i:i], q[i+1:]...)
		if cur, err := r.store.Account(job.ID, a.ID); err == nil {
			if cur.State == state.AccountPaused || cur.State == state.AccountAbandoned {
				continue
			}
			a = cur
		}
		return r.newAccountRun(job, a, edge)
	}
	return nil
}

// noteFront remembers which accounts the admin moved to the front before
// this run (their records say when).
func (r *Runner) noteFront(accts []*state.Account) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range accts {
		if !a.First.IsZero() && a.First.After(r.front[a.ID]) {
			r.front[a.ID] = a.First
		}
	}
}

// holds are the live accounts stopping for a request, and what they become.
func (r *Runner) holds() map[string]state.AccountState {
	r.mu.Lock()
	live := make([]*accountRun, 0, len(r.live))
	for _, ar := range r.live {
		live = append(live, ar)
	}
	r.mu.Unlock()
	out := map[string]state.AccountState{}
	for _, ar := range live {
		ar.mu.Lock()
		if ar.hold != nil {
			out[ar.acct.ID] = ar.hold.to
		}
		ar.mu.Unlock()
	}
	return out
}

func (r *Runner) liveRun(id string) *accountRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[id]
}

// CheckAccountFilter says why a state filter is refused, or nil.
func CheckAccountFilter(f string) error {
	if f == "" || f == "all" {
		return nil
	}
	for _, st := range state.States {
		if string(st) == f {
			return nil
		}
	}
	names := []string{"all"}
	for _, st := range state.States {
		names = append(names, string(st))
	}
	return fmt.Errorf("state %q: want one of %s", f, strings.Join(names, ", "))
}

// AccountIn reports whether an account in state st is in the filter f
// ("" or "all": every account; in_progress takes preparing in too, as the
// job table counts them).
func AccountIn(st state.AccountState, f string) bool {
	switch f {
	case "", "all":
		return true
	case string(state.AccountRunning):
		return st == state.AccountRunning || st == state.AccountPreparing
	}
	return string(st) == f
}

// accountOpFits says why op does not apply to an account in state st, or "".
func accountOpFits(op string, st state.AccountState) string {
	switch op {
	case AccountPause:
		if st == state.AccountNotStarted || st == state.AccountPreparing || st == state.AccountRunning {
			return ""
		}
		if st == state.AccountPaused {
			return "is paused already"
		}
		return "has finished (" + string(st) + ")"
	case AccountResume:
		if st == state.AccountPaused {
			return ""
		}
		return "is not paused (" + string(st) + ")"
	case AccountAbandon:
		switch st {
		case state.AccountSucceeded:
			return "has succeeded: every message is on the target"
		case state.AccountAbandoned:
			return "is abandoned already"
		}
		return ""
	case AccountFirst:
		switch {
		case st == state.AccountPaused:
			return "is paused: resume it first"
		case st.Finished():
			return "has finished (" + string(st) + "): retry it to run it again"
		}
		return ""
	}
	return ""
}

// AccountControl carries out a per-account request on a job, running or
// not, and records who asked. It returns the accounts it changed (for
// first: those moved to the front; an account already copying is left
// out). Named accounts must all fit the operation, or nothing changes.
func (m *Manager) AccountControl(jobID string, req AccountRequest, who string) ([]string, error) {
	if !slices.Contains(AccountOps, req.Op) {
		return nil, fmt.Errorf("unknown account operation %q: want %s", req.Op, strings.Join(AccountOps, ", "))
	}
	job, err := m.store.Job(jobID)
	if err != nil {
		return nil, err
	}
	if len(req.Accounts) > 0 && req.State != "" {
		return nil, errors.New("give account addresses or a state, not both")
	}
	if len(req.Accounts) == 0 && req.State == "" {
		return nil, fmt.Errorf("which accounts? give their old addresses, or a state (e.g. failed) to %s every account in it", req.Op)
	}
	if err := CheckAccountFilter(req.State); err != nil {
		return nil, err
	}
	if job.State == state.JobEnded {
		return nil, fmt.Errorf("job %s was ended; create a new job to move its remaining accounts", jobID)
	}
	st, err := m.Status(jobID)
	if err != nil {
		return nil, err
	}
	now := map[string]state.AccountState{}
	for _, a := range st.Accounts {
		now[a.ID] = a.State
	}
	if r := m.runner(jobID); r != nil {
		// An account stopping for a request is what it will be: a pause
		// and a resume in quick succession both count.
		for id, to := range r.holds() {
			now[id] = to
		}
	}
	var ids []string
	if len(req.Accounts) > 0 {
		var bad []string
		seen := map[string]bool{}
		for _, id := range req.Accounts {
			id = strings.TrimSpace(id)
			if seen[id] {
				continue
			}
			seen[id] = true
			s, ok := now[id]
			if !ok {
				return nil, fmt.Errorf("job %s has no account %s", jobID, id)
			}
			if why := accountOpFits(req.Op, s); why != "" && req.Op != AccountRetry {
				bad = append(bad, id+" "+why)
			}
			ids = append(ids, id)
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("cannot %s: %s", req.Op, strings.Join(bad, "; "))
		}
	} else {
		for _, a := range st.Accounts {
			if AccountIn(a.State, req.State) && (req.Op == AccountRetry || accountOpFits(req.Op, a.State) == "") {
				ids = append(ids, a.ID)
			}
		}
		if len(ids) == 0 {
			f := req.State
			if f == "all" {
				f = "any state"
			}
			return nil, fmt.Errorf("job %s has no account in %s that can be %s", jobID, f, opDone(req.Op))
		}
	}
	if req.Op == AccountRetry {
		// Retry checks and records it.
		return m.Retry(jobID, who, ids)
	}
	m.EventOf(who, jobID, "", "admin.account", wording.New(one("ev.admin.account", len(ids)), "who", who, "op", req.Op, "n", strconv.Itoa(len(ids)),
		"job", jobID, "names", listed(ids)))
	r := m.runner(jobID)
	if r != nil {
		r.ctl.Lock()
		defer r.ctl.Unlock()
	}
	var done []string
	wake := false
	for _, id := range ids {
		changed, woke, err := m.accountOp(job, r, id, req.Op, who)
		if err != nil {
			return done, err
		}
		if changed {
			done = append(done, id)
		}
		wake = wake || woke
	}
	m.changes.notify()
	if wake {
		if r != nil {
			r.Wake()
		} else if job.State != state.JobCreated {
			// The job goes on where this process runs it; elsewhere the
			// account waits for the job's next start.
			if err := m.Wake(jobID); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// accountOp applies op to one account, live in r or as stored; r.ctl is
// held when r is set. woke says the job has work it did not have.
func (m *Manager) accountOp(job *state.Job, r *Runner, id, op, who string) (changed, woke bool, err error) {
	var ar *accountRun
	if r != nil {
		ar = r.liveRun(id)
	}
	if ar != nil {
		switch op {
		case AccountPause, AccountAbandon:
			ar.request(&accountHold{to: state.AccountState(opState(op)), who: who})
			return true, false, nil
		case AccountResume:
			// Still stopping for the pause: it goes on instead.
			return ar.unhold(who), false, nil
		case AccountFirst:
			// Copying already.
			return false, false, nil
		}
	}
	a, err := m.store.Account(job.ID, id)
	if err != nil {
		return false, false, err
	}
	if why := accountOpFits(op, a.State); why != "" {
		// Its run ended meanwhile: say so, but the others go on.
		m.cfg.Log.Info("account request not applied", "job", job.ID, "account", id, "op", op, "why", why)
		return false, false, nil
	}
	kind, line := "", wording.Reason{}
	actor := who
	switch op {
	case AccountPause:
		a.State = state.AccountPaused
		a.SetReason(wording.New("paused.by", "who", who))
		kind, line = "account.paused", wording.New("ev.account.paused.by", "id", id, "who", actor)
	case AccountAbandon:
		a.State, a.Finished = state.AccountAbandoned, time.Now().UTC()
		a.SetReason(wording.New("abandoned.by", "who", who))
		kind, line = "account.abandoned", wording.New("ev.account.abandoned.by", "id", id, "who", actor)
	case AccountResume:
		a.State, a.Reason = state.AccountNotStarted, ""
		if !a.Started.IsZero() {
			a.State = state.AccountRunning
		}
		kind, line, woke = "account.resumed", wording.New("ev.account.resumed.by", "id", id, "who", actor), true
	case AccountFirst:
		a.First = time.Now().UTC()
		if r != nil {
			r.mu.Lock()
			r.front[id] = a.First
			r.mu.Unlock()
		}
		kind, line = "account.first", wording.New("ev.account.first", "id", id, "who", actor)
	}
	if err := m.store.PutAccounts(job.ID, a); err != nil {
		return false, false, err
	}
	m.EventOf(who, job.ID, id, kind, line)
	return true, woke, nil
}

func opState(op string) string {
	if op == AccountAbandon {
		return string(state.AccountAbandoned)
	}
	return string(state.AccountPaused)
}

func opDone(op string) string {
	switch op {
	case AccountPause:
		return "paused"
	case AccountResume:
		return "resumed"
	case AccountAbandon:
		return "abandoned"
	case AccountRetry:
		return "retried"
	}
	return "moved to the front"
}

// listed names at most ten accounts.
func listed(ids []string) string {
	if len(ids) > 10 {
		return strings.Join(ids[:10], ", ") + fmt.Sprintf(" and %d more", len(ids)-10)
	}
	return strings.Join(ids, ", ")
}
