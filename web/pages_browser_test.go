package web_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/browser"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/state"
)

// screenshotDir is where the page tests leave their screenshots: the
// directory BANJIA_SCREENSHOTS names, else one that goes with the test.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("BANJIA_SCREENSHOTS"); d != "" {
		return filepath.Join(d, t.Name())
	}
	return t.TempDir()
}

// portalLink is the portal's address in an invitation mail.
var portalLink = regexp.MustCompile(`https?://[^\s"<>]+/`)

// TestBrowserInvitedMemberStarts follows the documented way of a member
// job: the admin lists the members in a CSV and invites them; each member
// opens the link in the invitation mail, signs in with the new mailbox,
// finds the old-password form (not a bar with nothing to do), types the
// old password and watches the move until every message is on the target.
// One member reads the pages in English, the other in Chinese. The walk
// is made with each new server: Dovecot, Cyrus and Courier.
func TestBrowserInvitedMemberStarts(t *testing.T) {
	browser.Require(t)
	for _, target := range []string{"", "cyrus", "courier"} {
		name := target
		if name == "" {
			name = "dovecot"
		}
		t.Run(name, func(t *testing.T) { invitedMemberStarts(t, target) })
	}
}

func invitedMemberStarts(t *testing.T, target string) {
	s, mail := invitedJobOn(t, target, "walk", 25, "smtp-pw-walk")
	before := s.w.Sources()
	msgs := mail.Wait(t, 2, 30*time.Second)
	link := func(u migratetest.User) string {
		for _, m := range msgs {
			if strings.Join(m.To, ",") != u.New {
				continue
			}
			body, err := m.Text()
			if err != nil {
				t.Fatal(err)
			}
			l := portalLink.FindString(body)
			if l == "" {
				t.Fatalf("no link in the invitation to %s:\n%s", u.New, body)
			}
			return l
		}
		t.Fatalf("no invitation to %s", u.New)
		return ""
	}
	shots := screenshotDir(t)
	b := browser.Start(t)

	// The admin's job page says whom it waits for, not "0 to import".
	admin := b.Tab(t)
	admin.SetLanguage("zh-CN,zh;q=0.9")
	admin.Go(s.http.URL + "/admin/login")
	admin.Fill("#admin-user", "admin")
	admin.Fill("#admin-password", adminPW)
	admin.Click("#admin-signin")
	admin.Go(s.http.URL + "/admin/jobs/walk")
	admin.WaitText("#accounts", "等待成员启动", 5*time.Second)
	if txt := admin.Text("#accounts"); strings.Contains(txt, "总计需导入0封") {
		t.Fatalf("a member who has not started is shown counts: %s", txt)
	}

	for i, lang := range []struct{ accept, tag, title, state string }{
		{"en-US,en;q=0.9", "en", "Your old mailbox", "succeeded"},
		{"zh-CN,zh;q=0.9", "zh", "你的旧邮箱", "搬家成功"},
	} {
		u := s.w.Users[i]
		m := b.Tab(t)
		m.SetLanguage(lang.accept)
		m.Go(link(u))
		m.Fill("#address", u.New)
		m.Fill("#password", u.NewPW)
		m.Click("#signin")
		m.WaitText("h1", lang.title, 5*time.Second)
		// The listed account waits for its old password: the form, with
		// the listed old address fixed, and no progress bar yet.
		if got := browser.Eval[string](m, `document.querySelector("#old").value + (document.querySelector("#old").readOnly ? " (read-only)" : "")`); got != u.Old+" (read-only)" {
			t.Fatalf("%s: the old address field holds %q", lang.tag, got)
		}
		if n := browser.Eval[int](m, `document.querySelectorAll("progress").length`); n != 0 {
			t.Fatalf("%s: %d progress bars before anything started", lang.tag, n)
		}
		m.Screenshot(filepath.Join(shots, "invited-"+lang.tag+".png"))
		m.Fill("#old-password", u.OldPW)
		m.Click("#start")
		m.WaitText("#my-state", lang.state, 2*time.Minute)
		want := len(flatten(before[u.Old]))
		m.WaitText("#my-counts", state.Counts{ToImport: int64(want), Imported: int64(want)}.Line(lang.tag), 5*time.Second)
		if v := progressOf(m, "#live progress"); v.Value != v.Max || v.Max != float64(want) {
			t.Fatalf("%s: finished, the bar shows %v of %v", lang.tag, v.Value, v.Max)
		}
		m.Screenshot(filepath.Join(shots, "finished-"+lang.tag+".png"))
		migratetest.SameMail(t, u.Old, before[u.Old], s.w.Target(u))
		if n := browser.Eval[int](m, `document.querySelectorAll("[style]").length`); n != 0 {
			t.Fatalf("%s: %d elements with inline styles, which the content policy blocks", lang.tag, n)
		}
		s.seen.Write([]byte(m.Text("body")))
	}
	s.secrets = append(s.secrets, "smtp-pw-walk")
	s.noSecrets()
}

