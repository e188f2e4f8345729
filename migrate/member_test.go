package migrate_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/state"
)

// memberJob turns the world's job into a member-triggered one whose
// accounts have no old password yet.
func memberJob(t *testing.T, w *world, until time.Time) {
	t.Helper()
	j, err := w.Store.Job(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	j.Mode, j.Domain, j.NewDomain, j.EnrollUntil = state.ModeMember, "old.test", "new.test", until
	if err := w.Store.PutJob(j); err != nil {
		t.Fatal(err)
	}
	as, _ := w.Store.Accounts(w.Job)
	for _, a := range as {
		a.SourceSecret = nil
	}
	if err := w.Store.PutAccounts(w.Job, as...); err != nil {
		t.Fatal(err)
	}
}

func enroll(t *testing.T, w *world, u migratetest.User) {
	t.Helper()
	a, err := w.Store.Account(w.Job, u.Old)
	if err != nil {
		t.Fatal(err)
	}
	a.SourceSecret, _ = w.Store.Seal(u.OldPW)
	if err := w.Store.PutAccounts(w.Job, a); err != nil {
		t.Fatal(err)
	}
}

// TestMemberTriggered: a member job copies nobody until members enroll;
// one who enrolls while another is copying starts at once; the job waits
// while its window is open, and when it closes the members who never came
// are abandoned with the reason and the job completes.
func TestMemberTriggered(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 3, Messages: 200, BadPassword: -1})
	before := w.Sources()
	until := time.Now().Add(6 * time.Second)
	memberJob(t, w, until)
	r := runner(w, migrate.Config{Accounts: 3, Lanes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, w.Job) }()

	time.Sleep(500 * time.Millisecond)
	if n := w.TotalTarget(); n != 0 {
		t.Fatalf("%d messages copied before anyone enrolled", n)
	}
	enroll(t, w, w.Users[0])
	r.Wake()
	waitTarget(t, w, w.Users[0], 20)
	// The second member enrolls while the first is still copying.
	enroll(t, w, w.Users[1])
	t0 := time.Now()
	r.Wake()
	waitTarget(t, w, w.Users[1], 1)
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("an enrolled member waited %v", d)
	}
	select {
	case err := <-done:
		t.Fatalf("the job ended while its window was open: %v", err)
	case <-time.After(time.Until(until) - time.Second):
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(until) {
		t.Fatal("the job completed before its window closed")
	}
	as := accounts(t, w)
	for _, u := range w.Users[:2] {
		if as[u.Old].State != state.AccountSucceeded {
			t.Fatalf("%s: %s %s", u.Old, as[u.Old].State, as[u.Old].Reason)
		}
		migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	}
	late := as[w.Users[2].Old]
	if late.State != state.AccountAbandoned || !strings.Contains(late.Reason, "did not sign in to start the move before") {
		t.Fatalf("the member who never came: %s %q", late.State, late.Reason)
	}
	if n := migratetest.Count(t, w.Dst, w.Users[2].New, w.Users[2].NewPW); n != 0 {
		t.Fatalf("%d messages copied for a member who never came", n)
	}
	if j, _ := w.Store.Job(w.Job); j.State != state.JobCompleted {
		t.Fatalf("job %s", j.State)
	}
}

