package web

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// What a job did not copy (banjia job report), trying it again (banjia job
// retry) and comparing the source with the target (banjia job verify), on
// the dashboard and in the API.

// reportShown is how many rows the report page shows; the CSV has all.
const reportShown = 5000

// reportView is the report page.
type reportView struct {
	Job     string
	Account string // the filter, "" for all
	Rows    []migrate.NotCopied
	Total   int
	// Failed are the rows that failed; Left the folders the job's
	// options left behind (system folders), which are no failure.
	Failed, Left int
	CSV          string // the CSV's address
}

// report lists what the job did not copy, of one account when account is
// set.
func (s *Server) report(r *http.Request, id, account string) ([]migrate.NotCopied, error) {
	if _, err := s.store.Job(id); err != nil {
		return nil, err
	}
	rows, err := migrate.Report(s.store, id)
	if err != nil {
		return nil, err
	}
	migrate.InLang(rows, langOf(r, s.cfg.Lang))
	if account == "" {
		return rows, nil
	}
	var out []migrate.NotCopied
	for _, r := range rows {
		if strings.EqualFold(r.Account, account) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *Server) reportPage(w http.ResponseWriter, r *http.Request, ss *session) {
	id, account := r.PathValue("id"), strings.TrimSpace(r.URL.Query().Get("account"))
	rows, err := s.report(r, id, account)
	if errors.Is(err, state.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if r.URL.Query().Get("format") == "csv" {
		writeReportCSV(w, id, rows)
		return
	}
	csvURL := "/admin/jobs/" + url.PathEscape(id) + "/report.csv"
	if account != "" {
		csvURL += "?account=" + url.QueryEscape(account)
	}
	v := reportView{Job: id, Account: account, Total: len(rows), Rows: rows, CSV: csvURL}
	for _, r := range rows {
		if r.LeftBehind {
			v.Left++
		} else {
			v.Failed++
		}
	}
	if len(v.Rows) > reportShown {
		v.Rows = v.Rows[:reportShown]
	}
	s.render(w, r, "report", http.StatusOK, view{CSRF: ss.csrf, Admin: true, Data: v})
}

func (s *Server) reportCSV(w http.ResponseWriter, r *http.Request, _ *session) {
	id := r.PathValue("id")
	rows, err := s.report(r, id, strings.TrimSpace(r.URL.Query().Get("account")))
	if errors.Is(err, state.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeReportCSV(w, id, rows)
}

func (s *Server) apiReport(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	rows, err := s.report(r, id, strings.TrimSpace(r.URL.Query().Get("account")))
	if errors.Is(err, state.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no job " + strconv.Quote(id)})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	if r.URL.Query().Get("format") == "csv" {
		writeReportCSV(w, id, rows)
		return
	}
	if rows == nil {
		rows = []migrate.NotCopied{}
	}
	writeJSON(w, http.StatusOK, rows)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// writeReportCSV sends the report as a download, as `banjia job report
// --csv` prints it, with a byte order mark: without one, Excel in a Chinese
// locale reads UTF-8 as GBK and garbles the folder names.
func writeReportCSV(w http.ResponseWriter, id string, rows []migrate.NotCopied) {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="banjia-%s-not-copied.csv"`, unsafeName.ReplaceAllString(id, "_")))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("\uFEFF"))
	cw := csv.NewWriter(w)
	cw.Write([]string{"account", "folder", "uid", "date", "size", "reason"})
	for _, r := range rows {
		uid, date, size := "-", "-", "-"
		if r.UID != 0 {
			uid = strconv.FormatUint(uint64(r.UID), 10)
		}
		if !r.Date.IsZero() {
			date = r.Date.UTC().Format(time.RFC3339)
		}
		if r.Size != 0 {
			size = strconv.FormatInt(r.Size, 10)
		}
		cw.Write([]string{cell(r.Account), cell(r.Folder), uid, date, size, cell(r.Reason)})
	}
	cw.Flush()
}

// cell keeps a spreadsheet from reading text as a formula: a folder name is
// whatever the mailbox's owner typed.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// retryForm is the job page's "Retry failed" button.
func (s *Server) retryForm(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	ids, _, err := s.retry(id, who(ss))
	if err != nil {
		s.sess.flash(ss, err.Error(), "")
	} else {
		s.sess.flash(ss, "", tr(langOf(r, s.cfg.Lang), "retried", len(ids), strings.Join(ids, ", ")))
	}
	http.Redirect(w, r, "/admin/jobs/"+url.PathEscape(id), http.StatusSeeOther)
}

func (s *Server) apiRetry(w http.ResponseWriter, r *http.Request, who string) {
	id := r.PathValue("id")
	ids, status, err := s.retry(id, who)
	if err != nil {
		writeJSON(w, status, apiError{Error: err.Error()})
		return
	}
	st, err := s.m.Status(id)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"retried": ids, "job": jobJSON(langOf(r, s.cfg.Lang), rowOf(st.Summary(), s.m.Err(id)))})
}

// retry runs the job's failed and partly failed accounts again; the
// manager records who asked.
func (s *Server) retry(id, who string) ([]string, int, error) {
	ids, err := s.m.Retry(id, who, nil)
	if errors.Is(err, state.ErrNotFound) {
		return nil, http.StatusNotFound, err
	}
	if err != nil {
		return nil, http.StatusConflict, err
	}
	return ids, http.StatusOK, nil
}

// verification is one `verify` of a job, running or done; never changed
// once published (a new state replaces it).
type verification struct {
	Job      string
	By       string
	Deep     bool
	Accounts []string
	Running  bool
	Started  time.Time
	Finished time.Time
	Err      string
	Checks   []migrate.FolderCheck
}

// Folders counts the folders checked; Differ those that do not hold their
// source's messages once; Unchecked the accounts that could not be checked
// at all (e.g. no password stored).
func (v *verification) Folders() int {
	n := 0
	for _, c := range v.Checks {
		if c.Folder != "" {
			n++
		}
	}
	return n
}

func (v *verification) Differ() int {
	n := 0
	for _, c := range v.Checks {
		if c.Folder != "" && !c.OK() {
			n++
		}
	}
	return n
}

func (v *verification) Unchecked() int {
	n := 0
	for _, c := range v.Checks {
		if c.Folder == "" && c.Error != "" {
			n++
		}
	}
	return n
}

// OK: the check ran and every folder holds its source's messages once.
func (v *verification) OK() bool {
	if v.Running || v.Err != "" {
		return false
	}
	for _, c := range v.Checks {
		if !c.OK() {
			return false
		}
	}
	return v.Folders() > 0
}

// Mode is "deep" or "quick".
func (v *verification) Mode() string {
	if v.Deep {
		return "deep"
	}
	return "quick"
}

// Bad lists the checks that are not OK, each in a line.
func (v *verification) Bad() []string {
	var out []string
	for _, c := range v.Checks {
		if c.OK() {
			continue
		}
		if c.Folder == "" {
			out = append(out, fmt.Sprintf("%s: not checked: %s", c.Account, c.Error))
			continue
		}
		out = append(out, migrate.VerifyLine(c))
	}
	return out
}

func (v *verification) summary() wording.Reason {
	mode := wording.New("verify." + v.Mode())
	if v.Err != "" {
		return wording.New("ev.job.verified.failed", "job", v.Job, "err", v.Err).With("mode", mode)
	}
	var unchecked wording.Reason
	if n := v.Unchecked(); n > 0 {
		code := "verify.unchecked"
		if n == 1 {
			code += ".1"
		}
		unchecked = wording.New(code, "n", strconv.Itoa(n))
	}
	// The differences name folders and counts: shown as the check wrote them.
	bad := ""
	for i, b := range v.Bad() {
		if i == 5 {
			bad += "; ..."
			break
		}
		bad += "; " + b
	}
	return wording.New("ev.job.verified", "job", v.Job, "folders", strconv.Itoa(v.Folders()), "differ", strconv.Itoa(v.Differ()), "bad", bad).
		With("mode", mode).With("unchecked", unchecked)
}

// verifications keeps the last verification of each job, in memory.
type verifications struct {
	mu sync.Mutex
	m  map[string]*verification
}

func (vs *verifications) get(job string) *verification {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return vs.m[job]
}

// verifyError carries an HTTP status.
type verifyError struct {
	status int
	msg    string
}

func (e *verifyError) Error() string { return e.msg }

// verify starts comparing the job's source and target in the background.
func (s *Server) verify(id string, accounts []string, deep bool, who string) (*verification, error) {
	if _, err := s.store.Job(id); err != nil {
		return nil, &verifyError{http.StatusNotFound, fmt.Sprintf("job %q: %v", id, err)}
	}
	if len(accounts) > 0 {
		accts, err := s.store.Accounts(id)
		if err != nil {
			return nil, err
		}
		// Old addresses as the job spells them.
		for i, a := range accounts {
			found := false
			for _, k := range accts {
				if strings.EqualFold(k.ID, a) {
					accounts[i], found = k.ID, true
					break
				}
			}
			if !found {
				return nil, &verifyError{http.StatusBadRequest, fmt.Sprintf("job %s has no account %s", id, a)}
			}
		}
	}
	if a := s.m.Copying(id, accounts); a != "" {
		return nil, &verifyError{http.StatusConflict, fmt.Sprintf("job %s is copying %s now: verify once it has finished (a running copy makes the counts move)", id, a)}
	}
	s.verifies.mu.Lock()
	if v := s.verifies.m[id]; v != nil && v.Running {
		s.verifies.mu.Unlock()
		return nil, &verifyError{http.StatusConflict, fmt.Sprintf("job %s is being verified already (since %s)", id, v.Started.Local().Format("15:04:05"))}
	}
	v := &verification{Job: id, By: state.Actor(who).String(), Deep: deep, Accounts: accounts, Running: true, Started: timeNow()}
	s.verifies.m[id] = v
	s.verifies.mu.Unlock()
	code := "ev.admin.verify.quick"
	if deep {
		code = "ev.admin.verify.deep"
	}
	why := wording.New(code, "who", who, "job", id)
	if len(accounts) > 0 {
		why = wording.New(code+".some", "who", who, "job", id, "accounts", strings.Join(accounts, ", "))
	}
	s.m.EventOf(who, id, "", "admin.verify", why)
	go func() {
		checks, err := s.m.Verify(context.Background(), id, accounts, deep)
		done := *v
		done.Running, done.Finished, done.Checks = false, timeNow(), checks
		if err != nil {
			done.Err = err.Error()
		}
		s.verifies.mu.Lock()
		s.verifies.m[id] = &done
		s.verifies.mu.Unlock()
		s.m.EventOf(string(state.Engine), id, "", "job.verified", done.summary())
	}()
	return v, nil
}

func verifyStatus(err error) int {
	var ve *verifyError
	if errors.As(err, &ve) {
		return ve.status
	}
	return http.StatusInternalServerError
}

// verifyForm is the job page's Verify form.
func (s *Server) verifyForm(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	var accounts []string
	if a := strings.TrimSpace(r.PostFormValue("account")); a != "" {
		accounts = []string{a}
	}
	if _, err := s.verify(id, accounts, r.PostFormValue("deep") != "", who(ss)); err != nil {
		s.sess.flash(ss, err.Error(), "")
	} else {
		s.sess.flash(ss, "", tr(langOf(r, s.cfg.Lang), "verify.started"))
	}
	http.Redirect(w, r, "/admin/jobs/"+url.PathEscape(id), http.StatusSeeOther)
}

// verifyOut is a verification in the API.
type verifyOut struct {
	Job       string                `json:"job"`
	Running   bool                  `json:"running"`
	By        string                `json:"by,omitempty"`
	Deep      bool                  `json:"deep"`
	Accounts  []string              `json:"accounts,omitempty"`
	Started   time.Time             `json:"started"`
	Finished  *time.Time            `json:"finished,omitempty"`
	Error     string                `json:"error,omitempty"`
	Folders   int                   `json:"folders"`
	Differ    int                   `json:"differ"`
	Unchecked int                   `json:"unchecked_accounts"`
	OK        bool                  `json:"ok"`
	Checks    []migrate.FolderCheck `json:"checks"`
}

func verifyJSON(v *verification) verifyOut {
	out := verifyOut{Job: v.Job, Running: v.Running, By: v.By, Deep: v.Deep, Accounts: v.Accounts, Started: v.Started,
		Error: v.Err, Folders: v.Folders(), Differ: v.Differ(), Unchecked: v.Unchecked(), OK: v.OK(), Checks: v.Checks}
	if !v.Finished.IsZero() {
		t := v.Finished
		out.Finished = &t
	}
	if out.Checks == nil {
		out.Checks = []migrate.FolderCheck{}
	}
	return out
}

// apiVerify starts a verification: ?deep=1, ?account=A (repeat for more).
func (s *Server) apiVerify(w http.ResponseWriter, r *http.Request, who string) {
	q := r.URL.Query()
	deep, _ := strconv.ParseBool(q.Get("deep"))
	var accounts []string
	for _, a := range q["account"] {
		if a = strings.TrimSpace(a); a != "" {
			accounts = append(accounts, a)
		}
	}
	v, err := s.verify(r.PathValue("id"), accounts, deep, who)
	if err != nil {
		writeJSON(w, verifyStatus(err), apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, verifyJSON(v))
}

// apiVerifyResult is the job's last verification (running or done).
func (s *Server) apiVerifyResult(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	if _, err := s.store.Job(id); err != nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no job " + strconv.Quote(id)})
		return
	}
	v := s.verifies.get(id)
	if v == nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "job " + id + " has not been verified since banjia serve started"})
		return
	}
	writeJSON(w, http.StatusOK, verifyJSON(v))
}
