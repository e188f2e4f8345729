package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/browser"
	"github.com/banjia-mail/banjia/state"
)

// bigJob writes a job of n accounts straight into the state: most done,
// every 50th failed with the server's words, every 100th copying, every
// 10th not started.
func bigJob(t *testing.T, store *state.Store, id string, n int) {
	t.Helper()
	accts := make([]*state.Account, 0, n)
	for i := range n {
		accts = append(accts, bigAccount(i))
	}
	putJob(t, store, &state.Job{ID: id, Mode: state.ModePasswords, State: state.JobRunning}, accts...)
}

func bigAccount(i int) *state.Account {
	a := &state.Account{ID: fmt.Sprintf("u%06d@old.test", i), State: state.AccountSucceeded,
		Counts: state.Counts{ToImport: 100, Imported: 100, Bytes: 100 << 10}}
	switch {
	case i%50 == 7:
		a.State, a.Counts = state.AccountFailed, state.Counts{}
		a.Reason = `login as ` + a.ID + ` at 192.0.2.7:993 refused: wrong user name, password (the server said: "Authentication failed.")`
	case i%100 == 3:
		a.State, a.Counts = state.AccountRunning, state.Counts{ToImport: 100, Imported: 40, Bytes: 40 << 10}
	case i%10 == 9:
		a.State, a.Counts = state.AccountNotStarted, state.Counts{}
	}
	a.Source, a.Target = a.ID, strings.Replace(a.ID, "@old.test", "@new.test", 1)
	return a
}

// Of bigJob's 100,000 accounts: 2,000 failed, 1,000 copying, 10,000 not
// started (every 10th), the rest done.
const (
	bigAccounts   = 100_000
	bigFailed     = 2_000
	bigRunning    = 1_000
	bigNotStarted = 10_000
	bigSucceeded  = bigAccounts - bigFailed - bigRunning - bigNotStarted
)

// timed records how long the server's handler took for each path.
type timed struct {
	h  http.Handler
	mu sync.Mutex
	d  map[string]time.Duration
}

func (tm *timed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	tm.h.ServeHTTP(w, r)
	tm.mu.Lock()
	tm.d[r.URL.Path] = time.Since(start)
	tm.mu.Unlock()
}

func (tm *timed) last(path string) time.Duration {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.d[path]
}

// bigSite is pageSite with a 100,000-account job "big" and the server's
// handler timed.
func bigSite(t *testing.T) (*site, *state.Store, *timed) {
	s, store := pageSite(t)
	tm := &timed{h: s.http.Config.Handler, d: map[string]time.Duration{}}
	s.http.Config.Handler = tm
	start := time.Now()
	bigJob(t, store, "big", bigAccounts)
	t.Logf("%d accounts written in %v", bigAccounts, time.Since(start))
	return s, store, tm
}

var rowID = regexp.MustCompile(`<tr id="acct-([^"]+)"`)

