package migrate

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/state"
)

func TestOutages(t *testing.T) {
	refused := fault.New(fault.Retry, "cannot connect to old.example:993 (is the port right and the service up?)", errors.New("connection refused"))
	const addr = "old.example:993"
	cases := []struct {
		name      string
		down      *outage // what is known before the try (nil: nothing)
		result    error   // what the try gives
		wantTried bool
		wantClass fault.Class // of the error returned (when one is)
		wantErr   string
		wantDown  bool // an outage is known after
	}{
		{name: "first failure is retried", result: refused, wantTried: true, wantClass: fault.Retry, wantErr: "cannot connect", wantDown: true},
		{name: "short outage is retried", down: &outage{since: ago(20 * time.Second), last: ago(time.Second), err: refused, tries: 3},
			result: refused, wantTried: true, wantClass: fault.Retry, wantDown: true},
		{name: "long outage, fresh try: fail without trying", down: &outage{since: ago(2 * time.Minute), last: ago(5 * time.Second), err: refused, tries: 9},
			wantClass: fault.Account, wantErr: "cannot connect to old.example:993 (is the port right and the service up?); no account of this job has reached old.example:993 for 2m0s (9 tries)", wantDown: true},
		{name: "long outage, stale try: one try, then fail", down: &outage{since: ago(2 * time.Minute), last: ago(40 * time.Second), err: refused, tries: 9},
			result: refused, wantTried: true, wantClass: fault.Account, wantErr: "(10 tries)", wantDown: true},
		{name: "long outage over", down: &outage{since: ago(2 * time.Minute), last: ago(40 * time.Second), err: refused, tries: 9},
			wantTried: true},
		{name: "forgotten outage starts again", down: &outage{since: ago(10 * time.Minute), last: ago(2 * time.Minute), err: refused, tries: 9},
			result: refused, wantTried: true, wantClass: fault.Retry, wantDown: true},
		{name: "a refused password is not an outage", result: fault.Refused(fault.BadCredentials, "wrong password", nil), wantTried: true, wantClass: fault.Account},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := newOutages()
			if c.down != nil {
				d := *c.down
				o.down[addr] = &d
			}
			tried := false
			err := o.open(context.Background(), addr, time.Minute, func() error { tried = true; return c.result })
			if tried != c.wantTried {
				t.Errorf("tried %v, want %v", tried, c.wantTried)
			}
			if (err != nil) != (c.wantErr != "" || c.result != nil || !c.wantTried) {
				t.Fatalf("err %v", err)
			}
			if err != nil && fault.Classify(err) != c.wantClass {
				t.Errorf("class %v, want %v (%v)", fault.Classify(err), c.wantClass, err)
			}
			if err != nil && !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("err %q, want %q", err, c.wantErr)
			}
			if _, down := o.down[addr]; down != c.wantDown {
				t.Errorf("outage known %v, want %v", down, c.wantDown)
			}
		})
	}
}

// A try cut short by the account's own stop says nothing about the server.
func TestOutagesIgnoreAStop(t *testing.T) {
	o := newOutages()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o.open(ctx, "old.example:993", time.Minute, func() error { return fault.New(fault.Retry, "cut", context.Canceled) })
	if len(o.down) != 0 {
		t.Errorf("a stopped try was taken for an outage: %+v", o.down)
	}
}

func TestPlace(t *testing.T) {
	sem := make(chan struct{}, 1)
	sem <- struct{}{}
	p := &place{sem: sem, held: true}
	if !p.give() || p.give() {
		t.Fatal("give: want true once, then false")
	}
	other := &place{sem: sem}
	if err := other.take(context.Background()); err != nil || !other.held {
		t.Fatalf("take of a free place: %v held %v", err, other.held)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.take(ctx); err == nil {
		t.Error("took a place that another account holds")
	}
	other.give()
	if err := p.take(context.Background()); err != nil || !p.held {
		t.Errorf("take after the other gave up: %v", err)
	}
}

func ago(d time.Duration) time.Time { return time.Now().Add(-d) }

// TestReconnectWithoutAPlace: an account that gave its place up while its
// server was down, and reaches it again while every place is taken, does
// not keep the new session open through the wait: it closes it, waits for
// a place, and opens a fresh one.
func TestReconnectWithoutAPlace(t *testing.T) {
	sem := make(chan struct{}, 1)
	sem <- struct{}{}
	r := &Runner{cfg: Config{RetryBase: time.Millisecond, RetryMax: time.Millisecond, ConnectFor: time.Minute, Log: slog.New(slog.DiscardHandler)}, outages: newOutages()}
	a := &accountRun{r: r, edge: context.Background(), place: &place{sem: sem, held: true}, pat: newPatience(10, time.Minute), acct: &state.Account{ID: "u@old.test"}}
	other := &place{sem: sem}
	var opens, shuts, openNow atomic.Int32
	var maxOpenWhileWaiting atomic.Int32
	open := func() error {
		n := opens.Add(1)
		if n == 1 {
			// The server is down; meanwhile another account takes the
			// place given up, and holds it for a while.
			go func() {
				if err := other.take(context.Background()); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(300 * time.Millisecond)
				if o := openNow.Load(); o > maxOpenWhileWaiting.Load() {
					maxOpenWhileWaiting.Store(o)
				}
				other.give()
			}()
			time.Sleep(50 * time.Millisecond)
			return fault.New(fault.Retry, "connection refused", nil)
		}
		openNow.Add(1)
		return nil
	}
	shut := func() { shuts.Add(1); openNow.Add(-1) }
	if err := a.retryConnect(context.Background(), "127.0.0.1:1", open, shut); err != nil {
		t.Fatal(err)
	}
	if !a.place.held {
		t.Error("connected without holding a place")
	}
	if o, s, m := opens.Load(), shuts.Load(), maxOpenWhileWaiting.Load(); o != 3 || s != 1 || m != 0 {
		t.Errorf("%d opens, %d closed while waiting, %d sessions open during the wait; want 3, 1, 0", o, s, m)
	}
}

// TestHoldAfterTheRunEnded: an abandon that reaches an account while its
// run is ending as failed (still live, so the request goes to the run,
// which no longer looks at it) is carried out on the stored record: the
// account reads abandoned by whoever asked, not failed.
func TestHoldAfterTheRunEnded(t *testing.T) {
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	job := &state.Job{ID: "j", State: state.JobRunning, Created: time.Now()}
	if err := store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		was  state.AccountState
		to   state.AccountState
		want state.AccountState
	}{
		{"failed@old.test", state.AccountFailed, state.AccountAbandoned, state.AccountAbandoned},
		{"done@old.test", state.AccountSucceeded, state.AccountAbandoned, state.AccountSucceeded},
		{"paused-too-late@old.test", state.AccountFailed, state.AccountPaused, state.AccountFailed},
	} {
		a := &state.Account{ID: tc.id, Source: tc.id, State: tc.was}
		if err := store.PutAccounts("j", a); err != nil {
			t.Fatal(err)
		}
		r := New(store, Config{Log: slog.New(slog.DiscardHandler)})
		ar := r.newAccountRun(job, a, context.Background())
		ar.request(&accountHold{to: tc.to, who: "api:ops"})
		ar.stopDone()
		got, err := store.Account("j", tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != tc.want {
			t.Errorf("%s: %s, asked %s: reads %s (%q), want %s", tc.id, tc.was, tc.to, got.State, got.Reason, tc.want)
		}
		if tc.want == state.AccountAbandoned && !strings.Contains(got.Reason, "abandoned by") {
			t.Errorf("%s: reason %q does not say who abandoned it", tc.id, got.Reason)
		}
	}
}
