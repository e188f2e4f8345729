package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources/check"
	"github.com/banjia-mail/banjia/sources/presets"
	"github.com/banjia-mail/banjia/state"
)

func (s *Server) adminLoginPage(w http.ResponseWriter, r *http.Request) {
	ss := s.sess.ensure(w, r, s.secure(r))
	s.render(w, r, "adminlogin", http.StatusOK, view{CSRF: ss.csrf})
}

func (s *Server) adminLogin(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r, s.cfg.Lang)
	ss := s.sess.get(r)
	fail := func(status int, msg string) {
		ss := s.sess.ensure(w, r, s.secure(r))
		s.render(w, r, "adminlogin", status, view{CSRF: ss.csrf, Error: msg})
	}
	if !csrfOK(r, ss) {
		fail(http.StatusForbidden, tr(lang, "csrf"))
		return
	}
	ip := s.clientIP(r)
	user := r.PostFormValue("user")
	keys := []string{"admin:" + user + "@" + ip, "ip:" + ip, "any:admin:" + user}
	if d := s.lock.locked(keys...); d > 0 {
		fail(http.StatusTooManyRequests, tr(lang, "locked", minutes(d)))
		return
	}
	if !s.slowDown(r, keys...) {
		return
	}
	name, viewer, ok := s.adminName(user, r.PostFormValue("password"), r.PostFormValue("token"))
	if !ok {
		if s.lock.fail(keys...) {
			s.adminLocked(ip, user)
		}
		fail(http.StatusUnauthorized, tr(lang, "bad.admin"))
		return
	}
	s.lock.succeed(keys...)
	ns := s.sess.create(w, s.secure(r), ss)
	ns.admin, ns.adminName, ns.viewer = true, name, viewer
	ns.member = ""
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// jobRow is one line of the seed's job table.
type jobRow struct {
	Job     state.Job
	All     int
	N       map[string]int
	Counts  state.Counts
	Running bool
	Mode    string
	Err     string
	// Failures counts the accounts that failed or finished with failures:
	// a completed job with any is not shown as a plain success.
	Failures int
	// Waiting counts the listed members who have not started: they have
	// nothing to count yet.
	Waiting int
	// ETA is the time left at the rate the job moves now (0: unknown);
	// Outside: the job waits for its window (Window) to open.
	ETA     time.Duration
	Outside bool
}

func init() {
	funcs["bar"] = barOf
}

// progressBar is an account's <progress>: its value and max are
// attributes, since the content policy refuses inline styles.
type progressBar struct {
	Lang  string
	State string
	// Counting: the account's folders are still being listed, so the
	// number to import still grows and a share of it would run backwards.
	Counting   bool
	Value, Max int64
	Pct        int64
}

// barOf shows how much of an account's mail is on the new server: what
// failed is not, so a partial account's bar stays short of the end.
func barOf(lang string, st state.AccountState, c state.Counts) progressBar {
	b := progressBar{Lang: lang, State: string(st)}
	if st == state.AccountPreparing || st == state.AccountRunning && c.ToImport == 0 {
		b.Counting = true
		return b
	}
	b.Value, b.Max = c.Imported, c.ToImport
	if b.Max <= 0 {
		// Nothing to import: done is all of nothing, anything else none.
		b.Max, b.Value = 1, 0
		if st == state.AccountSucceeded {
			b.Value = 1
		}
	}
	b.Value = min(b.Value, b.Max)
	b.Pct = 100 * b.Value / b.Max
	return b
}

