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

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
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
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &lateSink{expunging: expunging{s}, ep: e, st: l}, nil
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

// TestLateSweepOutlastsAnOutage: as TestLateFirstCopy, but the target
// cannot be reached for 12 s from the moment the last message is stored,
// when the held-back first copy lands, so the late sweep meets an outage. A few quick tries would give up and
// leave the late first copy on the target (the account still succeeds);
// the sweep must keep trying as a lane would and remove it.
func TestLateSweepOutlastsAnOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 12 s outage")
	}
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 240, BadPassword: -1, Folders: []string{"INBOX"}})
	before := w.Sources()
	u := w.Users[0]
	total := int64(len(before[u.Old]["INBOX"]))

	l := &lateState{pick: 12}
	var stored, refused atomic.Int64
	var downUntil atomic.Int64
	counts := map[string]*atomic.Int64{"interrupted copy of message": {}, "message sent again": {}}
	logs := &logCount{counts: counts}
	cfg := migrate.Config{Accounts: 1, Lanes: 2, BatchMessages: 8, Retries: 5, RetryFor: time.Minute, Log: slog.New(logs)}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		if time.Now().UnixNano() < downUntil.Load() {
			refused.Add(1)
			return nil, fault.New(fault.Retry, "cannot connect to the target", errors.New("connection refused (outage made by the test)"))
		}
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &countingSink{Sink: &lateSink{expunging: expunging{s}, ep: e, st: l}, stored: func() {
			if stored.Add(1) == total {
				downUntil.Store(time.Now().Add(12 * time.Second).UnixNano())
				// The held-back copy lands now (no pass has to fail first).
				l.failedPrepare.Store(true)
			}
		}}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := runner(w, cfg).Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	if !l.landed.Load() || refused.Load() == 0 {
		t.Fatalf("the scenario did not happen: late copy stored %v, sessions refused in the outage %d", l.landed.Load(), refused.Load())
	}
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

// countingSink reports every message the target answered as stored.
type countingSink struct {
	sinks.Sink
	stored func()
}

func (s *countingSink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	res, err := s.Sink.Append(ctx, f, r, size, flags, date)
	if err == nil {
		s.stored()
	}
	return res, err
}

func (s *countingSink) Expunge(ctx context.Context, name string, uids []uint32) error {
	return s.Sink.(sinks.Expunger).Expunge(ctx, name, uids)
}

// TestLateFirstCopyAfterACrash: as TestLateFirstCopy, but the run dies
// once the late first copy is stored, before its sweep. The next run must
// still find that copy and remove it: the message sent twice is on record
// in the state file, not only in the dead run's memory.
func TestLateFirstCopyAfterACrash(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 240, BadPassword: -1})
	before := w.Sources()
	u := w.Users[0]

	l := &lateState{pick: 12, crash: true}
	counts := map[string]*atomic.Int64{"interrupted copy of message": {}}
	logs := &logCount{counts: counts}
	cfg := migrate.Config{Accounts: 1, Lanes: 2, BatchMessages: 8, Retries: 5, Log: slog.New(logs)}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &lateSink{expunging: expunging{s}, ep: e, st: l}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	crash, crashed := context.WithCancel(ctx)
	go func() {
		for !l.landed.Load() && crash.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		crashed()
	}()
	runner(w, cfg).Run(crash, w.Job)
	crashed()
	if !l.landed.Load() {
		t.Fatal("the scenario did not happen: the late copy was not stored")
	}
	cps, err := w.Store.Checkpoints(w.Job, u.Old)
	if err != nil {
		t.Fatal(err)
	}
	var onRecord []state.Resent
	for _, cp := range cps {
		onRecord = append(onRecord, cp.Resent...)
	}
	if len(onRecord) != 1 {
		t.Fatalf("the dead run left %d messages sent twice on record, want 1: %+v", len(onRecord), onRecord)
	}

	// The next run: a plain target, nothing held back.
	cfg.OpenSink = nil
	if err := runner(w, cfg).Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	a := accounts(t, w)[u.Old]
	if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
		t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	migratetest.Unchanged(t, before, w.Sources())
	if n := counts["interrupted copy of message"].Load(); n != 1 {
		t.Errorf("%d late copies reported removed, want 1", n)
	}
	if cps, err = w.Store.Checkpoints(w.Job, u.Old); err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		if len(cp.Resent) != 0 {
			t.Errorf("%s: %d messages still wait for a sweep after it ran: %+v", cp.Folder, len(cp.Resent), cp.Resent)
		}
	}
	if t.Failed() {
		logs.dump(t, u.Old, 80)
	}
}

