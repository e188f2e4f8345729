package migrate_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// These tests need no mail server: a member-triggered job without
// enrolled members runs, waiting for them, and that is enough to drive.

func tempStore(t *testing.T) *state.Store {
	t.Helper()
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func memberRequest(id string) migrate.JobRequest {
	return migrate.JobRequest{ID: id, Mode: state.ModeMember, Domain: "old.test", NewDomain: "new.test", EnrollDays: 30,
		Source: mail.Endpoint{Scheme: "imap", Host: "old.test", Port: 143}, Target: mail.Endpoint{Scheme: "imap", Host: "new.test", Port: 143}}
}

// TestCreateChecksAndLeavesNothingHalfMade: every door creates a job
// through Manager.Create: a name that needs quoting is refused, a CSV
// refused part-way leaves no job behind (the name can be used again once
// the input is fixed), and no secret is kept in the clear.
func TestCreateChecksAndLeavesNothingHalfMade(t *testing.T) {
	store := tempStore(t)
	m := migrate.NewIdleManager(store, migrate.Config{})
	for _, bad := range []string{"", "has space", "../up", "-flag", "a/b", strings.Repeat("x", 65)} {
		req := memberRequest(bad)
		if _, _, err := m.Create(context.Background(), req, "test"); err == nil || !strings.Contains(err.Error(), "job name") {
			t.Errorf("job name %q: %v, want it refused", bad, err)
		}
	}
	req := memberRequest("acme")
	req.Mode = state.ModePasswords
	req.Accounts = []migrate.AccountRow{
		{Line: 1, Old: "a@old.test", New: "a@new.test", OldPassword: "old-secret-1", NewPassword: "new-secret-1"},
		{Line: 2, Old: "b@old.test", New: "b@new.test"}, // no passwords: refused
	}
	if _, _, err := m.Create(context.Background(), req, "test"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("CSV without a password: %v", err)
	}
	if _, err := store.Job("acme"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a half-made job stayed behind: %v", err)
	}
	if as, _ := store.Accounts("acme"); len(as) != 0 {
		t.Fatalf("%d accounts of a refused job stayed behind", len(as))
	}
	req.Accounts = req.Accounts[:1]
	req.TargetAdmin, req.TargetAdminPassword = "master", "master-secret"
	job, n, err := m.Create(context.Background(), req, "test")
	if err != nil || n != 1 {
		t.Fatalf("create after the fix: %d accounts, %v", n, err)
	}
	if job.Target.User != "master" || len(job.TargetAdminSecret) == 0 || job.Target.Password != "" {
		t.Fatalf("target admin not sealed: %+v", job.Target)
	}
	if _, _, err := m.Create(context.Background(), req, "test"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create of acme: %v", err)
	}
	evs, _ := store.Events("acme", 0, 0)
	if len(evs) != 1 || evs[0].Kind != "job.created" || !strings.Contains(evs[0].Message, "created by test") {
		t.Fatalf("events: %+v", evs)
	}
}

// TestIdleManagerStartsNothing: a command run while no banjia process
// holds the state file changes the records only; the job waits for its
// start.
func TestIdleManagerStartsNothing(t *testing.T) {
	store := tempStore(t)
	m := migrate.NewIdleManager(store, migrate.Config{})
	if _, _, err := m.Create(context.Background(), memberRequest("acme"), "test"); err != nil {
		t.Fatal(err)
	}
	if err := m.Control("acme", "pause", "test"); err != nil {
		t.Fatal(err)
	}
	if err := m.Control("acme", "resume", "test"); err != nil {
		t.Fatal(err)
	}
	if m.Running("acme") {
		t.Fatal("an idle manager started the job")
	}
	if err := m.Control("acme", "start", "test"); !errors.Is(err, migrate.ErrNoRunner) {
		t.Fatalf("start on an idle manager: %v", err)
	}
	j, _ := store.Job("acme")
	if j.State != state.JobRunning {
		t.Fatalf("state after resume: %s", j.State)
	}
}

// TestManagerPauseRightAfterStart: Start returns once the runner holds the
// job, so a pause sent at once reaches it (Start waits on the runner, not
// on a clock).
func TestManagerPauseRightAfterStart(t *testing.T) {
	store := tempStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := migrate.NewManager(ctx, store, migrate.Config{})
	defer m.Stop()
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		if _, _, err := m.Create(ctx, memberRequest(id), "test"); err != nil {
			t.Fatal(err)
		}
		if err := m.Start(id); err != nil {
			t.Fatal(err)
		}
		if err := m.Control(id, "pause", "test"); err != nil {
			t.Fatalf("job %d: pause right after start: %v", i, err)
		}
		st, err := m.Status(id)
		if err != nil || st.Job.State != state.JobPaused || !st.Attached {
			t.Fatalf("job %d after pause: %+v, %v", i, st, err)
		}
		if err := m.Control(id, "end", "test"); err != nil {
			t.Fatal(err)
		}
		if err := m.Wait(id); err != nil {
			t.Fatalf("job %d: run after end: %v", i, err)
		}
		if j, _ := store.Job(id); j.State != state.JobEnded {
			t.Fatalf("job %d after end: %s", i, j.State)
		}
	}
}