func rowOf(sm *migrate.Summary, err error) jobRow {
	t := &sm.Totals
	row := jobRow{Job: sm.Job, All: t.Accounts, N: map[string]int{}, Running: sm.Attached, Mode: sm.Job.ModeOf(),
		Counts: t.Counts, Waiting: t.Waiting(&sm.Job), ETA: sm.ETA, Outside: sm.Outside}
	for st, n := range t.N {
		row.N[string(st)] += n
	}
	// The seed's table shows preparing accounts as in progress.
	row.N[string(state.AccountRunning)] += row.N[string(state.AccountPreparing)]
	row.Failures = row.N[string(state.AccountFailed)] + row.N[string(state.AccountPartial)]
	if err != nil {
		row.Err = err.Error()
	}
	return row
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, ss *session) {
	sts, err := s.m.Summaries()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var rows []jobRow
	for _, st := range sts {
		rows = append(rows, rowOf(st, s.m.Err(st.Job.ID)))
	}
	sort.Slice(rows, func(i, k int) bool { return rows[i].Job.Created.After(rows[k].Job.Created) })
	v := view{CSRF: ss.csrf, Admin: true, Data: rows, Refresh: true}
	if r.Header.Get("X-Partial") == "" {
		v.Error, v.Notice = s.sess.takeFlash(ss)
	}
	s.render(w, r, "dashboard", http.StatusOK, v)
}

// endView asks the admin to confirm ending or closing a job.
type endView struct {
	Row  jobRow
	Back string // "list" or "job", where the answer returns
	Op   string // end or close
}

