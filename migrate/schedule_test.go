package migrate_test

import (
	"context"
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

// testClock is a clock the test moves.
type testClock struct{ t atomic.Int64 }

func (c *testClock) Now() time.Time    { return time.Unix(0, c.t.Load()) }
func (c *testClock) Set(t time.Time)   { c.t.Store(t.UnixNano()) }
func at(day int, hh, mm int) time.Time { return time.Date(2026, 12, day, hh, mm, 0, 0, time.UTC) }

// TestWindow: a job that copies only 22:00-07:00 (UTC) starts at 21:59 and
// copies nothing; at 22:00 it copies; when the window closes midway its
// accounts stop at a message boundary and nothing more is stored; at 22:00
// the next day it finishes, every message once.
func TestWindow(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 300, BadPassword: -1})
	before := w.Sources()
	setOptions(t, w, func(o *state.Options) { o.Window, o.TimeZone = "22:00-07:00", "UTC" })

	clock := &testClock{}
	clock.Set(at(2, 21, 59))
	var stored atomic.Int64
	closeAt := int64(100)
	cfg := migrate.Config{Now: clock.Now, WindowCheck: 20 * time.Millisecond, BatchMessages: 16}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &countingSink{Sink: s, stored: func() {
			if stored.Add(1) == closeAt {
				clock.Set(at(3, 7, 0)) // the window closes
			}
		}}, nil
	}
	done := make(chan error, 1)
	go func() { done <- shipped2(w, cfg).Run(context.Background(), w.Job) }()

	time.Sleep(time.Second)
	if n := stored.Load(); n != 0 {
		t.Fatalf("%d messages stored before the window opened", n)
	}
	clock.Set(at(2, 22, 0))
	waitFor(t, "the window to close midway", func() bool { return clock.Now().Equal(at(3, 7, 0)) })
	// In-flight messages finish; then nothing more is stored.
	time.Sleep(2 * time.Second)
	paused := 0
	for _, u := range w.Users {
		paused += migratetest.PartOf(t, u.Old, before[u.Old], w.Target(u))
	}
	time.Sleep(time.Second)
	again := 0
	for _, u := range w.Users {
		again += migratetest.Count(t, w.Dst, u.New, u.NewPW)
	}
	if again != paused {
		t.Fatalf("still storing outside the window: %d messages on the target, then %d", paused, again)
	}
	total := 0
	for _, u := range w.Users {
		for _, f := range before[u.Old] {
			total += len(f)
		}
	}
	if paused >= total {
		t.Fatalf("the job finished (%d messages) before the window closed: the test needs more mail", paused)
	}
	select {
	case err := <-done:
		t.Fatalf("the run ended outside the window: %v", err)
	default:
	}
	clock.Set(at(3, 22, 0))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the job did not finish once the window opened again")
	}
	for _, u := range w.Users {
		migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	}
	evs, err := w.Store.Events(w.Job, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var outside, inside int
	copying := map[string]int{}
	for _, e := range evs {
		if e.Kind == "account.copying" && strings.Contains(e.Message, "copying") {
			copying[e.Account]++
		}
		switch {
		case strings.Contains(e.Message, "is outside its window 22:00-07:00 (UTC)"):
			outside++
		case strings.Contains(e.Message, "is inside its window 22:00-07:00 (UTC)"):
			inside++
		}
	}
	if outside != 2 || inside != 2 {
		t.Errorf("%d outside and %d inside events, want 2 and 2", outside, inside)
	}
	// Each account said when it began to copy, once in each of the two
	// spans it copied in at most.
	for _, u := range w.Users {
		if n := copying[u.Old]; n < 1 || n > 2 {
			t.Errorf("%s: %d account.copying events, want 1 or 2", u.Old, n)
		}
	}
	t.Logf("stored %d of %d messages before the window closed", paused, total)
}

// TestMaxRate: a cap on the whole job, and one per old server, hold the
// measured rate within 10% of the cap.
func TestMaxRate(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(o *state.Options, cap int64)
	}{
		{"job", func(o *state.Options, cap int64) { o.MaxRate = cap }},
		{"per old server", func(o *state.Options, cap int64) { o.MaxRatePerHost = cap }},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 80, MaxAttachment: 300 << 10, BadPassword: -1, Folders: []string{"INBOX"}})
			const limit = 1 << 20 // 1 MB/s
			setOptions(t, w, func(o *state.Options) { c.set(o, limit) })
			start := time.Now()
			if err := shipped(w, migrate.Config{}).Run(context.Background(), w.Job); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			var bytes int64
			for _, a := range accounts(t, w) {
				if a.State != state.AccountSucceeded {
					t.Errorf("%s: %s %q", a.ID, a.State, a.Reason)
				}
				bytes += a.Counts.Bytes
			}
			if bytes < 4*limit {
				t.Fatalf("only %d bytes: too little mail to measure a rate", bytes)
			}
			rate := float64(bytes) / took.Seconds()
			t.Logf("%d bytes in %s: %.2f MB/s under a cap of 1 MB/s", bytes, took.Round(time.Millisecond), rate/(1<<20))
			if rate > 1.1*limit || rate < 0.9*limit {
				t.Errorf("measured %.2f MB/s, want within 10%% of 1 MB/s", rate/(1<<20))
			}
		})
	}
}

func setOptions(t *testing.T, w *world, set func(*state.Options)) {
	t.Helper()
	j, err := w.Store.Job(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	set(&j.Options)
	if err := migrate.CheckSchedule(j.Options); err != nil {
		t.Fatal(err)
	}
	if err := w.Store.PutJob(j); err != nil {
		t.Fatal(err)
	}
}

// shipped2 is shipped keeping cfg's own sink.
func shipped2(w *world, cfg migrate.Config) *migrate.Runner {
	return migrate.New(w.Store, cfg)
}
