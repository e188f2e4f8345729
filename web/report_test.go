package web_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/wording"
)

// verifyResult is GET /api/jobs/{id}/verify.
type verifyResult struct {
	Running   bool
	By        string
	Deep      bool
	Error     string
	Folders   int
	Differ    int
	Unchecked int `json:"unchecked_accounts"`
	OK        bool
	Checks    []migrate.FolderCheck
}

// waitVerify waits for the job's verification to finish.
func (s *site) waitVerify(job string) verifyResult {
	s.t.Helper()
	var v verifyResult
	waitFor(s.t, "the verification", 2*time.Minute, func() bool {
		v = verifyResult{}
		return s.api("GET", "/api/jobs/"+job+"/verify", nil, &v) == http.StatusOK && !v.Running
	})
	return v
}

// download GETs a file with the client's cookies and returns its headers.
func (c *client) download(path string) (int, http.Header, string) {
	c.s.t.Helper()
	req, _ := http.NewRequest("GET", c.s.http.URL+path, nil)
	resp, err := c.c.Do(req)
	if err != nil {
		c.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.s.seen.Write(b)
	return resp.StatusCode, resp.Header, string(b)
}

// readReportCSV checks the report download: an attachment, UTF-8 with a
// byte order mark (for Excel), the CLI's header.
func readReportCSV(t *testing.T, hd http.Header, body string) [][]string {
	t.Helper()
	if ct := hd.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("CSV Content-Type %q", ct)
	}
	if cd := hd.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, ".csv") {
		t.Errorf("CSV Content-Disposition %q", cd)
	}
	rest, ok := strings.CutPrefix(body, "\uFEFF")
	if !ok {
		t.Errorf("the CSV does not begin with a byte order mark: %q", body[:min(len(body), 20)])
	}
	rows, err := csv.NewReader(strings.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v\n%s", err, body)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "account,folder,uid,date,size,reason" {
		t.Fatalf("CSV header: %q", rows)
	}
	return rows
}

// TestNotCopiedReportRetryVerify: the target (a real Dovecot) refuses one
// folder of one account. The dashboard and the API say the account finished
// with failures and list the messages left behind with the server's reason
// (page, CSV, JSON); a verification finds the folder missing; once the
// admin has fixed the cause (a rename), the Retry button copies exactly
// those messages, once, and the account succeeds. A viewer reads the report
// and the verification but can start neither a retry nor a verification.
// A passwords job has finished when the button is pressed; a
// member-triggered one is still running, waiting for its members.
func TestNotCopiedReportRetryVerify(t *testing.T) {
	for _, mode := range []string{"passwords", "member"} {
		t.Run(mode, func(t *testing.T) { testNotCopied(t, mode) })
	}
}

