package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	sinkimap "github.com/banjia-mail/banjia/sinks/imap"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/fault"
	"github.com/banjia-mail/banjia/state"
)

// TestLateFirstCopy: an APPEND whose answer is lost reaches the target only
// after the engine has looked for it, found nothing and sent the message
// again (a server still working through what a dead connection had sent),
// and after the pass failed: the next pass moves the folder's floor above
// the copy sent again. The engine must still find the late first copy when
// the account is done and remove it, leaving the message on the target once.
func TestLateFirstCopy(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 240, BadPassword: -1})
	before := w.Sources()

	l := &lateState{pick: 12}
	counts := map[string]*atomic.Int64{"interrupted copy of message": {}, "message sent again": {}}
	logs := &logCount{counts: counts}
	cfg := migrate.Config{Accounts: 1, Lanes: 2, BatchMessages: 8, Retries: 5, Log: slog.New(logs)}
	cfg.OpenSink = func(ctx context.Context, e sources.Endpoint) (sinks.Sink, error) {
		s, err := sinkimap.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &lateSink{Sink: s, ep: e, st: l}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := runner(w, cfg).Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	if !l.landed.Load() || !l.failedPrepare.Load() {
		t.Fatalf("the scenario did not happen: late copy stored %v, pass failed after it %v", l.landed.Load(), l.failedPrepare.Load())
	}
	u := w.Users[0]
	a := accounts(t, w)[u.Old]
	if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
		t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	migratetest.Unchanged(t, before, w.Sources())
	if n := counts["interrupted copy of message"].Load(); n != 1 {
		t.Errorf("%d late copies reported removed, want 1", n)
	}
	if t.Failed() {
		logs.dump(t, u.Old, 80)
	}
}

// lateState drives the scenario across the sessions the engine opens.
type lateState struct {
	pick          int64 // the pick-th APPEND to INBOX is held back and stored late
	appends       atomic.Int64
	mu            sync.Mutex
	body          []byte // the held-back message
	resent        atomic.Bool
	landed        atomic.Bool
	failedPrepare atomic.Bool
}

type lateSink struct {
	sinks.Sink
	ep sources.Endpoint
	st *lateState
}

func (s *lateSink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	body, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return sinks.Appended{}, err
	}
	st := s.st
	if f.Name == "INBOX" && st.appends.Add(1) == st.pick {
		st.mu.Lock()
		st.body = body
		st.mu.Unlock()
		// Stored by another session once the engine has looked for it,
		// sent it again and moved on to a new pass.
		go func() {
			for !st.failedPrepare.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			late, err := sinkimap.Open(context.Background(), s.ep)
			if err != nil {
				panic(err)
			}
			defer late.Close()
			if _, err := late.Append(context.Background(), f, bytes.NewReader(body), size, flags, date); err != nil {
				panic(err)
			}
			st.landed.Store(true)
		}()
		return sinks.Appended{}, fault.New(fault.Retry, "connection lost while the target was storing a message", fmt.Errorf("%w: held back by the test", sinks.ErrInDoubt))
	}
	st.mu.Lock()
	again := st.body != nil && bytes.Equal(st.body, body)
	st.mu.Unlock()
	res, err := s.Sink.Append(ctx, f, bytes.NewReader(body), size, flags, date)
	if again && err == nil {
		st.resent.Store(true)
	}
	return res, err
}

// Prepare fails once after the message was sent again, so the pass fails
// and the next one prepares the folders again and moves their floors.
func (s *lateSink) Prepare(ctx context.Context, name string) (sinks.Folder, error) {
	if s.st.resent.Load() && s.st.failedPrepare.CompareAndSwap(false, true) {
		return sinks.Folder{}, fault.New(fault.Retry, "connection lost", errors.New("cut by the test"))
	}
	return s.Sink.Prepare(ctx, name)
}

func (s *lateSink) Expunge(ctx context.Context, name string, uids []uint32) error {
	ex, ok := s.Sink.(sinks.Expunger)
	if !ok {
		return errors.New("the target sink cannot expunge")
	}
	return ex.Expunge(ctx, name, uids)
}
