package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/notify/smtptest"
	"github.com/banjia-mail/banjia/state"
)

// lateNotifier lets a test make the notifier over the site's own state
// file after the site is up.
type lateNotifier struct{ n *notify.Notifier }

func (l *lateNotifier) Invite(job *state.Job, a *state.Account, portal, lang string) bool {
	return l.n.Invite(job, a, portal, lang)
}

func (l *lateNotifier) AccountFinished(job *state.Job, a *state.Account, lang string) {
	l.n.AccountFinished(job, a, lang)
}

func (l *lateNotifier) JobFinished(job *state.Job, accts []*state.Account, lang string) {
	l.n.JobFinished(job, accts, lang)
}

// TestOutboxPage: invitations sent while the SMTP server is down wait in
// the outbox, the members count as invited, and the dashboard's outbox page
// and the API list them with the reason; once the server is back the
// admin's "send all again" delivers them and the page says the outbox is empty.
func TestOutboxPage(t *testing.T) {
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "smtp-pw-ob"}})
	mail.Stop()
	late := &lateNotifier{}
	s := newSite(t, siteOptions{accounts: 2, messages: 1, notifier: late})
	nt, err := notify.New(notify.Config{Host: mail.Host, Port: mail.TLSPort, Security: notify.SecurityTLS, User: "banjia@new.test",
		Password: "smtp-pw-ob", RootCAs: mail.RootCAs, Backoff: time.Hour, Outbox: s.w.Store}, nil)
	if err != nil {
		t.Fatal(err)
	}
	late.n = nt
	t.Cleanup(func() { nt.Close(t.Context()) })
	var csv strings.Builder
	for _, u := range s.w.Users {
		fmt.Fprintf(&csv, "%s,%s\n", u.Old, u.New)
	}
	var out map[string]any
	if code := s.api("POST", "/api/jobs", map[string]any{"id": "ob", "mode": "member", "domain": "old.test", "new_domain": "new.test",
		"source": s.endpointURL(s.w.Src.IMAPAddr), "target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": csv.String(),
		"start": true, "invite": true}, &out); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	var mails []state.OutMail
	for {
		s.api("GET", "/api/outbox", nil, &mails)
		if len(mails) == 2 && (mails[0].Attempts > 0 || mails[1].Attempts > 0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %+v, want 2 invitations, one tried", mails)
		}
		time.Sleep(20 * time.Millisecond)
	}
	admin := s.client("en")
	admin.get("/admin/login")
	admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}})
	code, page := admin.get("/admin/outbox")
	if code != 200 {
		t.Fatalf("outbox page: %d", code)
	}
	for _, want := range []string{s.w.Users[0].New, s.w.Users[1].New, "invitation", "cannot connect", "Send all again now"} {
		if !strings.Contains(page, want) {
			t.Errorf("the outbox page does not show %q:\n%s", want, page)
		}
	}
	if _, body := admin.get("/admin"); !strings.Contains(body, `href="/admin/outbox"`) {
		t.Errorf("the dashboard does not link the outbox")
	}

	mail.Restart(t)
	admin.post("/admin/outbox/retry", url.Values{})
	mail.Wait(t, 2, 20*time.Second)
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, page = admin.get("/admin/outbox")
		if strings.Contains(page, "outbox-empty") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox page after the mails went out:\n%s", page)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.secrets = append(s.secrets, "smtp-pw-ob")
	s.noSecrets()
}
