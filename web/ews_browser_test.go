package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/browser"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
	"github.com/banjia-mail/banjia/state"
)

// TestBrowserEWSJob: in a real browser, the admin picks the delegated mode
// and the Exchange (EWS) page (in Chinese it asks in the seed's words), fills
// in the EWS address, domain and version and the migration admin, and
// creates the job; it runs, and the dashboard shows the mailbox moved with
// every message on the target.
func TestBrowserEWSJob(t *testing.T) {
	browser.Require(t)
	s := newSite(t, siteOptions{accounts: 1, messages: 1})
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "migadmin", Password: "Ews-Br0wser", Impersonate: true})
	s.secrets = append(s.secrets, "Ews-Br0wser")
	u := s.w.Users[0]
	want := seedEWS(srv, u.Old, 5, 30)
	b := browser.Start(t)
	base := s.http.URL

	signIn := func(tab *browser.Tab) {
		tab.Go(base + "/admin")
		tab.Fill("#admin-user", "admin")
		tab.Fill("#admin-password", adminPW)
		tab.Click("#admin-signin")
	}
	zh := b.Tab(t)
	zh.SetLanguage("zh-CN,zh;q=0.9")
	signIn(zh)
	zh.Go(base + "/admin/jobs/new?mode=delegated")
	zh.Click("#kind-ews")
	zh.WaitText("#ews", "exchange接收协议版本 (一般是用2010)", 5*time.Second)
	zh.WaitText("#ews", "ews_domain: 域名 (非必填)", time.Second)
	zh.WaitText("#ews-login-hint", `也可以是 域名\登录名 的形式`, time.Second)

	admin := b.Tab(t)
	admin.SetLanguage("en-US,en;q=0.9")
	signIn(admin)
	admin.Go(base + "/admin/jobs/new")
	admin.Click("#mode-delegated")
	admin.Click("#kind-ews")
	admin.WaitText("#ews-login-hint", `DOMAIN\name (CONTOSO\alice)`, 5*time.Second)
	admin.Fill("#f-id", "ews-browser")
	admin.Fill("#f-source", fmt.Sprintf("https://%s:%d/EWS/Exchange.asmx?insecure=1", srv.Host, srv.Port))
	admin.Fill("#f-ews-domain", "CONTOSO")
	admin.Fill("#f-ews-version", "Exchange2010_SP2")
	admin.Fill("#f-source-admin", "migadmin")
	admin.Fill("#f-source-admin-pw", "Ews-Br0wser")
	admin.Fill("#f-target", s.endpointURL(s.w.Dst.IMAPAddr))
	admin.Fill("#f-accounts", fmt.Sprintf("%s,%s,,%s", u.Old, u.New, u.NewPW))
	admin.Click("#create")
	admin.WaitText("h1", "ews-browser", 10*time.Second)
	n := sumCounts(want)
	admin.Go(base + "/admin/jobs/ews-browser?state=succeeded")
	admin.WaitText("#accounts", fmt.Sprintf("%d to import, %d imported, 0 failed", n, n), 2*time.Minute)

	j, err := s.w.Store.Job("ews-browser")
	if err != nil {
		t.Fatal(err)
	}
	if j.Source.Scheme != "ews" || j.Source.Domain != "CONTOSO" || j.Source.Version != "Exchange2010_SP2" || j.Source.User != "migadmin" || j.ModeOf() != state.ModeDelegated {
		t.Fatalf("stored source: %+v", j.Source)
	}
	got := 0
	for _, msgs := range s.w.Target(u) {
		for _, m := range msgs {
			if want[mailSum(m.Body, m.Flags, m.Date)] == 0 {
				t.Errorf("unexpected or duplicate message on the target (flags %v, date %v)", m.Flags, m.Date)
			}
			want[mailSum(m.Body, m.Flags, m.Date)]--
			got++
		}
	}
	if got != n || srv.Stats().Handshakes == 0 {
		t.Fatalf("%d messages on the target, want %d; NTLM logins %d", got, n, srv.Stats().Handshakes)
	}
	if strings.Contains(admin.Text("body"), "Ews-Br0wser") {
		t.Fatal("the admin's password is on the page")
	}
	s.noSecrets()
}
