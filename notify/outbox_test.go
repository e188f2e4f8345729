package notify_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/notify/smtptest"
	"github.com/banjia-mail/banjia/state"
)

func openStore(t *testing.T, path string) *state.Store {
	t.Helper()
	st, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// outboxConfig is tlsConfig with the mail kept in st until sent, and short
// waits between tries.
func outboxConfig(srv *smtptest.Server, st *state.Store) notify.Config {
	cfg := tlsConfig(srv)
	cfg.Outbox, cfg.Backoff, cfg.MaxBackoff = st, 20*time.Millisecond, 200*time.Millisecond
	return cfg
}

func memberAccount(i int) *state.Account {
	a := succeeded()
	a.ID, a.Target = fmt.Sprintf("m%03d@old.example", i), fmt.Sprintf("m%03d@new.example", i)
	return a
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOutboxKeepsMailWhileServerDown: with the SMTP server down, 300 mails
// (more than the old in-memory queue's 256 slots) are all kept, listed with
// the reason, and the server is not hammered; when it comes back every mail
// goes out once and the outbox empties.
func TestOutboxKeepsMailWhileServerDown(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	srv.Stop()
	st := openStore(t, filepath.Join(t.TempDir(), "banjia.db"))
	defer st.Close()
	h := start(t, outboxConfig(srv, st))
	const n = 300
	for i := range n {
		h.n.AccountFinished(testJob(), memberAccount(i), "en")
	}
	waitFor(t, "a failed try recorded", 10*time.Second, func() bool {
		mails, _ := st.Outbox()
		return slices.ContainsFunc(mails, func(m *state.OutMail) bool { return m.Attempts > 0 })
	})
	time.Sleep(300 * time.Millisecond)
	mails, err := st.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(mails) != n {
		t.Fatalf("%d mails in the outbox while the server is down, want all %d", len(mails), n)
	}
	tried := 0
	for _, m := range mails {
		if m.Attempts > 0 {
			tried++
			if !strings.Contains(m.LastError, "connect") && !strings.Contains(m.LastError, "refused") {
				t.Errorf("mail %d: last error %q does not say the server cannot be reached", m.Seq, m.LastError)
			}
		}
		if m.Kind != notify.KindMember || m.Job != "j1" || len(m.To) != 1 {
			t.Errorf("mail %d: kind %q job %q to %v", m.Seq, m.Kind, m.Job, m.To)
		}
	}
	// One mail probes the server while it is down; the others wait.
	if tried > 10 {
		t.Errorf("%d of %d mails tried while the server was down: each should not fail in turn", tried, n)
	}
	for _, f := range h.finals() {
		t.Errorf("a mail was given up: %v", f)
	}

	srv.Restart(t)
	msgs := srv.Wait(t, n, 30*time.Second)
	waitFor(t, "the outbox empties", 10*time.Second, func() bool {
		left, _ := st.Outbox()
		return len(left) == 0
	})
	time.Sleep(100 * time.Millisecond)
	if got := len(srv.Messages()); got != n {
		t.Errorf("%d mails arrived, want %d", got, n)
	}
	seen := map[string]int{}
	for _, m := range msgs {
		for _, to := range m.To {
			seen[to]++
		}
	}
	for i := range n {
		if to := memberAccount(i).Target; seen[to] != 1 {
			t.Errorf("%s got %d mails, want 1", to, seen[to])
		}
	}
	if sent := st.OutboxSent(); sent != n {
		t.Errorf("the outbox counts %d sent, want %d", sent, n)
	}
	if err := h.close(t); err != nil {
		t.Errorf("Close with an empty outbox: %v", err)
	}
}

// TestOutboxSurvivesRestart: mails queued while the server is down stay in
// the state file when banjia stops; the next run, on the reopened file,
// sends them.
func TestOutboxSurvivesRestart(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	srv.Stop()
	path := filepath.Join(t.TempDir(), "banjia.db")
	st := openStore(t, path)
	n, err := notify.New(outboxConfig(srv, st), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.AccountFinished(testJob(), succeeded(), "zh")
	n.JobFinished(testJob(), []*state.Account{succeeded(), failed()}, "zh")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err = n.Close(ctx)
	cancel()
	if !errors.Is(err, notify.ErrMailWaiting) || !strings.Contains(err.Error(), "2 notification mails wait") {
		t.Fatalf("Close with the server down: %v, want 2 mails waiting", err)
	}
	st.Close()

	srv.Restart(t)
	st = openStore(t, path)
	defer st.Close()
	n, err = notify.New(outboxConfig(srv, st), nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Wait(t, 2, 10*time.Second)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var tos [][]string
	for _, m := range msgs {
		tos = append(tos, m.To)
	}
	if len(msgs) != 2 || !slices.ContainsFunc(tos, func(to []string) bool { return slices.Equal(to, []string{member}) }) ||
		!slices.ContainsFunc(tos, func(to []string) bool { return slices.Equal(to, []string{admin1, admin2}) }) {
		t.Fatalf("after the restart: recipients %v, want the member's mail and the admins' digest", tos)
	}
	subject, body := decode(t, msgs[slices.IndexFunc(tos, func(to []string) bool { return len(to) == 2 })])
	mustContain(t, "digest", subject+body, "搬家任务", "搬家成功1个", "li.na@old.example", "the admin has no migration permission")
}

// TestOutboxHoldsRefusedMail: a recipient refused for good is held, listed
// with the server's words, not retried on its own; the admin's retry sends it.
func TestOutboxHoldsRefusedMail(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	srv.Fail(smtptest.CmdRcpt, smtptest.Reply(550, "5.1.1 no such user"))
	st := openStore(t, filepath.Join(t.TempDir(), "banjia.db"))
	defer st.Close()
	h := start(t, outboxConfig(srv, st))
	h.n.AccountFinished(testJob(), succeeded(), "en")
	h.waitFinals(t, 1)
	mails, _ := st.Outbox()
	if len(mails) != 1 || !mails[0].Held || !strings.Contains(mails[0].LastError, "no such user") {
		t.Fatalf("outbox %+v, want the mail held with the refusal", mails)
	}
	time.Sleep(300 * time.Millisecond)
	if a := srv.Attempts(smtptest.CmdRcpt); a != 1 {
		t.Errorf("a held mail was tried %d times, want 1", a)
	}
	if _, err := st.RetryMail(mails[0].Seq); err != nil {
		t.Fatal(err)
	}
	// The sender learns of it at its next look, or at once on a new mail.
	h.n.Invite(testJob(), memberAccount(1), "http://portal.example/", "en")
	srv.Wait(t, 2, 10*time.Second)
	waitFor(t, "the outbox empties", 5*time.Second, func() bool {
		left, _ := st.Outbox()
		return len(left) == 0
	})
}