// TestTwoCopiesBeforeACrash: the run dies after a message was sent twice
// and both copies were stored, but before either was recorded (the answer
// to the second APPEND is lost with the run). The next run finds the
// message in doubt and two copies on the target: it must take one and
// remove the other.
func TestTwoCopiesBeforeACrash(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 240, BadPassword: -1})
	before := w.Sources()
	u := w.Users[0]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	crash, crashed := context.WithCancel(ctx)
	l := &lateState{pick: 12, crashBeforeRecord: crashed}
	counts := map[string]*atomic.Int64{"interrupted copy of message": {}}
	logs := &logCount{counts: counts}
	cfg := migrate.Config{Accounts: 1, Lanes: 2, BatchMessages: 8, Retries: 5, Log: slog.New(logs)}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &lateSink{expunging: expunging{s}, ep: e, st: l}, nil
	}
	runner(w, cfg).Run(crash, w.Job)
	crashed()
	if !l.landed.Load() {
		t.Fatal("the scenario did not happen: the second copy was not stored")
	}

	cfg.OpenSink = nil
	if err := runner(w, cfg).Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	a := accounts(t, w)[u.Old]
	if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
		t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	migratetest.Unchanged(t, before, w.Sources())
	if n := counts["interrupted copy of message"].Load(); n != 1 {
		t.Errorf("%d extra copies reported removed, want 1", n)
	}
	if t.Failed() {
		logs.dump(t, u.Old, 80)
	}
}

// lateState drives the scenario across the sessions the engine opens.
type lateState struct {
	pick  int64 // the pick-th APPEND to INBOX is held back and stored late
	crash bool  // store it once it was sent again (the run then dies), with no pass failing
	// crashBeforeRecord, if set, stores the held-back copy as soon as the
	// second copy is stored, and ends the run (calls it) before the second
	// APPEND is answered.
	crashBeforeRecord func()
	appends           atomic.Int64
	mu                sync.Mutex
	body              []byte // the held-back message
	resent            atomic.Bool
	landed            atomic.Bool
	failedPrepare     atomic.Bool
}

type lateSink struct {
	expunging
	ep mail.Endpoint
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
		if st.crashBeforeRecord != nil {
			return sinks.Appended{}, fault.New(fault.Retry, "connection lost while the target was storing a message", fmt.Errorf("%w: held back by the test", sinks.ErrInDoubt))
		}
		// Stored by another session once the engine has looked for it,
		// sent it again and moved on to a new pass.
		go func() {
			for !st.failedPrepare.Load() && !(st.crash && st.resent.Load()) {
				time.Sleep(5 * time.Millisecond)
			}
			late, err := imapsink.Open(context.Background(), s.ep)
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
	if st.crash && st.resent.Load() && !again {
		// The run is to die before the account ends and sweeps: on a
		// fast target the rest of the mail would otherwise be copied
		// before the late copy is stored.
		for !st.landed.Load() && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if err := ctx.Err(); err != nil {
			return sinks.Appended{}, err
		}
	}
	res, err := s.Sink.Append(ctx, f, bytes.NewReader(body), size, flags, date)
	if again && err == nil {
		st.resent.Store(true)
		if st.crashBeforeRecord != nil && st.landed.CompareAndSwap(false, true) {
			if _, err := s.Sink.Append(ctx, f, bytes.NewReader(body), size, flags, date); err != nil {
				panic(err)
			}
			st.crashBeforeRecord()
			return sinks.Appended{}, fault.New(fault.Retry, "connection lost", fmt.Errorf("%w: the run ends", sinks.ErrInDoubt))
		}
	}
	return res, err
}

// Prepare fails once after the message was sent again, so the pass fails
// and the next one prepares the folders again and moves their floors.
func (s *lateSink) Prepare(ctx context.Context, name string) (sinks.Folder, error) {
	if !s.st.crash && s.st.resent.Load() && s.st.failedPrepare.CompareAndSwap(false, true) {
		return sinks.Folder{}, fault.New(fault.Retry, "connection lost", errors.New("cut by the test"))
	}
	return s.Sink.Prepare(ctx, name)
}

// TestLateCopyBesideAnIdenticalOne: two source folders that land in one
// target folder ("Sent Items" and "已发送" both go to Sent) hold the same
// message, byte for byte. The APPEND of one is in doubt, not found, sent
// again, and its first copy lands late. The late sweep must remove that
// copy and keep the other folder's: Sent ends with two copies, one per
// source folder.
func TestLateCopyBesideAnIdenticalOne(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 60, BadPassword: -1, Folders: []string{"INBOX", "Sent Items", "已发送"}})
	u, twin := deliverTwins(t, w)
	before := w.Sources()

	l := &twinState{body: twin.Body, landed: make(chan struct{})}
	counts := map[string]*atomic.Int64{"interrupted copy of message": {}}
	logs := &logCount{counts: counts}
	cfg := migrate.Config{Accounts: 1, Lanes: 2, BatchMessages: 8, Retries: 5, Log: slog.New(logs)}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &twinSink{expunging: expunging{s}, ep: e, st: l}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := runner(w, cfg).Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	checkTwins(t, w, u, before, twin)
	select {
	case <-l.landed:
		if c := counts["interrupted copy of message"].Load(); c != 1 {
			t.Errorf("%d late copies reported removed, want 1", c)
		}
	default:
		// The lookup took the other folder's copy for the held one.
		t.Error("the held message was never sent again")
	}
	migratetest.Unchanged(t, before, w.Sources())
	if t.Failed() {
		logs.dump(t, u.Old, 60)
	}
}

