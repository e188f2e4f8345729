package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/browser"
	"github.com/banjia-mail/banjia/internal/migratetest"
)

// TestBrowserFolderChoicesAndAccountActions: in a real browser the admin
// creates a job with a rename and an exclude in the new-job form (the
// target gets exactly that), abandons the failed account with the account
// actions (every account in a state), retries it by state, reads the
// settings page (查看设置) and deletes the job there, which asks for a tick
// first.
func TestBrowserFolderChoicesAndAccountActions(t *testing.T) {
	browser.Require(t)
	s := newSite(t, siteOptions{accounts: 2, messages: 60, bad: 2})
	u := s.w.Users
	b := browser.Start(t)
	admin := b.Tab(t)
	admin.SetLanguage("zh-CN,zh;q=0.9")
	admin.Go(s.http.URL + "/admin")
	admin.Fill("#admin-user", "admin")
	admin.Fill("#admin-password", adminPW)
	admin.Click("#admin-signin")
	admin.Go(s.http.URL + "/admin/jobs/new?mode=passwords")
	admin.Fill("#f-id", "moves")
	admin.Fill("#f-source", s.endpointURL(s.w.Src.IMAPAddr))
	admin.Fill("#f-target", s.endpointURL(s.w.Dst.IMAPAddr))
	admin.Fill("#f-accounts", s.w.CSV())
	admin.Fill("#f-renames", "Archive/2019=Old/2019\n客户/北京=Clients/Beijing")
	admin.Fill("#f-excludes", "Junk\n项目*")
	admin.Click("#create")
	s.waitAccount("moves", u[0].Old, "succeeded", time.Minute)
	s.waitAccount("moves", u[1].Old, "failed", time.Minute)
	waitFor(t, "the job to complete", 30*time.Second, func() bool { return s.jobState("moves") == "completed" })

	want := migratetest.Mailbox{}
	for name, msgs := range s.w.Sources()[u[0].Old] {
		switch {
		case name == "Junk" || strings.HasPrefix(name, "项目"):
			continue
		case name == "Archive/2019":
			name = "Old/2019"
		case name == "客户/北京":
			name = "Clients/Beijing"
		}
		want[name] = msgs
	}
	got := s.w.Target(u[0])
	for _, f := range []string{"Junk", "Archive/2019", "客户/北京"} {
		if _, ok := got[f]; ok {
			t.Errorf("the target has a folder %q", f)
		}
	}
	migratetest.SameMail(t, u[0].Old, want, got)

	admin.Go(s.http.URL + "/admin/jobs/moves")
	admin.Fill("#acct-state", "failed")
	admin.Click("#acct-abandon")
	admin.WaitText("#notice", "放弃: 1 个帐号 ("+u[1].Old+")", 5*time.Second)
	if a := s.accounts("moves")[u[1].Old]; a.State != "abandoned" || a.Reason != "abandoned by the admin (dashboard)" {
		t.Fatalf("abandoned from the page: %+v", a)
	}
	admin.Fill("#acct-state", "abandoned")
	admin.Click("#acct-retry")
	admin.WaitText("#notice", "重试: 1 个帐号", 5*time.Second)
	// Its old password is still the wrong one: it fails again, as failed
	// (an engine failure), no longer abandoned.
	s.waitAccount("moves", u[1].Old, "failed", time.Minute)

	admin.Click("#settings-link")
	admin.WaitText("#set-renames", "Archive/2019=Old/2019", 5*time.Second)
	if txt := admin.Text("#set-excludes"); !strings.Contains(txt, "Junk") || !strings.Contains(txt, "项目*") {
		t.Fatalf("settings page, excludes: %s", txt)
	}
	if txt := admin.Text("#set-source"); txt != s.endpointURL(s.w.Src.IMAPAddr) {
		t.Fatalf("settings page, source: %s", txt)
	}
	waitFor(t, "the retry to end", 30*time.Second, func() bool { return !s.m.Running("moves") })
	admin.Go(s.http.URL + "/admin/jobs/moves/settings")
	// Not ticked: the browser does not send the form.
	admin.Click("#delete-job")
	if s.jobState("moves") == "" {
		t.Fatal("the job was deleted without the tick")
	}
	admin.Click("#delete-confirm")
	admin.Click("#delete-job")
	admin.WaitText("#notice", "搬家任务 moves 已删除", 5*time.Second)
	if st := s.jobState("moves"); st != "" {
		t.Fatalf("deleted job: %q", st)
	}
	s.noSecrets()
}