func waitTarget(t *testing.T, w *world, u migratetest.User, atLeast int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if migratetest.Count(t, w.Dst, u.New, u.NewPW) >= atLeast {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d messages on the target after a minute", u.New, atLeast)
}

func TestAddAccounts(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 1, BadPassword: -1})
	now := time.Now()
	row := func(old, oldPW, newPW string) []migrate.AccountRow {
		return []migrate.AccountRow{{Line: 2, Old: old, New: strings.Replace(old, "old", "new", 1), OldPassword: oldPW, NewPassword: newPW}}
	}
	cases := []struct {
		name string
		job  state.Job
		rows []migrate.AccountRow
		err  string
	}{
		{"passwords", state.Job{ID: "a", Mode: state.ModePasswords}, row("x@old.test", "o", "n"), ""},
		{"no old password", state.Job{ID: "a", Mode: state.ModePasswords}, row("x@old.test", "", "n"), "line 2: no old password for x@old.test"},
		{"no new password", state.Job{ID: "a", Mode: state.ModePasswords}, row("x@old.test", "o", ""), "line 2: no new password for x@new.test"},
		{"member without passwords", state.Job{ID: "a", Mode: state.ModeMember}, row("x@old.test", "", ""), ""},
		{"window open", state.Job{ID: "a", Mode: state.ModePasswords, EnrollUntil: now.Add(time.Hour)}, row("x@old.test", "o", "n"), ""},
		{"window closed", state.Job{ID: "a", Mode: state.ModePasswords, EnrollUntil: now.Add(-time.Hour)}, row("y@old.test", "o", "n"), "took new accounts until"},
		{"window closed, known account", state.Job{ID: w.Job, Mode: state.ModePasswords, EnrollUntil: now.Add(-time.Hour)}, row(w.Users[0].Old, "o2", "n2"), ""},
		{"ended", state.Job{ID: "a", Mode: state.ModePasswords, State: state.JobEnded}, row("x@old.test", "o", "n"), "was ended"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := migrate.AddAccounts(w.Store, &c.job, c.rows, now)
			if c.err == "" {
				if err != nil || n != 1 {
					t.Fatalf("%d %v", n, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want %q", err, c.err)
			}
			if strings.Contains(err.Error(), "o2") {
				t.Fatal("the error shows a password")
			}
		})
	}
	a, _ := w.Store.Account("a", "x@old.test")
	if a == nil || a.State != state.AccountNotStarted {
		t.Fatalf("added account: %+v", a)
	}
}

// TestFailedAccountStartedAgainWhileOthersCopy: an account fails (a wrong
// old password) while another is still copying; its member types the right
// password (the portal resets it to not started and wakes the job). It
// must be copied in this run, not left waiting for the next.
func TestFailedAccountStartedAgainWhileOthersCopy(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 40, BadPassword: 0})
	before := w.Sources()
	bad, slow := w.Users[0], w.Users[1]
	before[bad.Old] = migratetest.Snapshot(t, w.Src, bad.Old, bad.SourcePW)
	release := make(chan struct{})
	cfg := migrate.Config{Accounts: 2, Lanes: 1}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		if e.User != slow.New {
			return s, nil
		}
		return &heldSink{Sink: s, release: release}, nil
	}
	r := runner(w, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, w.Job) }()

	waitFor(t, "the account with the wrong password to fail", func() bool {
		a, err := w.Store.Account(w.Job, bad.Old)
		return err == nil && a.State == state.AccountFailed
	})
	a, err := w.Store.Account(w.Job, bad.Old)
	if err != nil {
		t.Fatal(err)
	}
	a.SourceSecret, _ = w.Store.Seal(bad.SourcePW)
	a.State, a.Reason = state.AccountNotStarted, ""
	if err := w.Store.PutAccounts(w.Job, a); err != nil {
		t.Fatal(err)
	}
	r.Wake()
	// The account is copied while the other one still waits.
	waitFor(t, "the account started again to be copied", func() bool {
		a, err := w.Store.Account(w.Job, bad.Old)
		return err == nil && a.State == state.AccountSucceeded
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, u := range w.Users {
		migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	}
	after := w.Sources()
	after[bad.Old] = migratetest.Snapshot(t, w.Src, bad.Old, bad.SourcePW)
	migratetest.Unchanged(t, before, after)
}

// heldSink holds every APPEND until release is closed.
type heldSink struct {
	sinks.Sink
	release chan struct{}
}

func (s *heldSink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return sinks.Appended{}, ctx.Err()
	}
	return s.Sink.Append(ctx, f, r, size, flags, date)
}
