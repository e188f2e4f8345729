package migrate_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/faultproxy"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail/imapconn"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/state"
)

// TestConnectionFaults runs a job through proxies that break connections the
// way networks do: resets before the greeting and in the middle of FETCH and
// APPEND literals (including after a whole APPEND went out but before its
// answer came back), half-closed connections and stalls longer than the idle
// timeout. The job must complete with every message on the target exactly
// once and the source untouched, with the engine's shipped settings: the
// retry budget, waits and idle timeout the binary runs with when no flag
// is given.
func TestConnectionFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}

	// Enough mail that the run meets the 1,000 faults the suite promises:
	// faults follow the bytes moved (a reset every 192 KB on average) and the
	// connections made; 1300 messages an account gave 2749 with the shipped
	// settings.
	w := newWorld(t, migratetest.Options{Accounts: 6, Messages: 800, BadPassword: -1})
	before := w.Sources()

	// A few stalls outlast the idle timeout (the proxy goes silent, as a
	// dead peer would): each holds one lane for that long, so they are few.
	plan := faultproxy.Plan{Early: 0.15, MeanBytes: 192 << 10, Healthy: 0.05, HalfClose: 0.1, Stall: 0.004, StallFor: imapconn.IdleTimeout + 5*time.Second}
	sp, dp := faulted(t, w, plan, 1)

	counts := map[string]*atomic.Int64{"in-doubt message was stored": {}, "lane retry": {}}
	start := time.Now()
	logs := &logCount{counts: counts}
	// The shipped settings: only what `job start` is given by default
	// (--parallel 4 --conns 2). A message of 150 KB gets through a fresh
	// pair of connections on this link about one time in five (both must
	// outlive it); the retry budget is time without progress, so it is
	// tried until it does.
	r := shipped(w, migrate.Config{Accounts: 4, Lanes: 2, Log: slog.New(logs)})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := r.Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	sp.SetFaults(false)
	dp.SetFaults(false)

	total := 0
	for _, u := range w.Users {
		a := accounts(t, w)[u.Old]
		if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
			t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
			logs.dump(t, u.Old, 60)
		}
		failed := t.Failed()
		total += migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
		if !failed && t.Failed() {
			logs.dump(t, u.Old, 60)
		}
	}
	migratetest.Unchanged(t, before, w.Sources())
	sc, dc := sp.Counts(), dp.Counts()
	faults := sc.Total() + dc.Total()
	if t.Failed() {
		return
	}
	stored := counts["in-doubt message was stored"].Load()
	t.Logf("faults: %d (source %+v, target %+v); %d messages, 0 lost, 0 duplicated, %d retries, %d APPENDs whose answer was lost found stored, %s",
		faults, sc, dc, total, counts["lane retry"].Load(), stored, elapsed.Round(time.Millisecond))
	if faults < 1000 {
		t.Errorf("only %d faults injected; the suite promises at least 1,000", faults)
	}
	if out := os.Getenv("BANJIA_RELIABILITY_OUT"); out != "" {
		line := fmt.Sprintf("| connection faults | %d injected (source: %d resets mid-transfer, %d before the greeting, %d half-closes, %d stalls of %v; target: %d, %d, %d, %d) | %d messages, %d accounts | 0 lost, 0 duplicated; %d APPENDs whose answer was lost were found stored and not sent again; job completed in %s | shipped: `--parallel 4 --conns 2 --retry-wait 250ms --retry-for 5m --idle-timeout %v` |\n",
			faults, sc.Resets, sc.EarlyResets, sc.HalfCloses, sc.Stalls, plan.StallFor, dc.Resets, dc.EarlyResets, dc.HalfCloses, dc.Stalls, total, len(w.Users), stored, elapsed.Round(time.Second), imapconn.IdleTimeout)
		os.WriteFile(filepath.Join(out, "faults.md"), []byte(line), 0o644)
	}
}

// faulted puts the job's source and target behind fault proxies following
// plan (seeded seed and seed+1); they are closed when the test ends.
func faulted(t *testing.T, w *world, plan faultproxy.Plan, seed uint64) (sp, dp *faultproxy.Proxy) {
	t.Helper()
	plan.Seed = seed
	sp, err := faultproxy.Start(w.Src.IMAPAddr, plan)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	plan.Seed = seed + 1
	dp, err = faultproxy.Start(w.Dst.IMAPAddr, plan)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	j, err := w.Store.Job(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	j.Source, j.Target = migratetest.Endpoint(sp.Addr()), migratetest.Endpoint(dp.Addr())
	if err := w.Store.PutJob(j); err != nil {
		t.Fatal(err)
	}
	return sp, dp
}

// shipped is a runner with the binary's own retry, backoff and timeout
// settings (runner shortens them): cfg sets only what a flag of `job start`
// would, and the log.
func shipped(w *world, cfg migrate.Config) *migrate.Runner {
	cfg.OpenSink = imapsink.Open
	return migrate.New(w.Store, cfg)
}

// logCount counts log records whose message contains a key, and keeps
// the records, so a failing test can show what the engine did.
type logCount struct {
	counts map[string]*atomic.Int64
	mu     sync.Mutex
	lines  []string
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCount) Handle(_ context.Context, r slog.Record) error {
	for k, n := range l.counts {
		if strings.Contains(r.Message, k) {
			n.Add(1)
		}
	}
	var b strings.Builder
	b.WriteString(r.Time.Format("15:04:05.000 "))
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	if f := os.Getenv("BANJIA_TEST_LOG"); f != "" {
		if out, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(out, b.String())
			out.Close()
		}
	}
	return nil
}
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCount) WithGroup(string) slog.Handler      { return l }

// dump logs the last n records that mention who.
func (l *logCount) dump(t *testing.T, who string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keep []string
	for _, s := range l.lines {
		if strings.Contains(s, who) {
			keep = append(keep, s)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	t.Logf("engine log for %s (last %d records):\n%s", who, len(keep), strings.Join(keep, "\n"))
}