func testNotCopied(t *testing.T, mode string) {
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	s := newSite(t, siteOptions{accounts: 2, messages: 10, sourceConfig: migratetest.ListEscape,
		admins: map[string]string{"alice": hash("alice-pw-9")}, viewers: map[string]string{"vera": hash("vera-pw-8")}})
	s.secrets = append(s.secrets, "alice-pw-9", "vera-pw-8")
	u, other := s.w.Users[0], s.w.Users[1]
	s.w.AddRefusedFolder(u)
	before := s.w.Sources()
	if len(before[u.Old]["~home"]) != 3 {
		t.Fatalf("the source does not hold ~home: %v", before[u.Old])
	}

	const job = "fix"
	req := map[string]any{"id": job, "mode": mode, "source": s.endpointURL(s.w.Src.IMAPAddr), "target": s.endpointURL(s.w.Dst.IMAPAddr),
		"accounts": s.w.CSV(), "start": true}
	if mode == "member" {
		req["domain"], req["new_domain"] = "old.test", "new.test"
	}
	var out map[string]any
	if code := s.api("POST", "/api/jobs", req, &out); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	a := s.waitAccount(job, u.Old, "partial", 2*time.Minute)
	s.waitAccount(job, other.Old, "succeeded", 2*time.Minute)
	if mode == "passwords" {
		waitFor(t, "the job to complete", 30*time.Second, func() bool { return s.jobState(job) == "completed" })
	} else if st := s.jobState(job); st != "running" {
		t.Fatalf("a member job with its window open is %q, want running", st)
	}
	if a.StateText != "finished with failures" || a.Counts.Failed != 3 || !strings.Contains(a.Reason, `3 messages: folder "~home" not copied`) ||
		!strings.Contains(a.Reason, "Begins with '~'") {
		t.Fatalf("account with a refused folder: %+v", a)
	}

	// The job page says what was not copied, links the report and offers
	// the retry, in both languages.
	admin := s.client("en")
	admin.get("/admin/login")
	if code, _ := admin.post("/admin/login", url.Values{"user": {"alice"}, "password": {"alice-pw-9"}}); code != 200 {
		t.Fatalf("alice signs in: %d", code)
	}
	for lang, want := range map[string][]string{
		"en":    {"finished with failures", `id="retry-fix"`, "Retry failed", "Messages not copied: 3. Accounts that failed or finished with failures: 1.", "3 failed; 3 not on the target (3 messages: folder &#34;~home&#34; not copied", `href="/admin/jobs/fix/report"`, `href="/admin/jobs/fix/report.csv"`, `id="verify-form"`, "deep: compare every message&#39;s bytes"},
		"zh-CN": {"部分失败", "重试失败的账号", "没有搬过去的邮件: 3 封", "失败3封; 3封邮件不在新邮箱中 (3封邮件: 文件夹 &#34;~home&#34; 没有搬过来: ", "下载 CSV", "核对新旧邮箱", "深度核对"},
	} {
		admin.lang = lang
		code, body := admin.get("/admin/jobs/" + job)
		if code != 200 || !strings.HasSuffix(strings.TrimSpace(body), "</html>") {
			t.Fatalf("job page (%s): %d\n%s", lang, code, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("job page (%s) lacks %q", lang, w)
			}
		}
	}
	admin.lang = "en"

	// The report: the page, the API, the CSV downloads.
	code, page := admin.get("/admin/jobs/" + job + "/report")
	if code != 200 || strings.Count(page, "<td>~home</td>") != 3 || !strings.Contains(page, "Begins with &#39;~&#39;") ||
		!strings.Contains(page, "Not copied: 3 (messages, or folders and accounts") {
		t.Fatalf("report page: %d\n%s", code, page)
	}
	admin.lang = "zh-CN"
	if code, page := admin.get("/admin/jobs/" + job + "/report"); code != 200 || !strings.Contains(page, "未搬过去的邮件: 搬家任务 fix") || !strings.Contains(page, "文件夹") {
		t.Fatalf("report page (zh): %d\n%s", code, page)
	}
	admin.lang = "en"
	var rep []migrate.NotCopied
	if code := s.api("GET", "/api/jobs/"+job+"/report", nil, &rep); code != 200 || len(rep) != 3 {
		t.Fatalf("API report: %d %+v", code, rep)
	}
	for i, r := range rep {
		if r.Account != u.Old || r.Folder != "~home" || r.UID != uint32(i+1) || r.Size != int64(len(migratetest.RefusedMail[i])) || r.Date.IsZero() ||
			!strings.Contains(r.Reason, "Begins with '~'") {
			t.Errorf("API report row %d: %+v", i, r)
		}
	}
	if code := s.api("GET", "/api/jobs/nope/report", nil, &out); code != http.StatusNotFound {
		t.Errorf("report of no job: %d", code)
	}
	for _, path := range []string{"/admin/jobs/" + job + "/report.csv", "/admin/jobs/" + job + "/report?format=csv"} {
		code, hd, body := admin.download(path)
		if code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		rows := readReportCSV(t, hd, body)
		if len(rows) != 4 {
			t.Fatalf("%s: want a header and 3 rows: %q", path, rows)
		}
		for i, r := range rows[1:] {
			if r[0] != u.Old || r[1] != "~home" || r[2] != strconv.Itoa(i+1) || r[3] == "-" || r[4] != strconv.Itoa(len(migratetest.RefusedMail[i])) ||
				!strings.Contains(r[5], "Begins with '~'") {
				t.Errorf("%s row %d: %q", path, i+1, r)
			}
		}
	}
	{
		req, _ := http.NewRequest("GET", s.http.URL+"/api/jobs/"+job+"/report?format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rows := readReportCSV(t, resp.Header, string(b)); len(rows) != 4 {
			t.Fatalf("API CSV: %q", rows)
		}
	}

	// Verify sees the same from the servers.
	var vr verifyResult
	if code := s.api("GET", "/api/jobs/"+job+"/verify", nil, &vr); code != http.StatusNotFound {
		t.Fatalf("no verification yet: %d", code)
	}
	if code := s.api("POST", "/api/jobs/"+job+"/verify?deep=1&account="+url.QueryEscape(u.Old), nil, &vr); code != http.StatusAccepted || !vr.Running || !vr.Deep {
		t.Fatalf("start verify: %d %+v", code, vr)
	}
	vr = s.waitVerify(job)
	var home *migrate.FolderCheck
	for i, c := range vr.Checks {
		if c.Account != u.Old {
			t.Errorf("verified another account: %+v", c)
		}
		if c.Folder == "~home" {
			home = &vr.Checks[i]
		}
	}
	if vr.OK || vr.Error != "" || vr.Differ != 1 || home == nil || home.Missing != 3 || home.SourceMessages != 3 || home.Error != "the target folder does not exist" || vr.Folders != len(before[u.Old]) {
		t.Fatalf("verify before the fix: %+v", vr)
	}
	_, body := admin.get("/admin/jobs/" + job)
	for _, want := range []string{"deep: every message&#39;s bytes", fmt.Sprintf("%d folders, 1 differ", vr.Folders), "source 3, target 0, 3 missing (the target folder does not exist)", "Asked by API token api"} {
		if !strings.Contains(body, want) {
			t.Errorf("job page after verify lacks %q", want)
		}
	}
	// An unknown account is refused at once.
	if code := s.api("POST", "/api/jobs/"+job+"/verify?account=nobody@old.test", nil, &out); code != http.StatusBadRequest {
		t.Errorf("verify an unknown account: %d %v", code, out)
	}

	// A viewer reads the report and the result, and changes nothing.
	v := s.client("en")
	v.get("/admin/login")
	if code, _ := v.post("/admin/login", url.Values{"user": {"vera"}, "password": {"vera-pw-8"}}); code != 200 {
		t.Fatalf("vera signs in: %d", code)
	}
	if code, page := v.get("/admin/jobs/" + job + "/report"); code != 200 || strings.Count(page, "<td>~home</td>") != 3 {
		t.Fatalf("the viewer's report: %d", code)
	}
	if code, hd, body := v.download("/admin/jobs/" + job + "/report.csv"); code != 200 || len(readReportCSV(t, hd, body)) != 4 {
		t.Fatalf("the viewer's CSV: %d", code)
	}
	if code, page := v.get("/admin/jobs/" + job); code != 200 || strings.Contains(page, `id="retry-form"`) || strings.Contains(page, `id="verify-form"`) ||
		!strings.Contains(page, `id="verify-line"`) || !strings.Contains(page, `href="/admin/jobs/fix/report"`) {
		t.Fatalf("the viewer's job page: %d\n%s", code, page)
	}
	for _, op := range []string{"retry", "verify"} {
		if code, body := v.post("/admin/jobs/"+job+"/"+op, url.Values{"deep": {"1"}}); code != http.StatusForbidden || !strings.Contains(body, "viewer") {
			t.Fatalf("the viewer's %s: %d %s", op, code, body)
		}
	}
	viewerAPI := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, s.http.URL+path, nil)
		req.Header.Set("X-CSRF-Token", v.csrf)
		return v.do(req)
	}
	for _, path := range []string{"/api/jobs/" + job + "/report", "/api/jobs/" + job + "/verify"} {
		if code, _ := viewerAPI("GET", path); code != 200 {
			t.Fatalf("the viewer's GET %s: %d", path, code)
		}
	}
	for _, path := range []string{"/api/jobs/" + job + "/retry", "/api/jobs/" + job + "/verify"} {
		if code, body := viewerAPI("POST", path); code != http.StatusForbidden || !strings.Contains(body, "viewer") {
			t.Fatalf("the viewer's POST %s: %d %s", path, code, body)
		}
	}
	if got := s.accounts(job)[u.Old].State; got != "partial" {
		t.Fatalf("after the viewer's tries the account is %s", got)
	}

	// The admin fixes the cause (the folder goes to another name) and
	// presses Retry.
	j, err := s.w.Store.Job(job)
	if err != nil {
		t.Fatal(err)
	}
	j.Options.Renames = map[string]string{"~home": "home"}
	if err := s.w.Store.PutJob(j); err != nil {
		t.Fatal(err)
	}
	at := s.w.TotalTarget()
	admin.get("/admin/jobs/" + job)
	if code, _ := admin.post("/admin/jobs/"+job+"/retry", url.Values{"csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("retry with a forged CSRF token: %d", code)
	}
	code, body = admin.post("/admin/jobs/"+job+"/retry", url.Values{})
	if code != 200 || !strings.Contains(body, "Retrying the accounts that failed or finished with failures (1): "+u.Old) {
		t.Fatalf("retry: %d\n%s", code, body)
	}
	a = s.waitAccount(job, u.Old, "succeeded", 2*time.Minute)
	if mode == "passwords" {
		waitFor(t, "the job to complete again", 30*time.Second, func() bool { return s.jobState(job) == "completed" })
	}
	if a.Counts.Failed != 0 || a.Counts.Imported != int64(len(flatten(before[u.Old]))) {
		t.Errorf("after the retry: %+v", a)
	}
	if n := s.w.TotalTarget(); n != at+len(migratetest.RefusedMail) {
		t.Errorf("the retry added %d messages to the target, want %d", n-at, len(migratetest.RefusedMail))
	}
	want := before[u.Old]
	want["home"] = want["~home"]
	delete(want, "~home")
	migratetest.SameMail(t, u.Old, want, s.w.Target(u))
	migratetest.SameMail(t, other.Old, before[other.Old], s.w.Target(other))
	if code := s.api("GET", "/api/jobs/"+job+"/report", nil, &rep); code != 200 || len(rep) != 0 {
		t.Errorf("report after the retry: %d %+v", code, rep)
	}
	if _, page := admin.get("/admin/jobs/" + job + "/report"); !strings.Contains(page, "Every selected message is on the new server") {
		t.Errorf("report page after the retry:\n%s", page)
	}
	if code, hd, body := admin.download("/admin/jobs/" + job + "/report.csv"); code != 200 || len(readReportCSV(t, hd, body)) != 1 {
		t.Errorf("CSV after the retry: %d\n%s", code, body)
	}
	if _, page := admin.get("/admin/jobs/" + job); strings.Contains(page, `id="retry-form"`) || strings.Contains(page, `id="not-copied"`) {
		t.Errorf("the job page still offers a retry:\n%s", page)
	}
	// Nothing is left to retry.
	if code := s.api("POST", "/api/jobs/"+job+"/retry", nil, &out); code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "nothing to retry") {
		t.Errorf("second retry: %d %v", code, out)
	}

	// The account's passwords ran out of their retention (as
	// --keep-credentials makes them): verifying it says so, as an error,
	// not as a pass.
	wiped, err := s.w.Store.Account(job, u.Old)
	if err != nil {
		t.Fatal(err)
	}
	wiped.WipeSecrets()
	if err := s.w.Store.PutAccounts(job, wiped); err != nil {
		t.Fatal(err)
	}
	code, body = admin.post("/admin/jobs/"+job+"/verify", url.Values{"account": {u.Old}})
	if code != 200 || !strings.Contains(body, "Verification started") {
		t.Fatalf("verify form: %d\n%s", code, body)
	}
	vr = s.waitVerify(job)
	if vr.OK || vr.Unchecked != 1 || len(vr.Checks) != 1 || !strings.Contains(vr.Checks[0].Error, "no old password is stored") || vr.Deep {
		t.Fatalf("verify without passwords: %+v", vr)
	}
	if _, page := admin.get("/admin/jobs/" + job); !strings.Contains(page, "accounts not checked: 1") || !strings.Contains(page, u.Old+": not checked: no old password is stored") {
		t.Errorf("the job page does not show the unchecked account:\n%s", page)
	}
	// The admin gives the passwords again (the Add accounts form); now
	// the verification passes.
	line := fmt.Sprintf("%s,%s,%s,%s", u.Old, u.New, u.OldPW, u.NewPW)
	if code, body := admin.post("/admin/jobs/"+job+"/accounts", url.Values{"accounts": {line}}); code != 200 || !strings.Contains(body, "1 accounts added or updated") {
		t.Fatalf("passwords again: %d\n%s", code, body)
	}
	waitFor(t, "the job to settle", 30*time.Second, func() bool {
		return mode == "member" || (s.jobState(job) == "completed" && s.api("GET", "/api/jobs/"+job, nil, &out) == 200 && out["running"] == false)
	})
	if code := s.api("POST", "/api/jobs/"+job+"/verify?deep=1&account="+url.QueryEscape(u.Old), nil, &vr); code != http.StatusAccepted {
		t.Fatalf("verify again: %d %+v", code, vr)
	}
	vr = s.waitVerify(job)
	if !vr.OK || vr.Differ != 0 || vr.Unchecked != 0 || vr.Folders != len(want) {
		t.Fatalf("verify after the retry: %+v", vr)
	}
	for _, c := range vr.Checks {
		if c.Folder == "~home" && (c.Target != "home" || c.TargetMessages != 3) {
			t.Errorf("~home: %+v", c)
		}
	}
	for lang, w := range map[string]string{"en": "every folder holds its source&#39;s messages once", "zh-CN": "每个文件夹都与原邮箱一致"} {
		admin.lang = lang
		if code, page := admin.get("/admin/jobs/" + job); code != 200 || !strings.Contains(page, w) {
			t.Errorf("job page (%s) after a passing verification lacks %q", lang, w)
		}
	}

	// The event log says who asked for what.
	var evs []struct {
		Kind, Message string
		Why           *wording.Reason
	}
	s.api("GET", "/api/jobs/"+job+"/events", nil, &evs)
	var all []string
	for _, e := range evs {
		all = append(all, e.Kind+": "+e.Message)
	}
	log := strings.Join(all, "\n")
	for _, w := range []string{
		"admin.retry: admin alice (dashboard) asked to retry job fix: 1 account that failed or finished with failures (" + u.Old + ")",
		"admin.verify: API token api asked to verify job fix (deep: every message's bytes; " + u.Old + ")",
		"admin.verify: admin alice (dashboard) asked to verify job fix (quick: counts; " + u.Old + ")",
		"job.verified: job fix verified (deep): ",
	} {
		if !strings.Contains(log, w) {
			t.Errorf("event log lacks %q:\n%s", w, log)
		}
	}
	verified := ""
	for _, e := range evs {
		if e.Kind == "job.verified" && e.Why != nil {
			verified = e.Why.In("zh")
		}
	}
	if !strings.HasPrefix(verified, "搬家任务 fix 核对完成 (深度): ") {
		t.Errorf("job.verified in Chinese: %q", verified)
	}
	if strings.Contains(log, "vera") {
		t.Errorf("a viewer's refused try is in the event log:\n%s", log)
	}
	b, _ := json.Marshal(vr)
	s.seen.Write(b)
	s.noSecrets()
}
