package migrate_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/appendtap"
	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	_ "github.com/banjia-mail/banjia/sources/imapsource"
	"github.com/banjia-mail/banjia/state"
)

type world = migratetest.World

// newWorld runs on the in-memory server under -short (see
// migratetest.EngineBackend) unless the test names its backend.
func newWorld(t *testing.T, o migratetest.Options) *world {
	if o.Backend == "" {
		o.Backend = migratetest.EngineBackend()
	}
	return migratetest.New(t, o)
}

func runner(w *world, cfg migrate.Config) *migrate.Runner {
	if cfg.OpenSink == nil {
		cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }
	}
	// Tests here are about what is copied, not about riding out faults:
	// what fails is given up within seconds. The fault trials use the
	// shipped settings (migrate.New with no retry settings).
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 50 * time.Millisecond
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = 2 * time.Second
	}
	if cfg.ConnectFor == 0 {
		cfg.ConnectFor = 2 * time.Second
	}
	return migrate.New(w.Store, cfg)
}

// countingRunner is runner with the real sink (pipelined APPEND, as the
// binary uses it) reaching the target through an appendtap, which adds to
// n every APPEND the target accepts.
func countingRunner(w *world, cfg migrate.Config, n *atomic.Int64) *migrate.Runner {
	var mu sync.Mutex
	taps := map[string]*appendtap.Tap{}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		addr := net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
		mu.Lock()
		tap := taps[addr]
		if tap == nil {
			var err error
			if tap, err = appendtap.Start(addr, func(appendtap.Append) { n.Add(1) }); err != nil {
				mu.Unlock()
				return nil, err
			}
			taps[addr] = tap
			w.T.Cleanup(func() { tap.Close() })
		}
		mu.Unlock()
		e.Host, e.Port = "127.0.0.1", tap.Port()
		return imapsink.Open(ctx, e)
	}
	return runner(w, cfg)
}

func accounts(t *testing.T, w *world) map[string]*state.Account {
	t.Helper()
	as, err := w.Store.Accounts(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*state.Account{}
	for _, a := range as {
		out[a.ID] = a
	}
	return out
}

// TestCopyRerunAndWrongPassword: every message arrives byte for byte with its
// flags and date, the source is unchanged, a wrong password fails only its
// account with a clear reason, and a re-run appends nothing.
func TestCopyRerunAndWrongPassword(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 3, Messages: 120, MaxAttachment: 400 << 10, BadPassword: 2})
	before := w.Sources()
	var appended atomic.Int64
	cfg := migrate.Config{Accounts: 2, Lanes: 2}
	r := countingRunner(w, cfg, &appended)
	if err := r.Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	as := accounts(t, w)
	for i, u := range w.Users {
		a := as[u.Old]
		if i == 2 {
			if a.State != state.AccountFailed || !strings.Contains(a.Reason, "wrong user name, password or authorization code") {
				t.Fatalf("bad password account: %s %q", a.State, a.Reason)
			}
			if strings.Contains(a.Reason, migratetest.WrongPassword) {
				t.Fatal("reason shows the password")
			}
			continue
		}
		if a.State != state.AccountSucceeded {
			t.Fatalf("%s: %s %q", u.Old, a.State, a.Reason)
		}
		got := w.Target(u)
		n := migratetest.SameMail(t, u.Old, before[u.Old], got)
		if int64(n) != a.Counts.Imported || a.Counts.ToImport != a.Counts.Imported || a.Counts.Failed != 0 {
			t.Fatalf("%s: counts %+v, %d messages compared", u.Old, a.Counts, n)
		}
		if !strings.Contains(a.Reason, "to import") {
			t.Fatalf("reason %q", a.Reason)
		}
		if len(a.SourceSecret) == 0 || len(a.TargetSecret) == 0 {
			t.Fatal("passwords not kept for the syncs after success (they go at close or when their retention runs out)")
		}
	}
	migratetest.Unchanged(t, before, w.Sources())
	if j, _ := w.Store.Job(w.Job); j.State != state.JobCompleted {
		t.Fatalf("job state %s", j.State)
	}
	first := appended.Load()
	if first == 0 {
		t.Fatal("nothing appended")
	}

	// Re-run: passwords given again, nothing new on the source.
	w.Resupply()
	appended.Store(0)
	cfg.Rerun = true
	r = countingRunner(w, cfg, &appended)
	if err := r.Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	if n := appended.Load(); n != 0 {
		t.Fatalf("re-run appended %d messages", n)
	}
	for _, u := range w.Users[:2] {
		if a := accounts(t, w)[u.Old]; a.State != state.AccountSucceeded || a.Counts.Imported != a.Counts.ToImport {
			t.Fatalf("re-run %s: %s %+v", u.Old, a.State, a.Counts)
		}
	}
}

