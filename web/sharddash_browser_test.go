package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/browser"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

// TestBrowserShardDashboard opens the dashboard over two shards of a
// passwords job in a real browser: the job list and the job page show the
// sums of both, no password typed into the CSV reaches a page, the page
// has no button that changes anything, and an account that fails in one
// shard while the page is open shows its state and reason without a
// reload.
func TestBrowserShardDashboard(t *testing.T) {
	browser.Require(t)
	main, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { main.Close() })
	m := migrate.NewIdleManager(main, migrate.Config{})
	req := migrate.JobRequest{ID: "acme", Mode: state.ModePasswords, Domain: "old.test", NewDomain: "new.test",
		Source: mail.Endpoint{Scheme: "imap", Host: "old.test", Port: 143}, Target: mail.Endpoint{Scheme: "imap", Host: "new.test", Port: 143}}
	const total = 12
	for i := range total {
		req.Accounts = append(req.Accounts, migrate.AccountRow{Line: i + 1, Old: fmt.Sprintf("u%02d@old.test", i), New: fmt.Sprintf("u%02d@new.test", i),
			OldPassword: fmt.Sprintf("OldPw-%02d-secret", i), NewPassword: fmt.Sprintf("NewPw-%02d-secret", i)})
	}
	if _, _, err := m.Create(context.Background(), req, "test"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "shards")
	counts, err := m.ExportShards("acme", 2, dir, "test")
	if err != nil || counts[0] == 0 || counts[1] == 0 {
		t.Fatalf("export: %v %v", counts, err)
	}
	var shards [2]*state.Store
	var sum state.Counts
	for i := range shards {
		if shards[i], err = state.Open(state.ShardPath(dir, i)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shards[i].Close() })
		accts, err := shards[i].Accounts("acme")
		if err != nil {
			t.Fatal(err)
		}
		// Each shard has copied part of its first account.
		a := accts[0]
		a.State, a.Counts = state.AccountRunning, state.Counts{ToImport: int64(10 * (i + 1)), Imported: int64(4 * (i + 1))}
		sum.Add(a.Counts)
		if err := shards[i].PutAccounts("acme", a); err != nil {
			t.Fatal(err)
		}
	}
	// The merge banjia serve --shards does (cmd/banjia mergedStatus),
	// enough of it for one job whose shards both answer.
	v := &web.ShardView{Token: "tok-7Hq", AdminUser: "admin", AdminPassword: adminPW, Dir: dir, Lang: "en",
		Jobs: func() ([]string, error) { return []string{"acme"}, nil },
		Status: func(job string) (*migrate.Status, error) {
			var out *migrate.Status
			for _, s := range shards {
				st, err := migrate.NewIdleManager(s, migrate.Config{}).Status(job)
				if err != nil {
					return nil, err
				}
				if out == nil {
					cp := *st
					cp.Accounts, cp.Job.Shard = nil, nil
					out = &cp
				}
				out.Accounts = append(out.Accounts, st.Accounts...)
			}
			return out, nil
		}}
	h, err := v.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	b := browser.Start(t)
	p := b.Tab(t)
	p.SetLanguage("zh-CN,zh;q=0.9")
	p.Go(srv.URL + "/admin")
	p.Fill("#admin-user", "admin")
	p.Fill("#admin-password", adminPW)
	p.Click("#admin-signin")
	p.WaitText("#job-acme .n-all", fmt.Sprint(total), 5*time.Second)
	if got := p.Text("#job-acme .n-in_progress"); got != "2" {
		t.Errorf("in progress over both shards: %q, want 2", got)
	}
	p.Go(srv.URL + "/admin/jobs/acme")
	p.WaitText("#job-counts", sum.Line("zh"), 5*time.Second)
	if n := browser.Eval[int](p, `document.querySelectorAll("#accounts-body > tr").length`); n != total {
		t.Errorf("job page: %d accounts, want %d", n, total)
	}
	if n := browser.Eval[int](p, `document.querySelectorAll("form[method=post]:not([action='/logout'])").length`); n != 0 {
		t.Errorf("job page: %d forms that post", n)
	}
	if txt := p.Text("#notice"); !strings.Contains(txt, "banjia job pause|resume|end acme --shards "+dir) {
		t.Errorf("notice: %q", txt)
	}

	// Shard 1's last account fails while the page is open.
	accts, _ := shards[1].Accounts("acme")
	a := accts[len(accts)-1]
	a.State, a.Reason = state.AccountFailed, "旧邮箱拒绝了密码"
	if err := shards[1].PutAccounts("acme", a); err != nil {
		t.Fatal(err)
	}
	failed, _ := state.Word("zh", "failed")
	p.WaitText("#acct-"+cssEscape(a.ID), failed, 5*time.Second)
	p.WaitText("#acct-"+cssEscape(a.ID), a.Reason, 5*time.Second)

	html := browser.Eval[string](p, `document.documentElement.outerHTML`)
	for i := range total {
		for _, pw := range []string{fmt.Sprintf("OldPw-%02d-secret", i), fmt.Sprintf("NewPw-%02d-secret", i)} {
			if strings.Contains(html, pw) {
				t.Fatalf("the page shows a member's password")
			}
		}
	}
	if strings.Contains(html, adminPW) || strings.Contains(html, "tok-7Hq") {
		t.Fatal("the page shows the admin's password or token")
	}
}

// cssEscape makes an account id (u01@old.test) a CSS id selector's part.
func cssEscape(id string) string {
	return strings.NewReplacer("@", `\@`, ".", `\.`).Replace(id)
}

// TestShardDashboardBeforeShards: before any shard has published its
// status, the job list says why it is empty instead of failing, and a
// wrong token does not sign in.
func TestShardDashboardBeforeShards(t *testing.T) {
	v := &web.ShardView{Token: "tok-7Hq", Dir: "/srv/shards",
		Jobs: func() ([]string, error) {
			return nil, errors.New("--shards /srv/shards: no shard-N.db nor shard-N.status.json in it")
		},
		Status: func(string) (*migrate.Status, error) { return nil, state.ErrNotFound }}
	h, err := v.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	csrf := ""
	do := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			form.Set("csrf", csrf)
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b); m != nil {
			csrf = string(m[1])
		}
		return resp.StatusCode, string(b)
	}
	do("GET", "/admin/login", nil)
	if code, page := do("POST", "/admin/login", url.Values{"token": {"tok-wrong"}}); code != http.StatusUnauthorized || strings.Contains(page, `id="jobs"`) {
		t.Fatalf("a wrong token: %d", code)
	}
	code, page := do("POST", "/admin/login", url.Values{"token": {"tok-7Hq"}})
	if code != 200 || !strings.Contains(page, `id="error">--shards /srv/shards: no shard-N.db`) || !strings.Contains(page, `id="jobs"`) {
		t.Fatalf("job list before the shards: %d\n%s", code, page)
	}
	if code, _ := do("GET", "/admin/jobs/acme", nil); code != http.StatusNotFound {
		t.Fatalf("a job no shard has: %d", code)
	}
}