// TestSweepKeepsTheOtherFoldersCopy: the late sweep of a message sent
// twice is left to a later run, and in between the folder beside it (which
// lands in the same target folder and holds the same message) moves its
// floor above its own copy. Run 1 holds back the first APPEND of the twin,
// sends it again, stores the held copy late and dies before its sweep;
// run 2 copies new mail of the other folder and dies; run 3 sweeps. The
// sweep must remove only the late copy: the other folder's copy is ours
// too, though no run still holds it in memory.
func TestSweepKeepsTheOtherFoldersCopy(t *testing.T) {
	sc := sentTwiceThenDied(t)
	w, u, twin, ctx, counts, logs, cfg, other := sc.w, sc.u, sc.twin, sc.ctx, sc.counts, sc.logs, sc.cfg, sc.other

	// Run 2: new mail in the other folder moves its floor; the run dies at
	// its first APPEND there.
	before := deliverFresh(t, w, u, other)
	crash2, crashed2 := context.WithCancel(ctx)
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &dieAtAppend{expunging: expunging{s}, die: crashed2}, nil
	}
	runner(w, cfg).Run(crash2, w.Job)
	crashed2()

	// Run 3 sweeps.
	cfg.OpenSink = nil
	if err := runner(w, cfg).Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	checkTwins(t, w, u, before, twin)
	if c := counts["interrupted copy of message"].Load(); c != 1 {
		t.Errorf("%d late copies reported removed, want 1", c)
	}
	migratetest.Unchanged(t, before, w.Sources())
	if t.Failed() {
		logs.dump(t, u.Old, 60)
	}
}

