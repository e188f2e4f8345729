package web_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/banjia-mail/banjia/internal/browser"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

// auditActors are who acts in auditLog's events, one of each door.
var auditActors = []string{string(state.Engine), state.AdminActor("alice"), state.TokenActor("ci"), state.CLIActor("root", "ops1"),
	state.MemberActor("u0007@new.test")}

var auditKinds = []string{"account.started", "account.succeeded", "account.failed", "message.failed", "warning", "admin.pause", "account.partial"}

// auditLog writes n events of job "big" over 500 accounts and the 10 days
// before the test, straight into the state, in batches.
func auditLog(t *testing.T, store *state.Store, n int) []*state.Event {
	t.Helper()
	putJob(t, store, &state.Job{ID: "big", Mode: state.ModePasswords, State: state.JobRunning})
	start := time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	var all, batch []*state.Event
	for i := range n {
		e := &state.Event{Time: start.Add(time.Duration(i) * 10 * 24 * time.Hour / time.Duration(n)), Job: "big",
			Account: fmt.Sprintf("u%04d@old.test", i%500), Kind: auditKinds[i%len(auditKinds)], Who: auditActors[i%len(auditActors)],
			Message: fmt.Sprintf("event number %d", i)}
		all, batch = append(all, e), append(batch, e)
		if len(batch) == 1000 || i == n-1 {
			if err := store.AddEvents(batch...); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	return all
}

func count(all []*state.Event, q state.EventQuery) int {
	n := 0
	for _, e := range all {
		if q.Match(e) {
			n++
		}
	}
	return n
}

var auditRow = regexp.MustCompile(`<tr class="r-(\w+)"><td>([^<]*)</td><td>(?:<a[^>]*>)?([^<]*)(?:</a>)?</td><td>([^<]*)</td><td>([^<]*)</td><td>[^<]*</td><td class="who">([^<]*)</td><td>([^<]*)</td>`)

// TestAuditPageFiltersAndExport: the dashboard's audit page over a job of
// 10,000 events lists a page of 100, newest first, in well under 100 ms;
// each filter lists only what it picks and pages on to the older events;
// the CSV and JSON downloads and the API give every event the filters
// pick, with who acted by code and in words; bad filters are told.
func TestAuditPageFiltersAndExport(t *testing.T) {
	s, store := pageSite(t)
	tm := &timed{h: s.http.Config.Handler, d: map[string]time.Duration{}}
	s.http.Config.Handler = tm
	start := time.Now()
	all := auditLog(t, store, 10_000)
	t.Logf("%d events written in %v", len(all), time.Since(start))
	admin := s.client("en")
	admin.get("/admin/login")
	if code, _ := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 {
		t.Fatalf("admin sign-in: %d", code)
	}

	// The fastest of three loads is judged: one load slowed by the rest of
	// a loaded machine says nothing of the page, a full scan slows all.
	var page string
	best := time.Hour
	for range 3 {
		var code int
		code, page = admin.get("/admin/audit?job=big")
		d := tm.last("/admin/audit")
		t.Logf("audit page, newest 100 of 10,000 events: %d bytes in %v", len(page), d)
		if code != 200 {
			t.Fatalf("audit page: %d", code)
		}
		best = min(best, d)
	}
	if best > 100*time.Millisecond {
		t.Fatalf("audit page: the fastest of 3 loads took %v", best)
	}
	rows := auditRow.FindAllStringSubmatch(page, -1)
	if len(rows) != 100 || rows[0][7] != "event number 9999" || rows[99][7] != "event number 9900" {
		t.Fatalf("first page: %d rows, %v ... %v", len(rows), rows[0][7:], rows[len(rows)-1][7:])
	}
	if _, jp := admin.get("/admin/jobs/big"); !strings.Contains(jp, `href="/admin/audit?job=big" id="job-audit"`) {
		t.Errorf("the job page does not lead to its event log")
	}
	for _, want := range []string{"100 events shown", `id="export-csv"`, `href="/admin/audit.csv?job=big"`, "Who acted", "API token ci", "root@ops1 (command line)",
		"member u0007@new.test (portal)", "admin alice (dashboard)"} {
		if !strings.Contains(page, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}

	// Each filter, paged to its end through the page's own links.
	for _, c := range []struct {
		query string
		q     state.EventQuery
		test  func(row []string) bool
	}{
		{"job=big&account=u0123@old.test", state.EventQuery{Job: "big", Account: "u0123@old.test"}, func(r []string) bool { return r[4] == "u0123@old.test" }},
		{"job=big&result=failed", state.EventQuery{Job: "big", Results: []string{"failed"}}, func(r []string) bool { return r[1] == "failed" }},
		{"job=big&kind=account", state.EventQuery{Job: "big", Kinds: []string{"account"}}, func(r []string) bool { return strings.HasPrefix(r[5], "account.") }},
		{"job=big&who=cli", state.EventQuery{Job: "big", Who: []string{"cli"}}, func(r []string) bool { return r[6] == "root@ops1 (command line)" }},
		{"job=big&who=token:ci&result=warning", state.EventQuery{Job: "big", Who: []string{"token:ci"}, Results: []string{"warning"}},
			func(r []string) bool { return r[6] == "API token ci" && r[5] == "warning" }},
		{"job=big&account=u0004@old.test&who=member&kind=account.started", state.EventQuery{Job: "big", Account: "u0004@old.test", Who: []string{"member"}, Kinds: []string{"account.started"}},
			func(r []string) bool { return r[6] == "member u0007@new.test (portal)" }},
	} {
		seen, path := 0, "/admin/audit?"+c.query
		for path != "" {
			code, page := admin.get(path)
			if code != 200 {
				t.Fatalf("%s: %d", path, code)
			}
			for _, r := range auditRow.FindAllStringSubmatch(page, -1) {
				if !c.test(r) {
					t.Fatalf("%s lists %v", c.query, r[1:])
				}
				seen++
			}
			path = ""
			if m := regexp.MustCompile(`href="([^"]+)" id="audit-next"`).FindStringSubmatch(page); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		if want := count(all, c.q); seen != want || want == 0 {
			t.Fatalf("%s: %d events listed, want %d", c.query, seen, want)
		}
		t.Logf("%s: %d events, last page in %v", c.query, seen, tm.last("/admin/audit"))
	}

	// A day of the job, as the form's since and until give it.
	from := all[2000].Time
	q := url.Values{"job": {"big"}, "since": {from.Format("2006-01-02 15:04:05")}, "until": {from.Add(24 * time.Hour).Format("2006-01-02 15:04:05")}, "n": {"1000"}}
	_, page = admin.get("/admin/audit?" + q.Encode())
	if got, want := len(auditRow.FindAllStringSubmatch(page, -1)), count(all, state.EventQuery{Job: "big", Since: from, Until: from.Add(24 * time.Hour)}); got != want || want < 900 {
		t.Fatalf("a day: %d events, want %d", got, want)
	}

	// The CSV download: every event the filters pick, oldest first, for Excel.
	code, hd, body := admin.download("/admin/audit.csv?job=big&who=token")
	if code != 200 || !strings.HasPrefix(hd.Get("Content-Type"), "text/csv") || !strings.Contains(hd.Get("Content-Disposition"), "banjia-events-big.csv") || !strings.HasPrefix(body, "\ufeff") {
		t.Fatalf("CSV: %d %v %.40q", code, hd, body)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := count(all, state.EventQuery{Job: "big", Who: []string{"token"}}); len(recs) != want+1 || strings.Join(recs[0], ",") != "seq,time,job,account,kind,result,who,who_text,message" {
		t.Fatalf("CSV: %d rows (%v), want %d and the header", len(recs), recs[0], want+1)
	}
	if r := recs[1]; r[0] != "3" || r[2] != "big" || r[3] != "u0002@old.test" || r[4] != "account.failed" || r[5] != "failed" || r[6] != "token:ci" || r[7] != "API token ci" || r[8] != "event number 2" {
		t.Fatalf("first CSV row: %v", r)
	}
	// In Chinese, who acted is in Chinese.
	zh := s.client("zh-CN")
	zh.get("/admin/login")
	zh.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}})
	until := all[100].Time.Format(time.RFC3339)
	if _, _, body := zh.download("/admin/audit.csv?lang=zh&job=big&who=cli&until=" + url.QueryEscape(until)); strings.Count(body, ",cli:root@ops1,root@ops1（命令行）,") != 20 {
		t.Fatalf("Chinese CSV until %s: %.300s", until, body)
	}

	// The JSON download, and the API with its own page.
	code, _, body = admin.download("/admin/audit.json?job=big&kind=account.failed")
	var evs []web.EventOut
	if err := json.Unmarshal([]byte(body), &evs); code != 200 || err != nil {
		t.Fatalf("JSON: %d %v", code, err)
	}
	if want := count(all, state.EventQuery{Job: "big", Kinds: []string{"account.failed"}}); len(evs) != want || evs[0].Seq != 3 || evs[0].Result != "failed" {
		t.Fatalf("JSON: %d events (first %+v), want %d", len(evs), evs[0], want)
	}
	var apiPage struct {
		Events []web.EventOut
		Next   string
	}
	_, body = admin.get("/api/audit?job=big&account=u0499@old.test&n=5")
	if err := json.Unmarshal([]byte(body), &apiPage); err != nil || len(apiPage.Events) != 5 || apiPage.Next == "" || apiPage.Events[0].Message != "event number 9999" {
		t.Fatalf("API page: %v %s", err, body)
	}
	_, body = admin.get("/api/audit?job=big&account=u0499@old.test&n=5&from=" + apiPage.Next)
	if err := json.Unmarshal([]byte(body), &apiPage); err != nil || apiPage.Events[0].Message != "event number 7499" {
		t.Fatalf("API next page: %v %s", err, body)
	}
	if code, _, body := admin.download("/api/audit?job=big&account=u0499@old.test&format=csv"); code != 200 || strings.Count(body, "\n") != 21 {
		t.Fatalf("API CSV: %d, %d lines", code, strings.Count(body, "\n"))
	}

	// Bad filters are told, in words.
	for path, want := range map[string]string{
		"/admin/audit?since=yesterday":   "is not a time",
		"/admin/audit?result=great":      `result &#34;great&#34;: want one of ok, failed`,
		"/admin/audit?from=zz":           "not one this log gave",
		"/api/audit?n=5000":              "want a page length from 1 to 1000",
		"/api/audit?format=xml":          `format \"xml\": want csv or json`,
		"/admin/audit.csv?until=someday": "is not a time",
	} {
		if code, body := admin.get(path); code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%s: %d %.300s, want 400 and %q", path, code, body, want)
		}
	}
}

// TestActorOfEachDoor: an API token by its name, a dashboard admin by
// name, a member in the portal and the engine itself are each recorded as
// who acted, and the log filters by each; the member's page shows their
// own history in their words, without the admin's reasons.
func TestActorOfEachDoor(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw-1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := newBare(t, web.Config{Admins: map[string]string{"alice": string(h)}, AdminTokenName: "ci-bot", MaxFailures: 5})
	b.memberJob("acme", "carol", "dave")
	if code := b.call("POST", "/api/jobs/acme/pause", nil, nil); code != 200 {
		t.Fatalf("pause by the API: %d", code)
	}

	alice := b.visitor("127.0.5.1")
	alice.do("GET", "/admin/login", nil)
	if code, _ := alice.do("POST", "/admin/login", url.Values{"user": {"alice"}, "password": {"alice-pw-1"}}); code != http.StatusSeeOther && code != 200 {
		t.Fatalf("alice signs in: %d", code)
	}
	alice.do("GET", "/admin/jobs/acme", nil)
	if code, body := alice.do("POST", "/admin/jobs/acme/resume", url.Values{}); code != http.StatusSeeOther && code != 200 {
		t.Fatalf("alice resumes: %d %s", code, body)
	}

	carol := b.visitor("127.0.5.2")
	carol.do("GET", "/", nil)
	if code, body := carol.do("POST", "/login", url.Values{"address": {"carol@new.test"}, "password": {rightPW}}); code != http.StatusSeeOther {
		t.Fatalf("carol signs in: %d %s", code, body)
	}
	carol.do("GET", "/me", nil)
	if code, _ := carol.do("POST", "/me/start", url.Values{"old": {"carol@old.test"}, "password": {"wrong"}}); code != http.StatusUnauthorized {
		t.Fatalf("a wrong old password: %d", code)
	}
	if code, body := carol.do("POST", "/me/start", url.Values{"old": {"carol@old.test"}, "password": {rightPW}}); code != http.StatusSeeOther {
		t.Fatalf("carol starts: %d %s", code, body)
	}
	// The engine takes carol's account on its own.
	waitFor(t, "the engine starts carol's account", 30*time.Second, func() bool {
		var p struct{ Events []web.EventOut }
		b.call("GET", "/api/audit?job=acme&account=carol@old.test&who=banjia", nil, &p)
		return len(p.Events) > 0
	})

	for _, c := range []struct {
		query, who, text string
		kinds            map[string]string // kind: the message's start
	}{
		{"who=token:ci-bot", "token:ci-bot", "API token ci-bot", map[string]string{
			"job.created": "job acme created by API token ci-bot", "admin.pause": "API token ci-bot asked to pause job acme"}},
		{"who=alice", "admin:alice", "admin alice (dashboard)", map[string]string{"admin.resume": "admin alice (dashboard) asked to resume job acme"}},
		{"who=member", "member:carol@new.test", "member carol@new.test (portal)", map[string]string{
			"warning":          "portal: carol@new.test typed an old password for carol@old.test that the old server refused",
			"account.enrolled": "carol@new.test typed the old password for carol@old.test in the portal"}},
		{"who=banjia", "banjia", "banjia", map[string]string{"job.paused": "job acme paused", "job.resumed": "job acme resumed", "account.started": "carol@old.test started"}},
	} {
		var p struct{ Events []web.EventOut }
		if code := b.call("GET", "/api/audit?job=acme&n=1000&"+c.query, nil, &p); code != 200 {
			t.Fatalf("audit %s: %d", c.query, code)
		}
		seen := map[string]string{}
		for _, e := range p.Events {
			if e.Who != c.who || e.WhoText != c.text {
				t.Errorf("%s lists %s by %q (%q)", c.query, e.Kind, e.Who, e.WhoText)
			}
			seen[e.Kind] = e.Message
		}
		for kind, msg := range c.kinds {
			if !strings.HasPrefix(seen[kind], msg) {
				t.Errorf("%s: %s is %q, want %q...", c.query, kind, seen[kind], msg)
			}
		}
	}

	// Carol's page shows her own history, in her words; not the admin's
	// reason (it names the old server) nor dave's.
	_, page := carol.do("GET", "/me", nil)
	for _, want := range []string{`id="my-history"`, "Your move&#39;s history", "You typed the old password; the move was queued", "The move started", "<td>you</td>", "<td>banjia</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("carol's page lacks %q", want)
		}
	}
	for _, never := range []string{"127.0.0.1", "dave", "ci-bot", "alice"} {
		if strings.Contains(page[strings.Index(page, `id="my-history"`):], never) {
			t.Errorf("carol's history shows %q", never)
		}
	}
}

