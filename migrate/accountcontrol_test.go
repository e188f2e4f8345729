package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/state"
)

// slowSink holds every APPEND for a moment: the job is still running when
// the test's requests arrive, however fast the machine.
type slowSink struct {
	sinks.Sink
	n *atomic.Int64
}

func (s slowSink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	time.Sleep(3 * time.Millisecond)
	res, err := s.Sink.Append(ctx, f, r, size, flags, date)
	if err == nil {
		s.n.Add(1)
	}
	return res, err
}

func accountIn(t *testing.T, m *migrate.Manager, job, id string) *state.Account {
	t.Helper()
	a, err := m.Account(job, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAccountControlWhileRunning: while a job copies one account at a
// time, the admin abandons a queued account, moves another to the front
// and pauses the one copying. The paused account stops at a message
// boundary and stays paused (the job waits for it), the one moved to the
// front starts next, the abandoned one never starts and a job-wide retry
// leaves it out; resumed, the paused account finishes with every message
// on the target, and the abandoned one, retried by name, too.
func TestAccountControlWhileRunning(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 4, Messages: 150, BadPassword: -1})
	var appended atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := migrate.Config{Accounts: 1, Lanes: 1, RetryBase: 50 * time.Millisecond, RetryFor: 2 * time.Second, ConnectFor: 2 * time.Second,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
			s, err := imapsink.Open(ctx, e)
			if err != nil {
				return nil, err
			}
			// Without the pipeline, every APPEND goes through Append.
			return slowSink{Sink: s, n: &appended}, nil
		}}
	m := migrate.NewManager(ctx, w.Store, cfg)
	defer m.Stop()
	u := w.Users
	if err := m.Start(w.Job); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "u00 copying", func() bool { return accountIn(t, m, w.Job, u[0].Old).Counts.Imported > 10 })

	do := func(op string, ids ...string) []string {
		t.Helper()
		got, err := m.AccountControl(w.Job, migrate.AccountRequest{Op: op, Accounts: ids}, "test admin")
		if err != nil {
			t.Fatalf("%s %v: %v", op, ids, err)
		}
		return got
	}
	if got := do("abandon", u[1].Old); len(got) != 1 {
		t.Fatalf("abandon: %v", got)
	}
	do("first", u[3].Old)
	do("pause", u[0].Old)
	waitFor(t, "u00 paused", func() bool { return accountIn(t, m, w.Job, u[0].Old).State == state.AccountPaused })
	at := accountIn(t, m, w.Job, u[0].Old).Counts.Imported
	if at >= 150 {
		t.Fatalf("u00 finished before the pause reached it (%d imported): the test proves nothing", at)
	}
	onTarget := migratetest.Count(t, w.Dst, u[0].New, u[0].NewPW)
	if int64(onTarget) != at {
		cps, _ := w.Store.Checkpoints(w.Job, u[0].Old)
		for n, c := range cps {
			t.Logf("%s: done %d failed %d total %d", n, c.Done.Count(), c.Failed.Count(), c.Total)
		}
		for n, f := range w.Target(u[0]) {
			t.Logf("target %s: %d", n, len(f))
		}
		t.Fatalf("paused u00: %d imported, %d on the target", at, onTarget)
	}
	// A request that does not fit is refused with the reason, and nothing changes.
	if _, err := m.AccountControl(w.Job, migrate.AccountRequest{Op: "resume", Accounts: []string{u[2].Old, u[0].Old}}, "x"); err == nil || !strings.Contains(err.Error(), "is not paused") {
		t.Fatalf("resume of an account not paused: %v", err)
	}
	if _, err := m.AccountControl(w.Job, migrate.AccountRequest{Op: "pause", Accounts: []string{"nobody@old.test"}}, "x"); err == nil || !strings.Contains(err.Error(), "has no account") {
		t.Fatalf("pause of an unknown account: %v", err)
	}

	// The others finish; the paused account holds the job running.
	waitFor(t, "u02 and u03 done", func() bool {
		return accountIn(t, m, w.Job, u[2].Old).State == state.AccountSucceeded && accountIn(t, m, w.Job, u[3].Old).State == state.AccountSucceeded
	})
	time.Sleep(300 * time.Millisecond)
	if !m.Running(w.Job) {
		t.Fatal("the job stopped with an account paused")
	}
	if a := accountIn(t, m, w.Job, u[0].Old); a.State != state.AccountPaused || a.Counts.Imported != at {
		t.Fatalf("paused u00 moved on: %s, %d imported (was %d)", a.State, a.Counts.Imported, at)
	}
	if n := migratetest.Count(t, w.Dst, u[0].New, u[0].NewPW); n != onTarget {
		t.Fatalf("paused u00: %d messages on the target, was %d", n, onTarget)
	}
	a1 := accountIn(t, m, w.Job, u[1].Old)
	if a1.State != state.AccountAbandoned || !a1.Started.IsZero() || !strings.Contains(a1.Reason, "abandoned by test admin") {
		t.Fatalf("abandoned u01: %+v", a1)
	}
	var order []string
	evs, _ := w.Store.Events(w.Job, 0, 0)
	for _, e := range evs {
		if e.Kind == "account.started" {
			order = append(order, e.Account)
		}
	}
	if strings.Join(order, " ") != u[0].Old+" "+u[3].Old+" "+u[2].Old {
		t.Fatalf("accounts started in the order %v; want u00, u03 (moved to the front), u02", order)
	}

	do("resume", u[0].Old)
	if err := m.Wait(w.Job); err != nil {
		t.Fatal(err)
	}
	if a := accountIn(t, m, w.Job, u[0].Old); a.State != state.AccountSucceeded || a.Counts.Imported != 150 {
		t.Fatalf("resumed u00: %s, %+v", a.State, a.Counts)
	}
	src := w.Sources()
	migratetest.SameMail(t, u[0].Old, src[u[0].Old], w.Target(u[0]))
	if j, _ := w.Store.Job(w.Job); j.State != state.JobCompleted {
		t.Fatalf("job %s", j.State)
	}

	// A job-wide retry leaves the abandoned account alone; by name it runs.
	if _, err := m.Retry(w.Job, "test", nil); !errors.Is(err, migrate.ErrNothingToRetry) {
		t.Fatalf("job-wide retry with only an abandoned account: %v", err)
	}
	if n := migratetest.Count(t, w.Dst, u[1].New, u[1].NewPW); n != 0 {
		t.Fatalf("abandoned u01 has %d messages on the target", n)
	}
	got, err := m.AccountControl(w.Job, migrate.AccountRequest{Op: "retry", State: "abandoned"}, "test admin")
	if err != nil || len(got) != 1 || got[0] != u[1].Old {
		t.Fatalf("retry of the abandoned: %v, %v", got, err)
	}
	if err := m.Wait(w.Job); err != nil {
		t.Fatal(err)
	}
	if a := accountIn(t, m, w.Job, u[1].Old); a.State != state.AccountSucceeded {
		t.Fatalf("retried u01: %s %s", a.State, a.Reason)
	}
	migratetest.SameMail(t, u[1].Old, src[u[1].Old], w.Target(u[1]))
	for _, e := range evs {
		if strings.Contains(e.Message, u[0].OldPW) {
			t.Fatalf("a password in an event: %s", e.Message)
		}
	}
}