// TestSweepAfterTheOtherFolderMoved: as TestSweepKeepsTheOtherFoldersCopy,
// but before the sweep the other folder is mapped to another target folder
// (a rename the admin added). Its copy of the message stays in Sent, where
// no checkpoint names it any more: the sweep of Sent must not run, for it
// would take that copy for a stray. A duplicate may stay; nothing is lost.
func TestSweepAfterTheOtherFolderMoved(t *testing.T) {
	sc := sentTwiceThenDied(t)
	w, u, twin, ctx, counts, logs, cfg, other := sc.w, sc.u, sc.twin, sc.ctx, sc.counts, sc.logs, sc.cfg, sc.other

	before := deliverFresh(t, w, u, other)
	j, err := w.Store.Job(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	j.Options.Renames = map[string]string{other: "Elsewhere"}
	if err := w.Store.PutJob(j); err != nil {
		t.Fatal(err)
	}
	if err := runner(w, cfg).Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range w.Target(u)["Sent"] {
		if bytes.Equal(m.Body, twin.Body) {
			n++
		}
	}
	if n < 2 {
		t.Errorf("Sent holds %d copies of the message both folders had, want at least 2 (one is the moved folder's)", n)
	}
	if c := counts["interrupted copy of message"].Load(); c != 0 {
		t.Errorf("%d copies removed from Sent after the other folder moved, want none", c)
	}
	migratetest.Unchanged(t, before, w.Sources())
	if t.Failed() {
		logs.dump(t, u.Old, 60)
	}
}

// sweepScene is where the sweep tests start: one account whose "Sent
// Items" and "已发送" (both landing in Sent) hold the same message, a first
// run that died before its sweep, and the source folder whose copy was not
// the one sent twice (other).
type sweepScene struct {
	w      *world
	u      migratetest.User
	twin   dovecot.Message
	ctx    context.Context
	counts map[string]*atomic.Int64
	logs   *logCount
	cfg    migrate.Config
	other  string
}

// sentTwiceThenDied runs the job until the twin, held back in doubt and
// sent again, has its held copy stored late, and ends the run there,
// before its sweep.
func sentTwiceThenDied(t *testing.T) sweepScene {
	t.Helper()
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 60, BadPassword: -1, Folders: []string{"INBOX", "Sent Items", "已发送"}})
	u, twin := deliverTwins(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	counts := map[string]*atomic.Int64{"interrupted copy of message": {}}
	logs := &logCount{counts: counts}
	cfg := migrate.Config{Accounts: 1, Lanes: 2, BatchMessages: 8, Retries: 5, Log: slog.New(logs)}
	crash, crashed := context.WithCancel(ctx)
	defer crashed()
	l := &twinState{body: twin.Body, landed: make(chan struct{})}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &twinSink{expunging: expunging{s}, ep: e, st: l}, nil
	}
	go func() {
		select {
		case <-l.landed:
		case <-crash.Done():
		}
		crashed()
	}()
	runner(w, cfg).Run(crash, w.Job)
	cfg.OpenSink = nil
	select {
	case <-l.landed:
	default:
		t.Fatal("the scenario did not happen: the held copy never landed")
	}
	cps, err := w.Store.Checkpoints(w.Job, u.Old)
	if err != nil {
		t.Fatal(err)
	}
	other := ""
	for _, name := range []string{"Sent Items", "已发送"} {
		if cp := cps[name]; cp == nil || len(cp.Resent) == 0 {
			other = name
		}
	}
	if other == "" || len(cps["Sent Items"].Resent)+len(cps["已发送"].Resent) != 1 {
		t.Fatalf("want one message sent twice on record, in one of the two folders: %+v %+v", cps["Sent Items"], cps["已发送"])
	}
	return sweepScene{w: w, u: u, twin: twin, ctx: ctx, counts: counts, logs: logs, cfg: cfg, other: other}
}

// deliverFresh puts a new message in the source folder and returns the
// sources as they are now.
func deliverFresh(t *testing.T, w *world, u migratetest.User, folder string) map[string]migratetest.Mailbox {
	t.Helper()
	fresh := dovecot.Message{Body: []byte("From: a@old.test\r\nSubject: later\r\n\r\nwritten after the first run\r\n"),
		Date: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	if err := w.Src.Deliver(u.Old, folder, []dovecot.Message{fresh}); err != nil {
		t.Fatal(err)
	}
	return w.Sources()
}

// dieAtAppend ends the run (die) at its first APPEND, which it refuses.
type dieAtAppend struct {
	expunging
	die func()
}

func (s *dieAtAppend) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	s.die()
	return sinks.Appended{}, fault.New(fault.Retry, "connection lost", errors.New("the run dies"))
}

// twinState holds back the first APPEND of the twin message and stores it
// late, once both source folders' copies were stored.
type twinState struct {
	body   []byte
	mu     sync.Mutex
	seen   int // APPENDs of the twin so far
	stored int // ... that the target answered
	held   bool
	landed chan struct{}
}

type twinSink struct {
	expunging
	ep mail.Endpoint
	st *twinState
}