// TestCrashBetweenAppendAndCheckpoint drops the record of the last messages
// copied, as a kill between the target's OK and the checkpoint write would,
// and shows the next run finds them on the target instead of copying them again.
func TestCrashBetweenAppendAndCheckpoint(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 200, BadPassword: -1})
	before := w.Sources()
	r := runner(w, migrate.Config{Lanes: 2})
	if err := r.Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	u := w.Users[0]
	cps, err := w.Store.Checkpoints(w.Job, u.Old)
	if err != nil {
		t.Fatal(err)
	}
	forgotten := 0
	for _, cp := range cps {
		// Forget the five highest UIDs of every folder and which target UIDs were ours.
		for i := 0; i < 5 && cp.Done.Count() > 0; i++ {
			cp.Done.Remove(cp.Done.Max())
			forgotten++
		}
		cp.Confirmed = nil
		cp.UIDNext = 0
	}
	a := accounts(t, w)[u.Old]
	a.State = state.AccountRunning
	var list []*state.Checkpoint
	for _, cp := range cps {
		list = append(list, cp)
	}
	if err := w.Store.Save([]state.Progress{{Job: w.Job, Account: a, Checkpoints: list}}); err != nil {
		t.Fatal(err)
	}
	w.Resupply()
	var appended atomic.Int64
	r = countingRunner(w, migrate.Config{Lanes: 2}, &appended)
	if err := r.Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	if n := appended.Load(); n != 0 {
		t.Fatalf("%d of the %d forgotten messages were appended again", n, forgotten)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	if a := accounts(t, w)[u.Old]; a.State != state.AccountSucceeded || a.Counts.Imported != a.Counts.ToImport {
		t.Fatalf("after settling: %s %+v", a.State, a.Counts)
	}
	evs, _ := w.Store.Events(w.Job, 0, 0)
	found := false
	for _, e := range evs {
		if strings.Contains(e.Message, "already on the target from an interrupted run") {
			found = true
		}
	}
	if !forgottenReported(found, forgotten) {
		t.Fatal("no event says messages were found on the target")
	}
}

func forgottenReported(found bool, n int) bool { return found || n == 0 }

