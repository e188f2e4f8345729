package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

// oldHost is the old server's internal address, which members never see.
const oldHost = "192.0.2.7"

// pageSite is `banjia serve` over a state file and a stand-in for the mail
// servers' logins, with no mail server: for what the pages say, fast.
func pageSite(t *testing.T) (*site, *state.Store) {
	t.Helper()
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	m := migrate.NewIdleManager(store, migrate.Config{})
	srv, err := web.New(web.Config{Manager: m, AdminUser: "admin", AdminPassword: adminPW, Lang: "en", MaxFailures: 50,
		Login: func(ctx context.Context, e mail.Endpoint) error {
			if e.Host != oldHost {
				if e.Password == "new-pw" {
					return nil
				}
				return errors.New("refused")
			}
			imapSaid := ` (the server said: "Authentication failed.")`
			switch e.Password {
			case "disabled-pw":
				return fault.Refused(fault.Disabled, "login refused at "+e.Addr()+": the account is disabled [CONTACTADMIN]"+imapSaid, nil)
			case "expired-pw":
				return fault.Refused(fault.Expired, "the password of "+e.User+" has expired"+imapSaid, nil)
			case "down-pw":
				return fault.New(fault.Retry, "cannot connect to "+e.Addr(), nil)
			}
			return fault.Refused(fault.BadCredentials, "login as "+e.User+" at "+e.Addr()+" refused: wrong user name, password"+imapSaid, nil)
		}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		m.Stop()
		store.Close()
	})
	return &site{t: t, http: hs, seen: &syncBuffer{}, logs: &syncBuffer{}}, store
}

func putJob(t *testing.T, store *state.Store, j *state.Job, accts ...*state.Account) {
	t.Helper()
	j.Source = mail.Endpoint{Scheme: "imaps", Host: oldHost, Port: 993}
	j.Target = mail.Endpoint{Scheme: "imaps", Host: "imap.new.test", Port: 993}
	j.Created = time.Now()
	if err := store.PutJob(j); err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if a.Source == "" {
			a.Source = a.ID
		}
		if a.Target == "" {
			a.Target = strings.Replace(a.ID, "@old.test", "@new.test", 1)
		}
	}
	if err := store.PutAccounts(j.ID, accts...); err != nil {
		t.Fatal(err)
	}
}