// TestControlSocketFrontDoor: the socket is answered by a Manager alone,
// whether it runs every job (banjia serve) or one (banjia job start): the
// same requests, the same answers, and a manager of one job does not run
// another.
func TestControlSocketFrontDoor(t *testing.T) {
	for _, one := range []bool{false, true} {
		name := "serve"
		if one {
			name = "job start"
		}
		t.Run(name, func(t *testing.T) {
			store := tempStore(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var m *migrate.Manager
			if one {
				m = migrate.NewManagerOf(ctx, store, migrate.Config{}, "acme")
			} else {
				m = migrate.NewManager(ctx, store, migrate.Config{})
			}
			defer m.Stop()
			for _, id := range []string{"acme", "other"} {
				if _, _, err := m.Create(ctx, memberRequest(id), "test"); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.ServeControl(ctx, store.Path); err != nil {
				t.Fatal(err)
			}
			if err := m.Start("acme"); err != nil {
				t.Fatal(err)
			}
			ask := func(op, job string) (*migrate.ControlReply, error) {
				return migrate.Control(store.Path, migrate.ControlRequest{Op: op, Job: job})
			}
			if _, err := ask("pause", "acme"); err != nil {
				t.Fatal(err)
			}
			rep, err := ask("status", "acme")
			if err != nil || rep.Status == nil || rep.Status.Job.State != state.JobPaused || !rep.Status.Attached {
				t.Fatalf("status of acme: %+v, %v", rep, err)
			}
			rep, err = ask("status", "")
			if err != nil || len(rep.Statuses) != 2 {
				t.Fatalf("status of every job: %+v, %v", rep, err)
			}
			if _, err := ask("resume", "acme"); err != nil {
				t.Fatal(err)
			}
			rep, err = migrate.Control(store.Path, migrate.ControlRequest{Op: "add", Job: "acme",
				Accounts: []migrate.AccountRow{{Line: 1, Old: "a@old.test", New: "a@new.test"}}})
			if err != nil || rep.Added != 1 {
				t.Fatalf("add: %+v, %v", rep, err)
			}
			_, err = ask("start", "other")
			if one != (err != nil) || m.Running("other") == one {
				t.Fatalf("start of another job: %v (running: %v)", err, m.Running("other"))
			}
			if _, err := ask("frobnicate", "acme"); err == nil || !strings.Contains(err.Error(), "unknown operation") {
				t.Fatalf("unknown operation: %v", err)
			}
			if _, err := ask("end", "acme"); err != nil {
				t.Fatal(err)
			}
			if err := m.Wait("acme"); err != nil {
				t.Fatal(err)
			}
			evs, _ := store.Events("acme", 0, 0)
			var kinds []string
			for _, e := range evs {
				kinds = append(kinds, e.Kind)
			}
			got := strings.Join(kinds, " ")
			for _, want := range []string{"admin.pause", "job.paused", "admin.resume", "job.resumed", "job.accounts", "admin.end", "job.ended"} {
				if !strings.Contains(got, want) {
					t.Errorf("events lack %s: %s", want, got)
				}
			}
			for _, e := range evs {
				if strings.HasPrefix(e.Kind, "admin.") && (e.Who != migrate.CommandLine || !strings.Contains(e.Message, state.Actor(migrate.CommandLine).String())) {
					t.Errorf("who asked is not recorded: %s by %q", e.Message, e.Who)
				}
			}
		})
	}
}
