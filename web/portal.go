package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources/presets"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// loginTimeout bounds a login check against a mail server.
const loginTimeout = 20 * time.Second

func (s *Server) portal(w http.ResponseWriter, r *http.Request) {
	ss := s.sess.get(r)
	if ss != nil && ss.member != "" {
		http.Redirect(w, r, "/me", http.StatusSeeOther)
		return
	}
	ss = s.sess.ensure(w, r, s.secure(r))
	s.render(w, r, "portal", http.StatusOK, view{CSRF: ss.csrf})
}

func (s *Server) memberLogin(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r, s.cfg.Lang)
	ss := s.sess.get(r)
	address := strings.ToLower(strings.TrimSpace(r.PostFormValue("address")))
	fail := func(status int, msg string) {
		ss := s.sess.ensure(w, r, s.secure(r))
		s.render(w, r, "portal", status, view{CSRF: ss.csrf, Error: msg, Data: address})
	}
	if !csrfOK(r, ss) {
		fail(http.StatusForbidden, tr(lang, "csrf"))
		return
	}
	ip := s.clientIP(r)
	keys := []string{"login:" + address + "@" + ip, "ip:" + ip, "any:login:" + address}
	if d := s.lock.locked(keys...); d > 0 {
		fail(http.StatusTooManyRequests, tr(lang, "locked", minutes(d)))
		return
	}
	if !s.slowDown(r, keys...) {
		return
	}
	password := r.PostFormValue("password")
	job, _, err := s.jobsForMember(address)
	// In several jobs: the password is checked on the first's new server,
	// and only then is the member told to ask the admin.
	var several *errSeveralJobs
	if errors.As(err, &several) {
		job, err = several.first, nil
	}
	if errors.Is(err, state.ErrNotFound) || address == "" || password == "" {
		// Counted too: probing for addresses is a failure like any other.
		s.lock.fail(keys...)
		fail(http.StatusUnauthorized, tr(lang, "not.member", address))
		return
	}
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	e := job.Target
	e.User, e.Password, e.AuthzID = address, password, ""
	ctx, cancel := context.WithTimeout(r.Context(), loginTimeout)
	err = s.cfg.Login(ctx, e)
	cancel()
	if err != nil {
		s.cfg.Log.Info("member sign-in refused", "address", address, "err", err)
		if s.lock.fail(keys...) {
			s.event(job.ID, "", "warning", fmt.Sprintf("portal: sign-in for %s locked for %d minutes after repeated failures", address, minutes(s.cfg.LockFor)))
		}
		fail(http.StatusUnauthorized, tr(lang, "bad.login"))
		return
	}
	s.lock.succeed(keys...)
	if several != nil {
		s.severalJobs(address, several, lang, fail)
		return
	}
	sealed, err := s.store.Seal(password)
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	ns := s.sess.create(w, s.secure(r), ss)
	ns.member, ns.job, ns.sealed = address, job.ID, sealed
	http.Redirect(w, r, "/me", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	ss := s.sess.get(r)
	if ss != nil && !csrfOK(r, ss) {
		http.Error(w, tr(langOf(r, s.cfg.Lang), "csrf"), http.StatusForbidden)
		return
	}
	admin := ss != nil && ss.admin
	s.sess.drop(w, ss, s.secure(r))
	if admin {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// meView is the member's page: the old-password form, or their progress.
type meView struct {
	Job      *state.Job
	Account  *state.Account
	OldGuess string // the old address the form suggests
	AuthCode bool   // the old provider wants an authorization code
	Closed   string // the job no longer takes members (date)
	// Waiting: the admin listed the account (CSV, invitation) and it waits
	// for its member's old password; nothing has moved yet, so the page
	// shows the form, not a progress bar.
	Waiting bool
	// CanStart: the page offers the old-password form (no account yet, a
	// listed one waiting, or one that failed and may be tried again).
	CanStart bool
	// History is the member's own account's events (audit.go).
	History []auditRow
}

func (s *Server) meData(ss *session) (*meView, error) {
	job, a, err := s.memberAccount(ss)
	if err != nil {
		return nil, err
	}
	v := &meView{Job: job, Account: a, History: s.memberHistory(job, a)}
	v.Waiting = a != nil && job.AwaitingMember(a)
	v.CanStart = a == nil || v.Waiting || a.State == state.AccountFailed || a.State == state.AccountPartial
	if v.CanStart {
		for _, p := range presets.Providers {
			if p.AuthCode && (p.IMAP.Host != "" && strings.EqualFold(p.IMAP.Host, job.Source.Host) || p.POP3.Host != "" && strings.EqualFold(p.POP3.Host, job.Source.Host)) {
				v.AuthCode = true
			}
		}
	}
	if a == nil {
		local, _, _ := strings.Cut(ss.member, "@")
		if job.Domain != "" {
			v.OldGuess = local + "@" + job.Domain
		}
		// A listed account may start after the window closed (the admin
		// added it); only a new one is refused.
		if !job.Enrolling(time.Now()) {
			v.Closed = job.EnrollUntil.Local().Format("2006-01-02")
		}
	}
	return v, nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	ss := s.sess.get(r)
	if ss == nil || ss.member == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	v, err := s.meData(ss)
	if err != nil {
		s.render(w, r, "portal", http.StatusOK, view{CSRF: ss.csrf, Error: tr(langOf(r, s.cfg.Lang), "not.member", ss.member)})
		return
	}
	s.render(w, r, "me", http.StatusOK, view{CSRF: ss.csrf, Member: ss.member, Data: v, Refresh: v.Account != nil && !v.Waiting,
		Notice: noticeOf(r)})
}

func noticeOf(r *http.Request) string {
	if r.URL.Query().Get("started") == "1" {
		return tr(langOf(r, ""), "started")
	}
	return ""
}

// memberStart checks the old password against the old server and, only if
// it is accepted, enrolls the account and wakes the job.
func (s *Server) memberStart(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r, s.cfg.Lang)
	ss := s.sess.get(r)
	if ss == nil || ss.member == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	v, err := s.meData(ss)
	if err != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	old := strings.ToLower(strings.TrimSpace(r.PostFormValue("old")))
	fail := func(status int, msg string) {
		if old != "" {
			v.OldGuess = old
		}
		s.render(w, r, "me", status, view{CSRF: ss.csrf, Member: ss.member, Data: v, Error: msg})
	}
	if !csrfOK(r, ss) {
		fail(http.StatusForbidden, tr(lang, "csrf"))
		return
	}
	if v.Account != nil && !v.Job.AwaitingMember(v.Account) && v.Account.State != state.AccountFailed && v.Account.State != state.AccountPartial {
		http.Redirect(w, r, "/me", http.StatusSeeOther)
		return
	}
	job := v.Job
	keys := []string{"old:" + ss.member, "ip:" + s.clientIP(r)}
	if d := s.lock.locked(keys...); d > 0 {
		fail(http.StatusTooManyRequests, tr(lang, "locked", minutes(d)))
		return
	}
	if v.Account != nil {
		old = v.Account.Source
	}
	if !strings.Contains(old, "@") && job.Domain != "" {
		old += "@" + job.Domain
	}
	if job.Domain != "" && !strings.HasSuffix(old, "@"+job.Domain) {
		fail(http.StatusBadRequest, tr(lang, "old.domain", job.Domain))
		return
	}
	// Asked before the old password is tried: a stranger's old address is
	// not tried on the old server at all. The answer says whether another
	// member enrolled the address, so asking counts as a failed attempt.
	err = s.m.CheckEnroll(job.ID, ss.member, old)
	if errors.Is(err, migrate.ErrOldTaken) {
		s.probed(job.ID, ss.member, old, keys)
	}
	if s.enrollRefused(job.ID, ss.member, old, err, lang, fail) {
		return
	}
	password := r.PostFormValue("password")
	e := job.Source
	e.User, e.Password = old, password
	ctx, cancel := context.WithTimeout(r.Context(), loginTimeout)
	err = s.cfg.Login(ctx, e)
	if password == "" {
		err = errors.New("no password given")
	}
	cancel()
	if err != nil {
		locked := s.lock.fail(keys...)
		// The admin reads the server's own words in the event log; the
		// member is told what to do, without the old server's internal
		// address or its raw replies.
		s.m.EventOf(state.MemberActor(ss.member), job.ID, old, "warning", wording.New("ev.portal.refused", "member", ss.member, "old", old).Because(fault.WhyOf(err)))
		if locked {
			s.m.EventOf(string(state.Engine), job.ID, old, "warning", wording.New("ev.portal.locked", "member", ss.member, "minutes", strconv.Itoa(minutes(s.cfg.LockFor))))
		}
		fail(http.StatusUnauthorized, tr(lang, oldRefusal(err)))
		return
	}
	s.lock.succeed(keys...)
	err = s.m.Enroll(job.ID, migrate.Enrollment{Member: ss.member, Old: old, Password: password, TargetSecret: ss.sealed, Lang: lang})
	if s.enrollRefused(job.ID, ss.member, old, err, lang, fail) {
		return
	}
	http.Redirect(w, r, "/me?started=1", http.StatusSeeOther)
}

// oldRefusal is the member's wording of why the old server refused the
// old password: only a wrong password is theirs to fix by typing again.
func oldRefusal(err error) string {
	switch fault.RefusalOf(err) {
	case fault.Disabled:
		return "old.disabled"
	case fault.Expired:
		return "old.expired"
	case fault.BadCredentials:
		return "bad.old"
	}
	if fault.Classify(err) == fault.Retry {
		return "old.unreachable"
	}
	return "bad.old"
}

// enrollRefused words the answer when err refuses an enrollment; false
// when there is nothing to refuse.
func (s *Server) enrollRefused(job, member, old string, err error, lang string, fail func(int, string)) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, migrate.ErrOldTaken):
		fail(http.StatusConflict, tr(lang, "old.taken", old))
	case errors.Is(err, migrate.ErrNewTaken):
		s.m.EventBy(state.MemberActor(member), job, old, "warning", fmt.Sprintf("portal: %s could not start: %v", member, err))
		fail(http.StatusConflict, tr(lang, "new.taken"))
	case errors.Is(err, migrate.ErrEnrollClosed):
		j, jerr := s.store.Job(job)
		if jerr != nil {
			fail(http.StatusInternalServerError, jerr.Error())
			break
		}
		fail(http.StatusForbidden, tr(lang, "closed", j.EnrollUntil.Local().Format("2006-01-02")))
	default:
		s.cfg.Log.Error("enrollment failed", "job", job, "member", member, "err", err)
		fail(http.StatusInternalServerError, err.Error())
	}
	return true
}

// apiMe is the member's own progress, for the page's live refresh.
func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) {
	ss := s.sess.get(r)
	if ss == nil || ss.member == "" {
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "sign in first"})
		return
	}
	v, err := s.meData(ss)
	if err != nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
		return
	}
	out := map[string]any{"member": ss.member, "job": v.Job.ID}
	if v.Account != nil {
		lang := langOf(r, s.cfg.Lang)
		a := accountJSON(lang, v.Account)
		// The reason holds the old server's address and replies: the
		// admin's to read, not the member's.
		a.Reason = ""
		out["account"] = a
		out["waiting"] = v.Waiting
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