// TestListedMemberGetsTheForm: a member listed in a member-triggered job's
// CSV who has not started gets the old-password form (the page once showed
// 未启动 and a bar, and nothing to do); a refused old password is told in
// the member's terms, which one it was, without the old server's address
// or its reply, which go to the admin's event log.
func TestListedMemberGetsTheForm(t *testing.T) {
	s, store := pageSite(t)
	putJob(t, store, &state.Job{ID: "m", Mode: state.ModeMember, Domain: "old.test", NewDomain: "new.test", State: state.JobRunning},
		&state.Account{ID: "ann@old.test", State: state.AccountNotStarted},
		&state.Account{ID: "bob@old.test", State: state.AccountRunning, Counts: state.Counts{ToImport: 10, Imported: 5}},
		&state.Account{ID: "cy@old.test", State: state.AccountFailed, Counts: state.Counts{ToImport: 10, Imported: 2},
			Reason: "login as cy@old.test at " + oldHost + `:993 refused (the server said: "Account locked")`})

	// Started members watch a bar; one whose move failed reads why in
	// plain words, with the form to try again.
	bob := s.client("en")
	bob.get("/")
	code, body := bob.post("/login", url.Values{"address": {"bob@new.test"}, "password": {"new-pw"}})
	if code != 200 || !strings.Contains(body, `<progress class="bar s-in_progress" value="5" max="10"`) || strings.Contains(body, `id="start-form"`) {
		t.Fatalf("a member whose move runs: %d\n%s", code, body)
	}
	req, _ := http.NewRequest("GET", s.http.URL+"/me", nil)
	req.Header.Set("X-Partial", "1")
	if code, body = bob.do(req); code != 200 || !strings.Contains(body, `value="5" max="10"`) || strings.Contains(body, "<html") {
		t.Fatalf("the live part: %d\n%s", code, body)
	}
	cy := s.client("zh-CN")
	cy.get("/")
	code, body = cy.post("/login", url.Values{"address": {"cy@new.test"}, "password": {"new-pw"}})
	if code != 200 || !strings.Contains(body, "搬家没有完成。管理员可以看到原因。") || !strings.Contains(body, `id="start-form"`) ||
		strings.Contains(body, oldHost) || strings.Contains(body, "Account locked") {
		t.Fatalf("a member whose move failed: %d\n%s", code, body)
	}

	for _, lang := range []string{"en", "zh-CN"} {
		c := s.client(lang)
		c.get("/")
		code, body := c.post("/login", url.Values{"address": {"ann@new.test"}, "password": {"new-pw"}})
		if code != 200 || !strings.Contains(body, `id="start-form"`) || !strings.Contains(body, `value="ann@old.test" readonly`) {
			t.Fatalf("%s: a listed member gets no old-password form: %d\n%s", lang, code, body)
		}
		if strings.Contains(body, "<progress") || strings.Contains(body, `id="live"`) {
			t.Fatalf("%s: a bar before anything started:\n%s", lang, body)
		}
	}
	c := s.client("en")
	c.get("/")
	c.post("/login", url.Values{"address": {"ann@new.test"}, "password": {"new-pw"}})
	for _, tc := range []struct{ pw, want string }{
		{"wrong-pw", "The old mailbox did not accept this password, so nothing was started"},
		{"disabled-pw", "this mailbox is disabled or may not be opened by mail programs"},
		{"expired-pw", "password has expired"},
		{"down-pw", "could not be reached just now"},
	} {
		code, body := c.post("/me/start", url.Values{"password": {tc.pw}})
		if code != http.StatusUnauthorized || !strings.Contains(body, tc.want) {
			t.Fatalf("%s: %d, want %q:\n%s", tc.pw, code, tc.want, body)
		}
		if strings.Contains(body, oldHost) || strings.Contains(body, "the server said") || strings.Contains(body, "Authentication failed") {
			t.Fatalf("%s: the member is shown the old server's address or reply:\n%s", tc.pw, body)
		}
	}
	evs, err := store.Events("m", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for _, e := range evs {
		log.WriteString(e.Message + "\n")
	}
	if !strings.Contains(log.String(), "[CONTACTADMIN]") || !strings.Contains(log.String(), `the server said: "Authentication failed."`) {
		t.Fatalf("the event log lacks the server's words:\n%s", log.String())
	}
}

// TestAdminPagesTellTheTruth: the job page's bars are <progress> elements
// (no inline style, which the content policy blocks) with the copied
// share; a preparing account is still counting; a listed member who has
// not started is waited for, not "0 to import"; a completed job with
// failed accounts says so; End asks first; the new-job form shows each
// mode's own fields and CSV.
func TestAdminPagesTellTheTruth(t *testing.T) {
	s, store := pageSite(t)
	putJob(t, store, &state.Job{ID: "p", Mode: state.ModePasswords, State: state.JobRunning},
		&state.Account{ID: "half@old.test", State: state.AccountRunning, Counts: state.Counts{ToImport: 10, Imported: 5}},
		&state.Account{ID: "count@old.test", State: state.AccountPreparing, Counts: state.Counts{Imported: 3}},
		&state.Account{ID: "fail@old.test", State: state.AccountFailed, Reason: `refused at 192.0.2.7:993 (the server said: "<i>locked</i>")`})
	putJob(t, store, &state.Job{ID: "m", Mode: state.ModeMember, Domain: "old.test", NewDomain: "new.test", State: state.JobRunning},
		&state.Account{ID: "ann@old.test", State: state.AccountNotStarted})
	putJob(t, store, &state.Job{ID: "done", Mode: state.ModePasswords, State: state.JobCompleted},
		&state.Account{ID: "a@old.test", State: state.AccountSucceeded, Counts: state.Counts{ToImport: 1, Imported: 1}},
		&state.Account{ID: "b@old.test", State: state.AccountFailed},
		&state.Account{ID: "c@old.test", State: state.AccountFailed})

	admin := s.client("en")
	admin.get("/admin/login")
	if code, _ := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 {
		t.Fatalf("admin sign-in: %d", code)
	}
	_, page := admin.get("/admin/jobs/p")
	for _, want := range []string{
		`<progress class="bar s-in_progress" value="5" max="10"`,
		`<progress class="bar s-failed" value="0" max="1"`,
		`<progress class="bar counting"`,
		"still counting the messages to import; 3 imported so far",
		`&#34;&lt;i&gt;locked&lt;/i&gt;&#34;`, // the server's words, escaped
	} {
		if !strings.Contains(page, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	if strings.Contains(page, "style=") {
		t.Error("job page has an inline style")
	}
	if _, page = admin.get("/admin/jobs/m"); !strings.Contains(page, "waiting for the member to start") || strings.Contains(page, "0 to import, 0 imported") {
		t.Errorf("a member who has not started:\n%s", page)
	}
	zh := s.client("zh-CN")
	zh.get("/admin/login")
	zh.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}})
	if _, page = zh.get("/admin/jobs/m"); !strings.Contains(page, "等待成员启动") || strings.Contains(page, "总计需导入0封") {
		t.Errorf("zh, a member who has not started:\n%s", page)
	}
	_, page = admin.get("/admin/jobs/done")
	if !strings.Contains(page, `with-failures" id="job-state"`) || !strings.Contains(page, "Failed accounts: 2; finished with failures: 0") {
		t.Errorf("a completed job with failures:\n%s", page)
	}
	if _, page = admin.get("/admin"); !strings.Contains(page, "2 accounts failed or finished with failures") {
		t.Errorf("the job list hides the failures:\n%s", page)
	}

	// End asks first.
	code, page := admin.post("/admin/jobs/p/end", url.Values{"back": {"list"}})
	if code != 200 || !strings.Contains(page, `id="end-confirm"`) || !strings.Contains(page, `name="confirm" value="1"`) {
		t.Fatalf("end: %d\n%s", code, page)
	}
	if j, _ := store.Job("p"); j.State != state.JobRunning {
		t.Fatalf("the End button alone ended the job: %s", j.State)
	}

	// The new-job form, per mode.
	for _, c := range []struct {
		mode      string
		want, not []string
	}{
		{"", []string{`name="mode" id="f-mode" value="member"`, `id="f-invite"`, "CSV (optional): old address, new address."}, []string{`id="f-source-admin"`, "old password[, new password]"}},
		{"passwords", []string{`value="passwords"`, "old address, new address, old password[, new password]"}, []string{`id="f-source-admin"`, `id="f-invite"`}},
		{"delegated", []string{`value="delegated"`, `id="f-source-admin"`, "new address,, new password"}, []string{`id="f-invite"`, "old password[, new password]"}},
	} {
		_, page := admin.get("/admin/jobs/new?mode=" + c.mode)
		for _, w := range c.want {
			if !strings.Contains(page, w) {
				t.Errorf("mode %q: the form lacks %q", c.mode, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(page, w) {
				t.Errorf("mode %q: the form has %q", c.mode, w)
			}
		}
	}
}
