package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/notify/smtptest"
	"github.com/banjia-mail/banjia/state"
)

// TestJobInviteCLI: banjia job invite asks the running banjia serve to mail
// a member-triggered job's members, and with an old address invites that
// member again; the links name the port serve listens on when it was
// started with port 0; without serve the command says what to run.
func TestJobInviteCLI(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 2, Messages: 1, BadPassword: -1})
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "smtp-pw-cli-9"}})
	w.env = []string{"BANJIA_ADMIN_PASSWORD=admin-pw-cli-9", "BANJIA_SMTP_PASSWORD=smtp-pw-cli-9"}
	var csv strings.Builder
	for _, u := range w.Users {
		fmt.Fprintf(&csv, "%s,%s\n", u.Old, u.New)
	}
	if err := os.WriteFile(w.csv, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	w.mustBanjia(t, "job", "create", "acme", "--mode", "member", "--domain", "old.test", "--new-domain", "new.test",
		"--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
	if out, err := w.banjia(t, "job", "invite", "acme"); err == nil || !strings.Contains(out, "invitations are sent by banjia serve") {
		t.Fatalf("invite without serve: %v\n%s", err, out)
	}

	cmd, out := w.start0(t, "serve", "--listen", "localhost:0", "--smtp", fmt.Sprintf("smtps://banjia@new.test@%s:%d", mail.Host, mail.TLSPort), "--smtp-insecure")
	var port string
	waitUntil(t, func() bool {
		if m := regexp.MustCompile(`portal http://127\.0\.0\.1:(\d+)/`).FindStringSubmatch(out.String()); m != nil {
			port = m[1]
			return true
		}
		return cmd.ProcessState != nil
	})
	if port == "" {
		t.Fatalf("serve did not start:\n%s", out)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	link := "http://localhost:" + port + "/"

	if got := w.mustBanjia(t, "job", "invite", "acme"); !strings.Contains(got, "2 members of job acme invited by mail") {
		t.Fatalf("invite: %s", got)
	}
	msgs := mail.Wait(t, 2, 30*time.Second)
	for _, m := range msgs {
		if !strings.Contains(string(m.Data), link) {
			t.Fatalf("the invitation to %v does not link %s:\n%s", m.To, link, m.Data)
		}
	}
	if got := w.mustBanjia(t, "job", "invite", "acme"); !strings.Contains(got, "0 members of job acme invited by mail") {
		t.Fatalf("invite, all invited before: %s", got)
	}
	u := w.Users[1]
	if got := w.mustBanjia(t, "job", "invite", "acme", u.Old); !strings.Contains(got, "1 members of job acme invited by mail") {
		t.Fatalf("re-invite %s: %s", u.Old, got)
	}
	msgs = mail.Wait(t, 3, 30*time.Second)
	if to := strings.Join(msgs[2].To, ","); to != u.New {
		t.Fatalf("the re-invitation went to %s, not %s", to, u.New)
	}
	if got, err := w.banjia(t, "job", "invite", "acme", "nobody@old.test"); err == nil || !strings.Contains(got, "job acme has no account nobody@old.test") {
		t.Fatalf("invite a stranger: %v\n%s", err, got)
	}
	if events := w.mustBanjia(t, "logs", "--job", "acme"); !strings.Contains(events, state.Actor(migrate.CommandLine).String()+" invited again 1 members by mail") {
		t.Fatalf("the event log:\n%s", events)
	}
}
