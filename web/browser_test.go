package web_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/browser"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/notify/smtptest"
)

// TestBrowserEndToEnd is the whole 邮箱搬家 (docs/requirements.md) in a real browser: the
// admin creates a member-triggered job on the dashboard, members sign in
// with their new password and type the old one (a wrong one first, in
// English and in Chinese), the move runs, the dashboard shows the counts,
// pause / resume / end reach the job, and the notification mails arrive at
// a real SMTP server with the same counts.
func TestBrowserEndToEnd(t *testing.T) {
	browser.Require(t)
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "smtp-pw-77Qa"}})
	nt, err := notify.New(notify.Config{Host: mail.Host, Port: mail.TLSPort, Security: notify.SecurityTLS, User: "banjia@new.test",
		Password: "smtp-pw-77Qa", Admins: []string{"it@new.test"}, RootCAs: mail.RootCAs, Backoff: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, siteOptions{accounts: 3, messages: 60, notifier: nt})
	nt.OnError(s.srv.NotifyError)
	t.Cleanup(func() { nt.Close(t.Context()) })
	b := browser.Start(t)
	base := s.http.URL
	u0, u1 := s.w.Users[0], s.w.Users[1]

	// The admin signs in and creates the job, checking the connection first.
	admin := b.Tab(t)
	admin.SetLanguage("en-US,en;q=0.9")
	admin.Go(base + "/admin")
	admin.Fill("#admin-user", "admin")
	admin.Fill("#admin-password", adminPW)
	admin.Click("#admin-signin")
	admin.WaitText("h1", "Jobs", 5*time.Second)
	admin.Click("#new-job")
	admin.Fill("#f-id", "acme")
	admin.Fill("#f-domain", "old.test")
	admin.Fill("#f-new-domain", "new.test")
	admin.Fill("#f-source", s.endpointURL(s.w.Src.IMAPAddr))
	admin.Fill("#f-target", s.endpointURL(s.w.Dst.IMAPAddr))
	admin.Fill("#f-check-user", u0.Old)
	admin.Fill("#f-check-pw", u0.OldPW)
	admin.Click("#check")
	admin.WaitText("#check-ok", "Connection checked", 10*time.Second)
	if txt := admin.Text("#check-report"); !strings.Contains(txt, "login") {
		t.Fatalf("check report: %s", txt)
	}
	admin.Click("#create")
	admin.WaitText("#job-state", "running", 10*time.Second)

	// A member signs in with the new mailbox's password and types a wrong
	// old one: a clear message, nothing started.
	m0 := b.Tab(t)
	m0.SetLanguage("en-US,en;q=0.9")
	m0.Go(base + "/")
	m0.Fill("#address", u0.New)
	m0.Fill("#password", u0.NewPW)
	m0.Click("#signin")
	m0.WaitText("h1", "Your old mailbox", 5*time.Second)
	if got := m0.Text("#who"); got != u0.New {
		t.Fatalf("signed in as %q", got)
	}
	m0.Fill("#old-password", "wrong-old")
	m0.Click("#start")
	m0.WaitText("#error", "The old mailbox did not accept this password, so nothing was started", 10*time.Second)
	if _, ok := s.accounts("acme")[u0.Old]; ok {
		t.Fatal("a wrong old password started a move")
	}

	// The same in Chinese, for another member; repeated, it locks them out.
	m1 := b.Tab(t)
	m1.SetLanguage("zh-CN,zh;q=0.9")
	m1.Go(base + "/")
	m1.WaitText("h1", "把旧邮箱搬到这里", 5*time.Second)
	m1.Fill("#address", u1.New)
	m1.Fill("#password", u1.NewPW)
	m1.Click("#signin")
	m1.WaitText("h1", "你的旧邮箱", 5*time.Second)
	for i := 0; i < 3; i++ {
		m1.Fill("#old-password", fmt.Sprintf("wrong-old-%d", i))
		m1.Click("#start")
		m1.WaitText("#error", "旧邮箱没有接受这个密码, 搬家没有启动", 10*time.Second)
	}
	m1.Fill("#old-password", u1.OldPW)
	m1.Click("#start")
	m1.WaitText("#error", "失败次数过多, 请15分钟后再试", 10*time.Second)
	if _, ok := s.accounts("acme")[u1.Old]; ok {
		t.Fatal("a locked-out member started a move")
	}

	// The right old password: the move runs and the member watches it.
	m0.Fill("#old-password", u0.OldPW)
	m0.Click("#start")
	want := len(flatten(s.w.Sources()[u0.Old]))
	counts := fmt.Sprintf("%d to import, %d imported, 0 failed", want, want)
	m0.WaitText("#my-state", "succeeded", 2*time.Minute)
	m0.WaitText("#my-counts", counts, 5*time.Second)
	migratetest.SameMail(t, u0.Old, s.w.Sources()[u0.Old], s.w.Target(u0))

	// The dashboard shows it, live.
	admin.Go(base + "/admin")
	admin.WaitText("#job-acme .n-succeeded", "1", 10*time.Second)
	admin.Go(base + "/admin/jobs/acme?state=succeeded")
	admin.WaitText("#accounts", u0.Old+" → "+u0.New, 5*time.Second)
	admin.WaitText("#accounts", counts, 5*time.Second)
	admin.WaitText("#accounts", "succeeded", 5*time.Second)
	admin.WaitText("#events", u0.New+" typed the old password for "+u0.Old, 5*time.Second)

	// The notification: to the member only (the admin gets the job's
	// digest), with the counts.
	msgs := mail.Wait(t, 1, 30*time.Second)
	body, err := msgs[0].Text()
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := msgs[0].Subject()
	if !strings.Contains(body, counts) || !strings.Contains(body+subject, "succeeded") || !msgs[0].TLS {
		t.Fatalf("member mail: %q\n%s", subject, body)
	}
	to := strings.Join(msgs[0].To, ",")
	if to != u0.New {
		t.Fatalf("member mail went to %s", to)
	}

	// Pause, resume and end from the dashboard reach the job within a second.
	admin.Go(base + "/admin")
	for _, step := range []struct{ button, want string }{{"#pause-acme", "paused"}, {"#resume-acme", "running"}, {"#end-acme", "ended"}} {
		if step.want == "ended" {
			// End asks first, on a page of its own; the job runs on meanwhile.
			admin.Click(step.button)
			admin.WaitText("h1", "End job acme?", 5*time.Second)
			if st := s.jobState("acme"); st != "running" {
				t.Fatalf("the End button alone left the job %s", st)
			}
			step.button = "#end-confirm"
		}
		t0 := time.Now()
		admin.Click(step.button)
		for s.jobState("acme") != step.want {
			if time.Since(t0) > time.Second {
				t.Fatalf("%s: the job is %q after %v", step.button, s.jobState("acme"), time.Since(t0))
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s reached the job in %v", step.button, time.Since(t0))
		admin.WaitText("#job-acme .st", map[string]string{"paused": "paused", "running": "running", "ended": "ended"}[step.want], 5*time.Second)
	}
	// Ended: the admin is told how the job finished.
	msgs = mail.Wait(t, 2, 30*time.Second)
	sum, _ := msgs[1].Text()
	if !strings.Contains(sum, counts) || strings.Contains(strings.Join(msgs[1].To, ","), u0.New) {
		t.Fatalf("job summary to %v:\n%s", msgs[1].To, sum)
	}

	// The pages carried no secret: the last ones of each tab, and the mails.
	for _, text := range []string{admin.Text("body"), m0.Text("body"), m1.Text("body"), body, sum} {
		s.seen.Write([]byte(text))
	}
	s.secrets = append(s.secrets, "smtp-pw-77Qa", "wrong-old-0", "wrong-old-2")
	s.noSecrets()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestNotifyFailureSurfaces: a notification the SMTP server refuses (a
// wrong password) does not hold up the move, and the admin sees why in the
// event log and /metrics.
func TestNotifyFailureSurfaces(t *testing.T) {
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "right-smtp-pw"}})
	nt, err := notify.New(notify.Config{Host: mail.Host, Port: mail.StartTLSPort, Security: notify.SecurityStartTLS,
		User: "banjia@new.test", Password: "wrong-smtp-pw-5", Admins: []string{"it@new.test"}, RootCAs: mail.RootCAs, Retries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, siteOptions{accounts: 1, messages: 5, notifier: nt})
	nt.OnError(s.srv.NotifyError)
	t.Cleanup(func() { nt.Close(t.Context()) })
	var out map[string]any
	if code := s.api("POST", "/api/jobs", map[string]any{"id": "one", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": s.w.CSV(), "enroll_days": 0, "start": true}, &out); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	s.waitAccount("one", s.w.Users[0].Old, "succeeded", time.Minute)
	waitFor(t, "the job to complete", 30*time.Second, func() bool { return s.jobState("one") == "completed" })
	var evs []map[string]any
	waitFor(t, "notify.failed events", 30*time.Second, func() bool {
		s.api("GET", "/api/events", nil, &evs)
		n := 0
		for _, e := range evs {
			if e["Kind"] == "notify.failed" {
				n++
				if msg := fmt.Sprint(e["Message"]); !strings.Contains(msg, "refused the login for banjia@new.test") {
					t.Fatalf("event: %s", msg)
				}
			}
		}
		return n == 2 // the account's mail and the job's summary
	})
	resp, err := http.Get(s.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `banjia_errors_total{class="notify"} 2`) {
		t.Fatalf("metrics:\n%s", b)
	}
	if len(mail.Messages()) != 0 {
		t.Fatal("mail was sent with a wrong password")
	}
	s.secrets = append(s.secrets, "wrong-smtp-pw-5", "right-smtp-pw")
	s.noSecrets()
}

// invitedJob is a site with mail (the SMTP login's password smtpPW) whose
// member-triggered job id lists its two users (old address, new address)
// with messages each, started and its members invited at creation.
func invitedJob(t *testing.T, id string, messages int, smtpPW string) (*site, *smtptest.Server) {
	return invitedJobOn(t, "", id, messages, smtpPW)
}

// invitedJobOn is invitedJob with another new server: "cyrus", "courier"
// ("": Dovecot).
func invitedJobOn(t *testing.T, target, id string, messages int, smtpPW string) (*site, *smtptest.Server) {
	t.Helper()
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": smtpPW}})
	nt, err := notify.New(notify.Config{Host: mail.Host, Port: mail.TLSPort, Security: notify.SecurityTLS, User: "banjia@new.test",
		Password: smtpPW, RootCAs: mail.RootCAs, Backoff: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, siteOptions{accounts: 2, messages: messages, notifier: nt, target: target})
	t.Cleanup(func() { nt.Close(t.Context()) })
	var csv strings.Builder
	for _, u := range s.w.Users {
		fmt.Fprintf(&csv, "%s,%s\n", u.Old, u.New)
	}
	var out map[string]any
	if code := s.api("POST", "/api/jobs", map[string]any{"id": id, "mode": "member", "domain": "old.test", "new_domain": "new.test",
		"source": s.endpointURL(s.w.Src.IMAPAddr), "target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": csv.String(),
		"start": true, "invite": true}, &out); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	return s, mail
}

// TestInviteMembers: 发送提醒邮件给所有搬家成员 (R11): the listed members of a
// member-triggered job are asked by mail, once, to start at the portal, in
// the language of the server.
func TestInviteMembers(t *testing.T) {
	s, mail := invitedJob(t, "inv", 3, "smtp-pw-inv")
	msgs := mail.Wait(t, 2, 30*time.Second)
	for i, u := range s.w.Users {
		var m *smtptest.Message
		for k := range msgs {
			if strings.Join(msgs[k].To, ",") == u.New {
				m = &msgs[k]
			}
		}
		if m == nil {
			t.Fatalf("no invitation for %s among %d mails", u.New, len(msgs))
		}
		body, _ := m.Text()
		subject, _ := m.Subject()
		if !strings.Contains(subject, u.Old) || !strings.Contains(body, s.http.URL+"/") || !strings.Contains(body, u.New) {
			t.Fatalf("invitation %d: %q\n%s", i, subject, body)
		}
	}
	// Once only.
	var inv map[string]int
	if code := s.api("POST", "/api/jobs/inv/invite", nil, &inv); code != 200 || inv["invited"] != 0 {
		t.Fatalf("second invitation: %d %v", code, inv)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(mail.Messages()); n != 2 {
		t.Fatalf("%d mails after a second invitation, want 2", n)
	}
	var evs []map[string]any
	s.api("GET", "/api/jobs/inv/events", nil, &evs)
	found := false
	for _, e := range evs {
		if e["Kind"] == "job.invited" && strings.Contains(fmt.Sprint(e["Message"]), "API token api invited 2 members by mail") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no job.invited event: %v", evs)
	}
	s.secrets = append(s.secrets, "smtp-pw-inv")
	s.noSecrets()
}

// TestBrowserRetryFailed: in Chromium, in Chinese, the job page of a job
// whose target refused a folder offers 重试失败的账号; once the cause is
// fixed, the button runs the account again and it succeeds; the Verify form
// (deep) then shows that every folder holds its source's messages once.
func TestBrowserRetryFailed(t *testing.T) {
	browser.Require(t)
	s := newSite(t, siteOptions{accounts: 1, messages: 8, sourceConfig: migratetest.ListEscape})
	u := s.w.Users[0]
	s.w.AddRefusedFolder(u)
	before := s.w.Sources()
	if code := s.api("POST", "/api/jobs", map[string]any{"id": "fix", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": s.w.CSV(), "start": true}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	s.waitAccount("fix", u.Old, "partial", 2*time.Minute)

	b := browser.Start(t)
	admin := b.Tab(t)
	admin.SetLanguage("zh-CN,zh;q=0.9")
	admin.Go(s.http.URL + "/admin")
	admin.Fill("#admin-user", "admin")
	admin.Fill("#admin-password", adminPW)
	admin.Click("#admin-signin")
	admin.Go(s.http.URL + "/admin/jobs/fix")
	admin.WaitText("#accounts", "部分失败", 10*time.Second)
	admin.WaitText("#retry-form", "重试失败的账号", 5*time.Second)
	admin.WaitText("#not-copied", "没有搬过去的邮件: 3 封", 5*time.Second)
	admin.Click("#report-link")
	admin.WaitText("#report", "Begins with '~'", 5*time.Second)
	admin.Click("#back")

	j, err := s.w.Store.Job("fix")
	if err != nil {
		t.Fatal(err)
	}
	j.Options.Renames = map[string]string{"~home": "home"}
	if err := s.w.Store.PutJob(j); err != nil {
		t.Fatal(err)
	}
	admin.Click("#retry-fix")
	admin.WaitText("#notice", "正在重试失败或部分失败的账号 (1 个): "+u.Old, 5*time.Second)
	admin.WaitText("#acct-"+strings.ReplaceAll(strings.ReplaceAll(u.Old, "@", "\\@"), ".", "\\."), "搬家成功", 2*time.Minute)
	want := before[u.Old]
	want["home"] = want["~home"]
	delete(want, "~home")
	migratetest.SameMail(t, u.Old, want, s.w.Target(u))

	// The admin gives the passwords again (new ones replace the kept
	// ones), then verifies, deep.
	admin.Fill("#add-accounts", fmt.Sprintf("%s,%s,%s,%s", u.Old, u.New, u.OldPW, u.NewPW))
	admin.Click("#add")
	waitFor(t, "the job to complete", 30*time.Second, func() bool { return s.jobState("fix") == "completed" })
	admin.Click("#verify-deep")
	admin.Click("#verify")
	admin.WaitText("#notice", "核对已开始", 5*time.Second)
	admin.WaitText("#verify-line", "每个文件夹都与原邮箱一致", time.Minute)
	if txt := admin.Text("#verify-line"); !strings.Contains(txt, "深度") || !strings.Contains(txt, "0 个不一致") {
		t.Fatalf("verify line: %s", txt)
	}
	if os.Getenv("BANJIA_SCREENSHOT") != "" {
		admin.Screenshot(os.Getenv("BANJIA_SCREENSHOT"))
	}
	s.noSecrets()
}