type progressValue struct {
	Value float64 `json:"value"`
	Max   float64 `json:"max"`
	// Determinate is false for a bar without a value: still counting.
	Determinate bool `json:"determinate"`
}

// progressOf reads a <progress> as the browser rendered it.
func progressOf(tab *browser.Tab, sel string) progressValue {
	return browser.Eval[progressValue](tab, fmt.Sprintf(`(() => { const p = document.querySelector(%q);
		if (!p) return {value: -1, max: -1, determinate: false};
		return {value: p.value, max: p.max, determinate: p.position >= 0}; })()`, sel))
}

// lines is how many lines the element's text takes on screen.
func lines(tab *browser.Tab, sel string) int {
	return browser.Eval[int](tab, fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		if (!e) return -1;
		const r = document.createRange(); r.selectNodeContents(e);
		return new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top))).size; })()`, sel))
}

// TestBrowserProgressAndOutcome: the bars show what the accounts did,
// read from the page Chromium rendered (the content policy blocks inline
// styles, which once left every bar full): nothing for an account not
// started, half for one half copied and for one that finished with half
// failed, all for one done, and "still counting" while the folders are
// listed. A completed job with 2 of 3 accounts failed is not shown as a
// plain success, and the state column fits Chinese on one line at 1280 px.
func TestBrowserProgressAndOutcome(t *testing.T) {
	browser.Require(t)
	s := newSite(t, siteOptions{accounts: 1, messages: 1})
	if code := s.api("POST", "/api/jobs", map[string]any{"id": "bars", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": s.w.CSV(), "start": false}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	refused := `login as b@old.test at 192.0.2.7:993 refused: the server said: "<b>Account locked</b>"`
	accts := []*state.Account{
		{ID: "zero@old.test", State: state.AccountNotStarted},
		{ID: "half@old.test", State: state.AccountRunning, Counts: state.Counts{ToImport: 10, Imported: 5}},
		{ID: "count@old.test", State: state.AccountPreparing, Counts: state.Counts{Imported: 3}},
		{ID: "part@old.test", State: state.AccountPartial, Counts: state.Counts{ToImport: 10, Imported: 5, Failed: 5},
			Reason: "10 to import, 5 imported, 5 failed; 5 messages too big"},
		{ID: "full@old.test", State: state.AccountSucceeded, Counts: state.Counts{ToImport: 10, Imported: 10}},
		{ID: "fail@old.test", State: state.AccountFailed, Reason: refused},
	}
	for _, a := range accts {
		a.Source, a.Target = a.ID, strings.Replace(a.ID, "@old.test", "@new.test", 1)
	}
	if err := s.w.Store.PutAccounts("bars", accts...); err != nil {
		t.Fatal(err)
	}
	// A second job, completed, with 2 of its 3 accounts failed.
	// Listed with passwords the job never uses: it is not started, and the
	// accounts' outcomes are written over them below.
	doneCSV := "a@old.test,a@new.test,unused-1,unused-2\nb@old.test,b@new.test,unused-1,unused-2\nc@old.test,c@new.test,unused-1,unused-2\n"
	if code := s.api("POST", "/api/jobs", map[string]any{"id": "done", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": doneCSV, "start": false}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	done := []*state.Account{
		{ID: "a@old.test", State: state.AccountSucceeded, Counts: state.Counts{ToImport: 4, Imported: 4}},
		{ID: "b@old.test", State: state.AccountFailed, Reason: refused},
		{ID: "c@old.test", State: state.AccountFailed, Reason: refused},
	}
	for _, a := range done {
		a.Source, a.Target = a.ID, strings.Replace(a.ID, "@old.test", "@new.test", 1)
	}
	if err := s.w.Store.PutAccounts("done", done...); err != nil {
		t.Fatal(err)
	}
	j, err := s.w.Store.Job("done")
	if err != nil {
		t.Fatal(err)
	}
	j.State = state.JobCompleted
	if err := s.w.Store.PutJob(j); err != nil {
		t.Fatal(err)
	}

	shots := screenshotDir(t)
	b := browser.Start(t)
	for _, lang := range []struct{ accept, tag, counting, outcome string }{
		{"en-US,en;q=0.9", "en", "still counting", "2 accounts failed or finished with failures"},
		{"zh-CN,zh;q=0.9", "zh", "正在统计", "2 个账号失败或部分失败"},
	} {
		admin := b.Tab(t)
		admin.SetLanguage(lang.accept)
		admin.Go(s.http.URL + "/admin/login")
		admin.Fill("#admin-user", "admin")
		admin.Fill("#admin-password", adminPW)
		admin.Click("#admin-signin")
		admin.Go(s.http.URL + "/admin/jobs/bars")
		row := func(id string) string { return `[id="acct-` + id + `"]` }
		for _, c := range []struct {
			id       string
			min, max float64 // the share of the bar, in percent
		}{{"zero@old.test", 0, 0}, {"half@old.test", 45, 55}, {"part@old.test", 45, 55}, {"full@old.test", 100, 100}, {"fail@old.test", 0, 0}} {
			v := progressOf(admin, row(c.id)+" progress")
			if !v.Determinate || v.Max <= 0 {
				t.Fatalf("%s %s: bar %+v", lang.tag, c.id, v)
			}
			if pct := 100 * v.Value / v.Max; pct < c.min || pct > c.max {
				t.Fatalf("%s %s: the bar shows %.0f%%, want %.0f-%.0f%%", lang.tag, c.id, pct, c.min, c.max)
			}
		}
		if v := progressOf(admin, row("count@old.test")+" progress"); v.Determinate {
			t.Fatalf("%s: a preparing account's bar shows %+v, not still counting", lang.tag, v)
		}
		admin.WaitText(row("count@old.test"), lang.counting, 5*time.Second)
		if n := browser.Eval[int](admin, `document.querySelectorAll("[style]").length`); n != 0 {
			t.Fatalf("%s: %d elements with inline styles", lang.tag, n)
		}
		// The admin reads the old server's words, as words.
		admin.WaitText(row("fail@old.test"), `"<b>Account locked</b>"`, 5*time.Second)
		for _, a := range accts {
			if n := lines(admin, row(a.ID)+" td.st"); n != 1 {
				t.Fatalf("%s: the state of %s takes %d lines", lang.tag, a.ID, n)
			}
		}
		if n := lines(admin, "#accounts th.st"); n != 1 {
			t.Fatalf("%s: the state column's title takes %d lines", lang.tag, n)
		}
		admin.Screenshot(filepath.Join(shots, "bars-"+lang.tag+".png"))

		// The completed job with failures: its state is not green, and the
		// failures are counted on its page and in the job list.
		admin.Go(s.http.URL + "/admin/jobs/done")
		admin.WaitText("#job-failures", map[string]string{"en": "Failed accounts: 2", "zh": "搬家失败的账号: 2 个"}[lang.tag], 5*time.Second)
		green := "rgb(27, 110, 58)"
		if c := browser.Eval[string](admin, `getComputedStyle(document.querySelector("#job-state")).color`); c == green {
			t.Fatalf("%s: a job with 2 of 3 accounts failed is shown green", lang.tag)
		}
		admin.Screenshot(filepath.Join(shots, "failures-"+lang.tag+".png"))
		admin.Go(s.http.URL + "/admin")
		admin.WaitText("#job-done .st", lang.outcome, 5*time.Second)
		if c := browser.Eval[string](admin, `document.querySelector("#job-done .n-failed").className`); !strings.Contains(c, "bad") {
			t.Fatalf("%s: the failed count is not highlighted: %q", lang.tag, c)
		}
		for _, sel := range []string{"#jobs thead th:nth-child(3)", "#jobs thead th:nth-child(6)"} {
			if n := lines(admin, sel); n != 1 {
				t.Fatalf("%s: %s takes %d lines", lang.tag, sel, n)
			}
		}
		admin.Screenshot(filepath.Join(shots, "jobs-"+lang.tag+".png"))
	}
	t.Logf("screenshots in %s", shots)
}