// controlForm is a pause / resume / end / start button. End cannot be
// undone, so its button only asks: the job ends when the confirmation
// page's form comes back with confirm set (the content policy allows no
// script for a dialog).
func (s *Server) controlForm(w http.ResponseWriter, r *http.Request, ss *session) {
	id, op := r.PathValue("id"), r.PathValue("op")
	back := "/admin/jobs/" + url.PathEscape(id)
	if r.PostFormValue("back") == "list" {
		back = "/admin"
	}
	if (op == "end" || op == "close") && r.PostFormValue("confirm") == "" {
		st, err := s.m.Summary(id)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		s.render(w, r, "end", http.StatusOK, view{CSRF: ss.csrf, Admin: true,
			Data: endView{Row: rowOf(st, s.m.Err(id)), Back: r.PostFormValue("back"), Op: op}})
		return
	}
	if err := s.m.Control(id, op, who(ss)); err != nil {
		s.sess.flash(ss, err.Error(), "")
	} else if op == "sync" || op == "close" {
		s.sess.flash(ss, "", tr(langOf(r, s.cfg.Lang), op+".done", id))
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

type newJobView struct {
	Providers []presets.Provider
	Modes     []string
	Req       JobRequest
	Check     *check.Report
	// EWSVersions and EWSPresets fill the EWS form (ewsform.go).
	EWSVersions []string
	EWSPresets  []presets.Provider
}

func (s *Server) providers() []presets.Provider {
	var ps []presets.Provider
	for _, n := range presets.ProviderNames() {
		ps = append(ps, presets.Providers[n])
	}
	return ps
}

// jobModes are the new-job form's modes, in the order of its tabs.
var jobModes = []string{state.ModeMember, state.ModePasswords, state.ModeDelegated}

// newJobPage is the form for one mode (?mode=, member by default): each
// mode's own fields and CSV, chosen by a link rather than by script.
func (s *Server) newJobPage(w http.ResponseWriter, r *http.Request, ss *session) {
	mode := r.URL.Query().Get("mode")
	if !slices.Contains(jobModes, mode) {
		mode = state.ModeMember
	}
	req := JobRequest{Mode: mode, Period: "all"}
	ewsForm(r, &req)
	s.render(w, r, "newjob", http.StatusOK, view{CSRF: ss.csrf, Admin: true,
		Data: s.newJobView(req, nil)})
}

func jobRequestOf(r *http.Request) JobRequest {
	f := r.PostFormValue
	req := JobRequest{ID: f("id"), Mode: f("mode"), Domain: f("domain"), NewDomain: f("new_domain"), Provider: f("provider"),
		Protocol: f("protocol"), Source: f("source"), Target: f("target"), TargetAdmin: f("target_admin"),
		TargetAdminPassword: f("target_admin_password"), SourceAdmin: f("source_admin"), SourceAdminPassword: f("source_admin_password"),
		AdminLogin: f("admin_login"), LoginTemplate: f("login_template"), Tenant: f("tenant"), ClientID: f("client_id"), Authority: f("authority"),
		EWSVersion: f("ews_version"), EWSDomain: f("ews_domain"), EWSAuth: f("ews_auth"), Period: f("period"), SkipJunkTrash: f("skip_junk_trash") != "",
		SkipCustomFolders: f("skip_custom_folders") != "", SystemFolders: f("system_folders") != "", Accounts: f("accounts"), Start: true, Invite: f("invite") != ""}
	req.MaxSizeMB, _ = strconv.Atoi(strings.TrimSpace(f("max_size_mb")))
	req.KeepCredentials = f("keep_credentials")
	req.Renames, req.Excludes = lines(f("renames")), lines(f("excludes"))
	if d := strings.TrimSpace(f("enroll_days")); d != "" {
		n, err := strconv.Atoi(d)
		if err == nil {
			req.EnrollDays = &n
		}
	}
	return req
}

func (s *Server) createJobForm(w http.ResponseWriter, r *http.Request, ss *session) {
	req := jobRequestOf(r)
	var err error
	var job *state.Job
	if req.uploaded, err = uploadedAccounts(r); err == nil {
		if err = appCertificate(r, &req); err == nil {
			job, _, err = s.createJob(r, &req, who(ss))
		}
	}
	if err != nil {
		// Secrets typed into the form are not sent back into the page.
		req.TargetAdminPassword, req.SourceAdminPassword, req.Accounts = "", "", ""
		s.render(w, r, "newjob", http.StatusBadRequest, view{CSRF: ss.csrf, Admin: true, Error: err.Error(),
			Data: s.newJobView(req, nil)})
		return
	}
	http.Redirect(w, r, "/admin/jobs/"+url.PathEscape(job.ID), http.StatusSeeOther)
}

func (s *Server) checkForm(w http.ResponseWriter, r *http.Request, ss *session) {
	req := jobRequestOf(r)
	creq := CheckRequest{Provider: req.Provider, Protocol: req.Protocol, Source: req.Source,
		User: r.PostFormValue("check_user"), Password: r.PostFormValue("check_password"),
		EWSVersion: req.EWSVersion, EWSDomain: req.EWSDomain, EWSAuth: req.EWSAuth}
	rep, err := s.check(r.Context(), &creq)
	req.TargetAdminPassword, req.Accounts = "", ""
	v := view{CSRF: ss.csrf, Admin: true, Data: s.newJobView(req, rep)}
	if err != nil {
		v.Error = err.Error()
	}
	s.render(w, r, "newjob", http.StatusOK, v)
}

func (s *Server) addAccountsForm(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	back := "/admin/jobs/" + url.PathEscape(id)
	rows, err := uploadedAccounts(r)
	n := 0
	switch {
	case err != nil:
	case rows != nil:
		n, err = s.m.AddAccounts(id, rows, who(ss))
	default:
		n, err = s.addAccounts(id, r.PostFormValue("accounts"), who(ss))
	}
	if err != nil {
		s.sess.flash(ss, err.Error(), "")
	} else {
		s.sess.flash(ss, "", fmt.Sprintf("%d accounts added or updated", n))
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// addAccounts reads the form's or the API's CSV and adds its accounts.
func (s *Server) addAccounts(id, csv, who string) (int, error) {
	rows, err := migrate.ReadAccounts(strings.NewReader(csv))
	if err != nil {
		return 0, err
	}
	return s.m.AddAccounts(id, rows, who)
}

func (s *Server) inviteForm(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	n, err := s.invite(r, id, who(ss))
	if err != nil {
		s.sess.flash(ss, err.Error(), "")
	} else {
		s.sess.flash(ss, "", tr(langOf(r, s.cfg.Lang), "invited", n))
	}
	http.Redirect(w, r, "/admin/jobs/"+url.PathEscape(id), http.StatusSeeOther)
}