// TestBrowserAuditPage: the audit page in a real browser, in English and
// in Chinese: the filters' labels, who acted in the reader's words, the
// results, the count and the export links, read from the page's text;
// screenshots of both.
func TestBrowserAuditPage(t *testing.T) {
	browser.Require(t)
	s, store := pageSite(t)
	auditLog(t, store, 10_000)
	b := browser.Start(t)
	dir := screenshotDir(t)
	for _, c := range []struct {
		lang, accept string
		want         []string
	}{
		{"en", "en-US,en;q=0.9", []string{"Event log", "Job", "Account", "From", "Until", "Kind", "Result", "Who acted", "Download CSV", "Download JSON",
			"API token ci", "root@ops1 (command line)", "member u0007@new.test (portal)", "admin alice (dashboard)", "failed", "warning"}},
		{"zh", "zh-CN,zh;q=0.9", []string{"搬家查询", "搬家任务", "邮箱账号", "开始时间", "结束时间", "事件类型", "结果", "操作人", "下载 CSV", "下载 JSON",
			"API 令牌 ci", "root@ops1（命令行）", "成员 u0007@new.test（自助页面）", "管理员 alice（管理后台）", "banjia（系统）", "失败", "警告"}},
	} {
		tab := b.Tab(t)
		tab.SetLanguage(c.accept)
		tab.Go(s.http.URL + "/admin/login")
		tab.Fill("#admin-user", "admin")
		tab.Fill("#admin-password", adminPW)
		tab.Click("#admin-signin")
		tab.Go(s.http.URL + "/admin/audit?job=big&n=25")
		tab.WaitText("#events", "event number 9999", 5*time.Second)
		text := browser.Eval[string](tab, `document.body.innerText`)
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: the page's text lacks %q", c.lang, w)
			}
		}
		if n := browser.Eval[int](tab, `document.querySelectorAll("#events tbody tr").length`); n != 25 {
			t.Errorf("%s: %d rows, want 25", c.lang, n)
		}
		// The form filters: the CLI's events that failed, of one account.
		tab.Fill("#f-account", "u0003@old.test")
		tab.Fill("#f-who", "cli")
		tab.Click("#f-go")
		tab.WaitText("#audit-count", map[string]string{"en": "20 events shown", "zh": "显示 20 条事件"}[c.lang], 5*time.Second)
		who := browser.Eval[[]string](tab, `Array.from(document.querySelectorAll("#events td.who")).map(td => td.innerText)`)
		wantWho := map[string]string{"en": "root@ops1 (command line)", "zh": "root@ops1（命令行）"}[c.lang]
		if len(who) != 20 {
			t.Errorf("%s: %d rows for u0003 by the CLI, want 20", c.lang, len(who))
		}
		for _, w := range who {
			if w != wantWho {
				t.Fatalf("%s: a row by %q", c.lang, w)
			}
		}
		tab.Go(s.http.URL + "/admin/audit?job=big&n=25")
		tab.WaitText("#events", "event number 9999", 5*time.Second)
		tab.Screenshot(filepath.Join(dir, "audit-"+c.lang+".png"))
	}
}