func (s *twinSink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	body, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return sinks.Appended{}, err
	}
	st := s.st
	if !bytes.Equal(body, st.body) {
		return s.Sink.Append(ctx, f, bytes.NewReader(body), size, flags, date)
	}
	st.mu.Lock()
	st.seen++
	first := st.seen == 1
	st.held = st.held || first
	st.mu.Unlock()
	if first {
		return sinks.Appended{}, fault.New(fault.Retry, "connection lost while the target was storing a message", fmt.Errorf("%w: held back by the test", sinks.ErrInDoubt))
	}
	res, err := s.Sink.Append(ctx, f, bytes.NewReader(body), size, flags, date)
	if err == nil {
		st.mu.Lock()
		st.stored++
		release := st.stored == 2
		st.mu.Unlock()
		if release {
			late, err := imapsink.Open(context.Background(), s.ep)
			if err != nil {
				return res, err
			}
			defer late.Close()
			if _, err := late.Append(context.Background(), f, bytes.NewReader(body), size, flags, date); err != nil {
				return res, err
			}
			close(st.landed)
		}
	}
	return res, err
}

// TestLookupWaitsForIdenticalInFlight: the same message sits in two source
// folders that land in one target folder. The APPEND of one is in doubt
// while the other's APPEND is stored but not yet answered. The lookup for
// the first must not take that unanswered copy for its own (two source
// messages on one target copy: a loss); it waits for the answer, finds no
// copy of its own and sends the message again.
func TestLookupWaitsForIdenticalInFlight(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 16, BadPassword: -1, Folders: []string{"Sent Items", "已发送"}})
	u, twin := deliverTwins(t, w)
	before := w.Sources()

	st := &flightState{body: twin.Body, second: make(chan struct{}), looked: make(chan struct{})}
	logs := &logCount{counts: map[string]*atomic.Int64{}}
	cfg := migrate.Config{Accounts: 1, Lanes: 2, Retries: 5, Log: slog.New(logs)}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &flightSink{expunging: expunging{s}, st: st}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := runner(w, cfg).Run(ctx, w.Job); err != nil {
		t.Fatal(err)
	}
	if !st.overlapped.Load() {
		t.Fatal("the two APPENDs did not overlap: the scenario did not happen")
	}
	checkTwins(t, w, u, before, twin)
	if st.lookedEarly.Load() {
		t.Error("the in-doubt lookup read the folder while the identical APPEND was unanswered")
	}
	migratetest.Unchanged(t, before, w.Sources())
	if t.Failed() {
		logs.dump(t, u.Old, 60)
	}
}

// flightState: the first APPEND of the twin waits until the second has
// started, then is reported in doubt without being stored; the second is
// stored and answered only after a lookup read the folder, or after 1.5 s.
type flightState struct {
	body        []byte
	calls       atomic.Int64
	second      chan struct{} // closed when the second APPEND starts
	looked      chan struct{} // closed at the first body fetch during the second's flight
	inFlight    atomic.Bool
	lookedEarly atomic.Bool
	overlapped  atomic.Bool
	once        sync.Once
}

type flightSink struct {
	expunging
	st *flightState
}

func (s *flightSink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	body, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return sinks.Appended{}, err
	}
	st := s.st
	if !bytes.Equal(body, st.body) {
		return s.Sink.Append(ctx, f, bytes.NewReader(body), size, flags, date)
	}
	switch st.calls.Add(1) {
	case 1:
		select {
		case <-st.second:
			st.overlapped.Store(true)
		case <-time.After(5 * time.Second):
		}
		return sinks.Appended{}, fault.New(fault.Retry, "connection lost while the target was storing a message", fmt.Errorf("%w: held back by the test", sinks.ErrInDoubt))
	case 2:
		res, err := s.Sink.Append(ctx, f, bytes.NewReader(body), size, flags, date)
		st.inFlight.Store(true)
		close(st.second)
		select {
		case <-st.looked:
		case <-time.After(1500 * time.Millisecond):
		}
		st.inFlight.Store(false)
		return res, err
	}
	return s.Sink.Append(ctx, f, bytes.NewReader(body), size, flags, date)
}

func (s *flightSink) Fetch(ctx context.Context, name string, uids []uint32, fn func(uid uint32, r io.Reader) error) error {
	if s.st.inFlight.Load() {
		s.st.lookedEarly.Store(true)
		s.st.once.Do(func() { close(s.st.looked) })
	}
	return s.Sink.Fetch(ctx, name, uids, fn)
}

// expunging passes Expunge on to the real sink under a test's wrapper.
type expunging struct{ sinks.Sink }