// TestAccountControlOfflineAndQuickResume: with no run, a pause and a move
// to the front change the stored records, and the next start obeys them
// (the account moved first starts first, the paused one waits, holding the
// job); a pause followed at once by a resume, while the account is still
// stopping, leaves it copying; every account ends with all its mail.
func TestAccountControlOfflineAndQuickResume(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 3, Messages: 150, BadPassword: -1})
	u := w.Users
	cfg := migrate.Config{Accounts: 1, Lanes: 1, RetryBase: 50 * time.Millisecond, RetryFor: 2 * time.Second, ConnectFor: 2 * time.Second,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
			s, err := imapsink.Open(ctx, e)
			if err != nil {
				return nil, err
			}
			return slowSink{Sink: s, n: new(atomic.Int64)}, nil
		}}
	idle := migrate.NewIdleManager(w.Store, cfg)
	for _, c := range []struct{ op, id string }{{"pause", u[0].Old}, {"first", u[2].Old}} {
		if got, err := idle.AccountControl(w.Job, migrate.AccountRequest{Op: c.op, Accounts: []string{c.id}}, "test"); err != nil || len(got) != 1 {
			t.Fatalf("%s %s with no run: %v %v", c.op, c.id, got, err)
		}
	}
	if a, _ := w.Store.Account(w.Job, u[0].Old); a.State != state.AccountPaused {
		t.Fatalf("paused with no run: %s", a.State)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := migrate.NewManagerOf(ctx, w.Store, cfg, w.Job)
	defer m.Stop()
	if err := m.Start(w.Job); err != nil {
		t.Fatal(err)
	}
	// u02 first, then u01; while u01 copies, a pause and a resume at once.
	waitFor(t, "u01 copying", func() bool { return accountIn(t, m, w.Job, u[1].Old).Counts.Imported > 10 })
	for _, op := range []string{"pause", "resume"} {
		if _, err := m.AccountControl(w.Job, migrate.AccountRequest{Op: op, Accounts: []string{u[1].Old}}, "test"); err != nil {
			t.Fatalf("%s u01 while it copies: %v", op, err)
		}
	}
	waitFor(t, "u01 and u02 done", func() bool {
		return accountIn(t, m, w.Job, u[1].Old).State == state.AccountSucceeded && accountIn(t, m, w.Job, u[2].Old).State == state.AccountSucceeded
	})
	if a := accountIn(t, m, w.Job, u[0].Old); a.State != state.AccountPaused || a.Counts.Imported != 0 || !m.Running(w.Job) {
		t.Fatalf("u00 paused before the start: %s, %d imported; job running: %v", a.State, a.Counts.Imported, m.Running(w.Job))
	}
	evs, _ := w.Store.Events(w.Job, 0, 0)
	var order []string
	for _, e := range evs {
		if e.Kind == "account.started" {
			order = append(order, e.Account)
		}
	}
	if len(order) < 2 || order[0] != u[2].Old || order[1] != u[1].Old {
		t.Fatalf("start order %v: want u02 (moved to the front) then u01", order)
	}
	if _, err := m.AccountControl(w.Job, migrate.AccountRequest{Op: "resume", State: "paused"}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(w.Job); err != nil {
		t.Fatal(err)
	}
	src := w.Sources()
	for _, uu := range u {
		if a := accountIn(t, m, w.Job, uu.Old); a.State != state.AccountSucceeded {
			t.Fatalf("%s: %s %s", uu.Old, a.State, a.Reason)
		}
		migratetest.SameMail(t, uu.Old, src[uu.Old], w.Target(uu))
	}
}

// TestSettingsAndDelete: the settings show the admin's choices and limits
// and no secret; a job is deleted with everything of it, and what is
// unknown says so.
func TestSettingsAndDelete(t *testing.T) {
	store := tempStore(t)
	m := migrate.NewIdleManager(store, migrate.Config{Accounts: 3, Lanes: 2, PerHost: 7})
	req := memberRequest("acme")
	req.TargetAdmin, req.TargetAdminPassword = "master", "target-admin-secret-91"
	req.Options = state.Options{SkipJunkTrash: true, MaxMessageSize: 25 << 20, Renames: map[string]string{"Sent Items": "Sent"},
		Excludes: []string{"Archive*"}, Window: "22:00-07:00", TimeZone: "Asia/Shanghai", MaxRate: 5 << 20}
	if _, _, err := m.Create(context.Background(), req, "test"); err != nil {
		t.Fatal(err)
	}
	s, err := m.Settings("acme")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	for _, want := range []string{`"mode":"member"`, `"target_admin":"master"`, `"renames":{"Sent Items":"Sent"}`, `"excludes":["Archive*"]`,
		`"window":"22:00-07:00"`, `"time_zone":"Asia/Shanghai"`, `"max_rate":5242880`, `"max_message_size":26214400`, `"skip_junk_trash":true`,
		`"parallel":3`, `"connections_per_account":2`, `"connections_per_host":7`, `"source":"imap://old.test:143"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("settings lack %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), req.TargetAdminPassword) || strings.Contains(string(b), "Secret") {
		t.Fatalf("a secret in the settings: %s", b)
	}
	if err := m.Delete("acme", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Settings("acme"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("settings of a deleted job: %v", err)
	}
	if err := m.Delete("acme", "test"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("delete of a deleted job: %v", err)
	}
	if _, err := m.AccountControl("acme", migrate.AccountRequest{Op: "pause", State: "all"}, "test"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("account control of a deleted job: %v", err)
	}
	// The name can be used again, with nothing of the old job.
	if _, _, err := m.Create(context.Background(), memberRequest("acme"), "test"); err != nil {
		t.Fatal(err)
	}
	if evs, _ := store.Events("acme", 0, 0); len(evs) != 1 || evs[0].Kind != "job.created" {
		t.Fatalf("events of the new job: %+v", evs)
	}
}
