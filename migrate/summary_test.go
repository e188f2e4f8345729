package migrate_test

import (
	"context"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/state"
)

// TestSummaryWhileRunning: a job's summary, read from the kept totals with
// the accounts in flight swapped in, counts every account once while the
// job runs (its imported count never goes back, and lies between the sums
// of every account read just before and just after), and once it is done
// equals the sum of every account read in full.
func TestSummaryWhileRunning(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 4, Messages: 150, BadPassword: -1})
	cfg := migrate.Config{Accounts: 2, Lanes: 2, FlushEvery: 20 * time.Millisecond,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := migrate.NewManager(ctx, w.Store, cfg)
	defer m.Stop()
	if err := m.Start(w.Job); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Wait(w.Job) }()
	var last int64
	polls := 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		case <-time.After(5 * time.Millisecond):
		}
		// Read between two full reads, the summary lies between them.
		before, err := m.Status(w.Job)
		if err != nil {
			t.Fatal(err)
		}
		sm, err := m.Summary(w.Job)
		if err != nil {
			t.Fatal(err)
		}
		after, err := m.Status(w.Job)
		if err != nil {
			t.Fatal(err)
		}
		if lo, hi, got := before.Summary().Totals.Counts.Imported, after.Summary().Totals.Counts.Imported, sm.Totals.Counts.Imported; got < lo || got > hi {
			t.Fatalf("poll %d: the summary says %d imported, the accounts %d just before and %d just after", polls, got, lo, hi)
		}
		polls++
		n := 0
		for _, k := range sm.Totals.N {
			n += k
		}
		if sm.Totals.Accounts != 4 || n != 4 {
			t.Fatalf("poll %d: %d accounts, %d by state: %+v", polls, sm.Totals.Accounts, n, sm.Totals)
		}
		if sm.Totals.Counts.Imported < last {
			t.Fatalf("poll %d: imported went back from %d to %d", polls, last, sm.Totals.Counts.Imported)
		}
		last = sm.Totals.Counts.Imported
	}
	st, err := m.Status(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := m.Summary(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	want := st.Summary().Totals
	if sm.Totals.Counts != want.Counts || sm.Totals.N[state.AccountSucceeded] != 4 || want.N[state.AccountSucceeded] != 4 || sm.Totals.Counts.Imported != 600 {
		t.Fatalf("after the run: summary %+v, accounts sum to %+v", sm.Totals, want)
	}
	t.Logf("%d polls while running", polls)
}