func (s expunging) Expunge(ctx context.Context, name string, uids []uint32) error {
	ex, ok := s.Sink.(sinks.Expunger)
	if !ok {
		return errors.New("the target sink cannot expunge")
	}
	return ex.Expunge(ctx, name, uids)
}

// deliverTwins puts one message, byte for byte the same, in the source's
// "Sent Items" and "已发送", which both land in the target's Sent.
func deliverTwins(t *testing.T, w *world) (migratetest.User, dovecot.Message) {
	t.Helper()
	u := w.Users[0]
	twin := dovecot.Message{Body: []byte("From: a@old.test\r\nTo: b@old.test\r\nSubject: twice\r\nMessage-ID: <twice@old.test>\r\n\r\nsent from two clients\r\n"),
		Date: time.Date(2023, 3, 4, 5, 6, 7, 0, time.UTC), Flags: []string{`\Seen`}}
	for _, f := range []string{"Sent Items", "已发送"} {
		if err := w.Src.Deliver(u.Old, f, []dovecot.Message{twin}); err != nil {
			t.Fatal(err)
		}
	}
	return u, twin
}

// checkTwins: the account succeeded and the target's Sent holds every
// message of both source folders, the twin twice.
func checkTwins(t *testing.T, w *world, u migratetest.User, before map[string]migratetest.Mailbox, twin dovecot.Message) {
	t.Helper()
	a := accounts(t, w)[u.Old]
	if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
		t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
	}
	n, all := 0, 0
	for _, m := range w.Target(u)["Sent"] {
		all++
		if bytes.Equal(m.Body, twin.Body) {
			n++
		}
	}
	want := len(before[u.Old]["Sent Items"]) + len(before[u.Old]["已发送"])
	if n != 2 || all != want {
		t.Errorf("target Sent holds %d copies of the message in both folders (want 2) and %d messages (want %d)", n, all, want)
	}
}

// TestInDoubtCopyLostFlags: messages whose APPEND was in doubt are found
// stored, but the server did not keep their flags as sent (a session
// killed while it saved: Dovecot's maildir can then show a keyword as
// "unknown-0"). The target is the truth: the engine sets their flags again,
// so every copy ends up exact, flags included.
func TestInDoubtCopyLostFlags(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 120, BadPassword: -1})
	before := w.Sources()
	var lost atomic.Int64
	counts := map[string]*atomic.Int64{"set again": {}}
	logs := &logCount{counts: counts}
	cfg := migrate.Config{Accounts: 1, Lanes: 2, Log: slog.New(logs)}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		s, err := imapsink.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &flagLosingSink{Sink: s, lost: &lost}, nil
	}
	if err := runner(w, cfg).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	if lost.Load() == 0 {
		t.Fatal("the scenario did not happen: no message was stored without its flags")
	}
	u := w.Users[0]
	if a := accounts(t, w)[u.Old]; a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
		t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	migratetest.Unchanged(t, before, w.Sources())
	if n := counts["set again"].Load(); n != lost.Load() {
		t.Errorf("flags set again on %d copies, %d lost them", n, lost.Load())
	}
	if t.Failed() {
		logs.dump(t, u.Old, 40)
	}
}

// flagLosingSink stores every 7th message that has flags with its last flag
// replaced by "unknown-0", at most 6 of them, and then loses the answer.
type flagLosingSink struct {
	sinks.Sink
	lost  *atomic.Int64
	calls int
}

func (s *flagLosingSink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	if len(flags) == 0 {
		return s.Sink.Append(ctx, f, r, size, flags, date)
	}
	if s.calls++; s.calls%7 != 0 || s.lost.Load() >= 6 {
		return s.Sink.Append(ctx, f, r, size, flags, date)
	}
	wrong := append(append([]string(nil), flags[:len(flags)-1]...), "unknown-0")
	if _, err := s.Sink.Append(ctx, f, r, size, wrong, date); err != nil {
		return sinks.Appended{}, err
	}
	s.lost.Add(1)
	return sinks.Appended{}, fault.New(fault.Retry, "connection lost while the target was storing a message", fmt.Errorf("%w: held back by the test", sinks.ErrInDoubt))
}

func (s *flagLosingSink) SetFlags(ctx context.Context, name string, uid uint32, flags []string) error {
	return s.Sink.(sinks.FlagSetter).SetFlags(ctx, name, uid, flags)
}