// TestBigJobPage: the page of a job of 100,000 accounts lists one page of
// 100 under the whole job's totals, in well under 300 ms and 200 KB, reading
// only the accounts it lists; the filter by state pages through that
// state; the page's live updates send only what changed; a /metrics
// scrape reads no account at all.
func TestBigJobPage(t *testing.T) {
	s, store, tm := bigSite(t)
	admin := s.client("en")
	admin.get("/admin/login")
	if code, _ := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 {
		t.Fatalf("admin sign-in: %d", code)
	}
	const maxBytes, maxTime = 200 << 10, 300 * time.Millisecond
	var page string
	for range 3 {
		read := store.AccountsRead()
		var code int
		code, page = admin.get("/admin/jobs/big")
		d, n := tm.last("/admin/jobs/big"), store.AccountsRead()-read
		t.Logf("job page: %d bytes, %v, %d accounts read", len(page), d, n)
		if code != 200 || len(page) > maxBytes || d > maxTime {
			t.Fatalf("job page: %d, %d bytes in %v; want under %d bytes and %v", code, len(page), d, maxBytes, maxTime)
		}
		if n > 100 {
			t.Fatalf("one page read %d accounts", n)
		}
	}
	ids := rowID.FindAllStringSubmatch(page, -1)
	if len(ids) != 100 || ids[0][1] != "u000000@old.test" || ids[99][1] != "u000099@old.test" {
		t.Fatalf("first page lists %d rows: %v ... ", len(ids), ids[:min(3, len(ids))])
	}
	// The totals are the whole job's.
	for _, want := range []string{
		fmt.Sprintf("Failed accounts: %d", bigFailed),
		fmt.Sprintf("%d to import, %d imported", int64(bigSucceeded+bigRunning)*100, int64(bigSucceeded)*100+int64(bigRunning)*40),
		fmt.Sprintf(`id="filter-failed">failed %d<`, bigFailed),
		fmt.Sprintf(`id="filter-all">all %d<`, bigAccounts),
		`1-100 of 100000`,
		`href="/admin/jobs/big?page=2&amp;state=all" id="page-next"`,
		`href="/admin/jobs/big?page=1000&amp;state=all" id="page-1000"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("job page lacks %q", want)
		}
	}

	// Page 3 of the failed accounts: the 201st to 300th failed.
	_, page = admin.get("/admin/jobs/big?state=failed&page=3")
	ids = rowID.FindAllStringSubmatch(page, -1)
	if len(ids) != 100 || ids[0][1] != bigAccount(200*50+7).ID || ids[99][1] != bigAccount(299*50+7).ID {
		t.Fatalf("failed page 3: %d rows from %v", len(ids), ids[:min(1, len(ids))])
	}
	if !strings.Contains(page, "201-300 of 2000") || strings.Contains(page, "s-succeeded") {
		t.Fatalf("failed page 3 is not only failed accounts 201-300 of 2000")
	}
	// A page beyond the end shows the last; nonsense is refused.
	_, page = admin.get("/admin/jobs/big?state=in_progress&page=99")
	if ids = rowID.FindAllStringSubmatch(page, -1); len(ids) != 100 || !strings.Contains(page, "901-1000 of 1000") || ids[99][1] != bigAccount(99_903).ID {
		t.Fatalf("page 99 of 10 in progress: %d rows", len(ids))
	}
	for _, bad := range []string{"?page=0", "?page=x", "?state=bogus"} {
		if code, body := admin.get("/admin/jobs/big" + bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %q", bad, code, body)
		}
	}

	// The live feed: nothing changed, nothing sent but the shape; one
	// account changed, its row alone.
	_, page = admin.get("/admin/jobs/big?state=all&page=2")
	feed := feedOf(t, page)
	read := store.AccountsRead()
	_, body := admin.get(feed)
	if n := store.AccountsRead() - read; n > 100 {
		t.Fatalf("a live update read %d accounts", n)
	}
	var out struct {
		Head string `json:"head"`
		Rows []struct {
			I  int    `json:"i"`
			ID string `json:"id"`
		} `json:"rows"`
		N int `json:"n"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Head != "" || len(out.Rows) != 0 || out.N != 100 || len(body) > 100 {
		t.Fatalf("an unchanged page's update: %v %s", err, body)
	}
	t.Logf("live update, nothing changed: request URL %d bytes, answer %d bytes, %v", len(feed), len(body), tm.last("/admin/jobs/big/live"))
	a := bigAccount(103)
	a.State, a.Counts = state.AccountSucceeded, state.Counts{ToImport: 100, Imported: 100}
	if err := store.PutAccounts("big", a); err != nil {
		t.Fatal(err)
	}
	_, body = admin.get(feed)
	out.Rows = nil
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Head == "" || len(out.Rows) != 1 || out.Rows[0].ID != a.ID || out.Rows[0].I != 3 {
		t.Fatalf("one account changed: %v %.300s", err, body)
	}
	t.Logf("live update of one row: %d bytes, %v", len(body), tm.last("/admin/jobs/big/live"))

	// /metrics: the whole job's figures, no account read.
	for range 3 {
		read := store.AccountsRead()
		_, body = admin.get("/metrics")
		d, n := tm.last("/metrics"), store.AccountsRead()-read
		t.Logf("metrics: %d bytes, %v, %d accounts read", len(body), d, n)
		if n != 0 || d > maxTime {
			t.Fatalf("a scrape took %v and read %d accounts", d, n)
		}
	}
	for _, want := range []string{
		fmt.Sprintf(`banjia_accounts{job="big",state="failed"} %d`, bigFailed),
		fmt.Sprintf(`banjia_accounts{job="big",state="in_progress"} %d`, bigRunning-1),
		fmt.Sprintf(`banjia_accounts{job="big",state="succeeded"} %d`, bigSucceeded+1),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	read = store.AccountsRead()
	admin.get("/admin")
	if n := store.AccountsRead() - read; n != 0 || tm.last("/admin") > maxTime {
		t.Fatalf("the job list took %v and read %d accounts", tm.last("/admin"), n)
	}
}

var feedRe = regexp.MustCompile(`data-feed="([^"]+)"`)

func feedOf(t *testing.T, page string) string {
	t.Helper()
	m := feedRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no live feed on the job page")
	}
	head := regexp.MustCompile(`id="live-head" data-h="([^"]+)"`).FindStringSubmatch(page)
	var rows []string
	for _, h := range regexp.MustCompile(`<tr id="acct-[^"]+" data-h="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		rows = append(rows, h[1])
	}
	after := regexp.MustCompile(`data-after="(\d+)"`).FindStringSubmatch(page)
	return strings.ReplaceAll(m[1], "&amp;", "&") + "&" + url.Values{"head": {head[1]}, "rows": {strings.Join(rows, ",")}, "after": {after[1]}}.Encode()
}

// TestBrowserBigJobPages: in a real browser, the pager of a 100,000-account
// job's page leads through it (next, a numbered page, the last, within a
// filter), and a change to an account on the page shown reaches its row,
// the totals and the events without the page being loaded again.
func TestBrowserBigJobPages(t *testing.T) {
	browser.Require(t)
	s, store, _ := bigSite(t)
	b := browser.Start(t)
	admin := b.Tab(t)
	admin.SetLanguage("en-US,en;q=0.9")
	admin.Go(s.http.URL + "/admin/login")
	admin.Fill("#admin-user", "admin")
	admin.Fill("#admin-password", adminPW)
	admin.Click("#admin-signin")
	admin.Go(s.http.URL + "/admin/jobs/big")
	rows := func() (n int, first, last string) {
		return browser.Eval[int](admin, `document.querySelectorAll("#accounts-body tr").length`),
			browser.Eval[string](admin, `document.querySelector("#accounts-body tr").id`),
			browser.Eval[string](admin, `document.querySelector("#accounts-body tr:last-child").id`)
	}
	expect := func(what string, n int, first, last string) {
		t.Helper()
		gn, gf, gl := rows()
		if gn != n || gf != "acct-"+first || gl != "acct-"+last {
			t.Fatalf("%s: %d rows %s..%s, want %d rows acct-%s..acct-%s", what, gn, gf, gl, n, first, last)
		}
	}
	expect("page 1", 100, "u000000@old.test", "u000099@old.test")
	admin.Click("#page-next")
	expect("page 2", 100, "u000100@old.test", "u000199@old.test")
	admin.WaitText("#page-range", "101-200 of 100000", 5*time.Second)
	admin.Click("#page-4")
	expect("page 4", 100, "u000300@old.test", "u000399@old.test")
	admin.Click("#page-1000")
	expect("page 1000", 100, "u099900@old.test", "u099999@old.test")
	admin.Click("#page-prev")
	expect("page 999", 100, "u099800@old.test", "u099899@old.test")
	admin.Click("#filter-failed")
	expect("failed, page 1", 100, bigAccount(7).ID, bigAccount(99*50+7).ID)
	admin.WaitText("#page-range", "1-100 of 2000", 5*time.Second)
	admin.Click("#page-20")
	expect("failed, page 20", 100, bigAccount(1900*50+7).ID, bigAccount(1999*50+7).ID)
	if n := browser.Eval[int](admin, `document.querySelectorAll("#accounts-body tr:not(.bad)").length`); n != 0 {
		t.Fatalf("%d accounts on the failed page are not failed", n)
	}
	admin.Screenshot(filepath.Join(screenshotDir(t), "big-failed-en.png"))

	// Live: page 2 of all; account u000103 finishes, one failed account
	// is fixed elsewhere in the job, an event is logged.
	admin.Go(s.http.URL + "/admin/jobs/big?page=2")
	browser.Eval[int](admin, `window.stayed = 7`)
	row := `[id="acct-u000103@old.test"]`
	admin.WaitText(row+" td.st", "in progress", 5*time.Second)
	admin.WaitText("#job-failures", fmt.Sprintf("Failed accounts: %d", bigFailed), 5*time.Second)
	a := bigAccount(103)
	a.State, a.Counts = state.AccountSucceeded, state.Counts{ToImport: 100, Imported: 100}
	fixed := bigAccount(50_007)
	fixed.State, fixed.Counts, fixed.Reason = state.AccountSucceeded, state.Counts{ToImport: 10, Imported: 10}, ""
	if err := store.PutAccounts("big", a, fixed); err != nil {
		t.Fatal(err)
	}
	if err := store.AddEvent(&state.Event{Job: "big", Account: a.ID, Kind: "account.succeeded", Message: a.ID + " moved: the live event"}); err != nil {
		t.Fatal(err)
	}
	admin.WaitText(row+" td.st", "succeeded", 5*time.Second)
	admin.WaitText(row+" td.counts", "100 to import, 100 imported", 5*time.Second)
	admin.WaitText("#job-failures", fmt.Sprintf("Failed accounts: %d", bigFailed-1), 5*time.Second)
	admin.WaitText("#filter-failed", fmt.Sprintf("failed %d", bigFailed-1), 5*time.Second)
	admin.WaitText("#events-body tr:first-child", "the live event", 5*time.Second)
	if v := browser.Eval[int](admin, `window.stayed || 0`); v != 7 {
		t.Fatal("the page was loaded again to show the change")
	}
	// Every request the page made since it loaded went to its feed.
	if bad := browser.Eval[[]string](admin, `performance.getEntriesByType("resource").filter(e => e.initiatorType === "fetch" && !e.name.includes("/live?")).map(e => e.name)`); len(bad) != 0 {
		t.Fatalf("the page fetched %v", bad)
	}
	if n := browser.Eval[int](admin, `performance.getEntriesByType("resource").filter(e => e.name.includes("/live?")).length`); n == 0 {
		t.Fatal("the page never asked its feed")
	}
	admin.Screenshot(filepath.Join(screenshotDir(t), "big-live-en.png"))
}