// TestPauseResumeEnd: pause stops APPENDs at a message boundary, resume
// finishes the job, end abandons what is left.
func TestPauseResumeEnd(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 4, Messages: 150, BadPassword: -1})
	var appended atomic.Int64
	r := countingRunner(w, migrate.Config{Accounts: 2, Lanes: 1}, &appended)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background(), w.Job) }()
	waitFor(t, "20 appends", func() bool { return appended.Load() > 20 })
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	at := appended.Load()
	time.Sleep(2 * time.Second)
	if n := appended.Load(); n != at {
		t.Fatalf("%d APPENDs after pause", n-at)
	}
	if st, _ := r.Status(); st.Job.State != state.JobPaused {
		t.Fatalf("job state %s", st.Job.State)
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	waitFor(t, "20 appends after resume", func() bool {
		if appended.Load() > at+20 {
			return true
		}
		if time.Since(resumed) > 20*time.Second {
			evs, _ := w.Store.Events(w.Job, 0, 0)
			for _, e := range evs {
				t.Log(e.Kind, e.Message)
			}
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.FailNow()
		}
		return false
	})
	if err := r.End(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("end did not stop the job")
	}
	j, _ := w.Store.Job(w.Job)
	if j.State != state.JobEnded {
		t.Fatalf("job %s", j.State)
	}
	abandoned := 0
	for _, a := range accounts(t, w) {
		switch a.State {
		case state.AccountAbandoned:
			abandoned++
			if len(a.SourceSecret) != 0 {
				t.Fatal("abandoned account keeps its password")
			}
		case state.AccountSucceeded:
		default:
			t.Fatalf("%s left %s", a.ID, a.State)
		}
	}
	if abandoned == 0 {
		t.Fatal("no account abandoned")
	}
	// The job can not be started again once ended.
	if err := runner(w, migrate.Config{}).Run(context.Background(), w.Job); err == nil {
		t.Fatal("ended job ran again")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUIDValidityChangeRescansWithoutDuplicates: when the source renumbers a
// folder, every checkpoint of it is void; the folder is matched against the
// target again and only what is really new is copied.
func TestUIDValidityChangeRescansWithoutDuplicates(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 150, BadPassword: -1})
	if err := runner(w, migrate.Config{}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	u := w.Users[0]
	cps, err := w.Store.Checkpoints(w.Job, u.Old)
	if err != nil {
		t.Fatal(err)
	}
	inbox := cps["INBOX"]
	if inbox == nil || inbox.Done.Count() == 0 {
		t.Fatalf("no INBOX checkpoint: %+v", cps)
	}
	// What the engine sees when the server renumbers: a different UIDVALIDITY.
	inbox.Validity++
	a := accounts(t, w)[u.Old]
	if err := w.Store.Save([]state.Progress{{Job: w.Job, Account: a, Checkpoints: []*state.Checkpoint{inbox}}}); err != nil {
		t.Fatal(err)
	}
	d := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var fresh []dovecot.Message
	for i := 0; i < 3; i++ {
		fresh = append(fresh, dovecot.Message{Body: []byte(fmt.Sprintf("Subject: new %d\r\nMessage-ID: <new%d@x>\r\n\r\nnew mail %d\r\n", i, i, i)), Date: d})
	}
	if err := w.Src.Deliver(u.Old, "INBOX", fresh); err != nil {
		t.Fatal(err)
	}
	w.Resupply()
	var appended atomic.Int64
	cfg := migrate.Config{Rerun: true}
	if err := countingRunner(w, cfg, &appended).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	if n := appended.Load(); n != 3 {
		t.Fatalf("appended %d, want the 3 new messages only", n)
	}
	migratetest.SameMail(t, u.Old, w.Sources()[u.Old], w.Target(u))
	if a := accounts(t, w)[u.Old]; a.Counts.Imported != a.Counts.ToImport || a.Counts.ToImport != 153 {
		t.Fatalf("counts %+v", a.Counts)
	}
}

// TestStateFileFailureStopsCleanly: when progress cannot be written the run
// stops with a clear error; the next run loses and duplicates nothing.
func TestStateFileFailureStopsCleanly(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 200, BadPassword: -1})
	before := w.Sources()
	var appended atomic.Int64
	r := countingRunner(w, migrate.Config{Lanes: 2}, &appended)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background(), w.Job) }()
	waitFor(t, "some appends", func() bool { return appended.Load() > 40 })
	// What a vanished disk looks like to the runner: every write fails.
	w.Store.Close()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop when the state file failed")
	}
	if err == nil || !strings.Contains(err.Error(), "cannot write the state file") || !strings.Contains(err.Error(), "nothing is lost") {
		t.Fatalf("error %v", err)
	}
	w.Open()
	w.Resupply()
	if err := runner(w, migrate.Config{}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	for _, u := range w.Users {
		n := migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
		if c := migratetest.Count(t, w.Dst, u.New, u.NewPW); c != n {
			t.Fatalf("%s: target has %d messages, source %d", u.Old, c, n)
		}
	}
}
