// Package migrate is the engine: it runs a job's accounts through a worker
// pool (a global limit on accounts, a per-source-host limit on connections,
// several lanes per account), copies mail from sources to sinks, records a
// message as done only after the target accepted it, and obeys pause,
// resume, end and interrupts at message boundaries.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// Config tunes a Runner; zero values mean the defaults.
type Config struct {
	Accounts      int           // accounts copied at once (global limit; one whose batches are all with its lanes makes room for the next); default 4
	Lanes         int           // connections per account; default 2
	PerHost       int           // source connections per source host; default 10
	BatchMessages int           // messages per FETCH; default 64
	BatchBytes    int64         // bytes per FETCH; default 32 MiB
	Retries       int           // attempts before anything is given up (see RetryFor); default 3
	RetryFor      time.Duration // how long a lane or an account keeps retrying without progress; default 5 min
	ConnectFor    time.Duration // how long an account keeps trying to reach its servers before any mail moved; default 1 min
	RetryBase     time.Duration // the first wait after a failure, doubling with jitter; default 250 ms
	RetryMax      time.Duration // the longest wait; default 30 s
	FlushEvery    time.Duration // how often progress is written; default 250ms
	Grace         time.Duration // how long a stop waits for message boundaries before cutting connections; default 30s
	// Rerun copies again (incrementally) accounts that already succeeded,
	// with the passwords kept for the syncs (cutover.go).
	Rerun bool
	// Only, when set, limits the run to these accounts (banjia job retry).
	Only map[string]bool
	// Shard, when set, limits the run to the accounts of that shard, and
	// shares PerHost and the job's rate caps out among the shards
	// (shards.go). A state file exported as a shard says its own.
	Shard      *state.Shard
	OpenSource func(ctx context.Context, e mail.Endpoint) (sources.Source, error)
	OpenSink   func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error)
	Log        *slog.Logger
	// OnEvent, when set, sees every event after it is saved (notifications,
	// metrics); it must not block.
	OnEvent func(*state.Event)
	// Now is the clock the job's window is read by; default time.Now.
	Now func() time.Time
	// WindowCheck is the longest time between two looks at the window;
	// default 30s.
	WindowCheck time.Duration

	// sync: the run is a sync (cutover.go): it copies what is new in every
	// account, does not wait for members, and is recorded on the job.
	sync bool
}

func (c *Config) defaults() {
	if c.Accounts <= 0 {
		c.Accounts = 4
	}
	if c.Lanes <= 0 {
		c.Lanes = 2
	}
	if c.PerHost <= 0 {
		c.PerHost = 10
	}
	if c.BatchMessages <= 0 {
		c.BatchMessages = 64
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 32 << 20
	}
	if c.Retries <= 0 {
		c.Retries = 3
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 250 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = c.RetryBase
	}
	if c.RetryFor <= 0 {
		c.RetryFor = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.WindowCheck <= 0 {
		c.WindowCheck = 30 * time.Second
	}
	if c.ConnectFor <= 0 {
		c.ConnectFor = time.Minute
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = 250 * time.Millisecond
	}
	if c.Grace <= 0 {
		c.Grace = 30 * time.Second
	}
	if c.OpenSource == nil {
		c.OpenSource = sources.Open
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// ErrInterrupted is returned by Run when Stop (or the context) ended the run
// before the job finished; checkpoints are saved and a later Run continues.
var ErrInterrupted = errors.New("interrupted: progress is saved; run the job again to continue")

// errStopped is the cause of a round's boundary context (see round): work
// unwinds at the next message boundary with it.
var errStopped = errors.New("stopped")

// Runner runs one job at a time.
type Runner struct {
	cfg   Config
	store *state.Store

	mu   sync.Mutex
	job  *state.Job
	live map[string]*accountRun
	// stopAt ends the current round at message boundaries (cancels its
	// boundary context with errStopped); nil between rounds.
	stopAt   context.CancelCauseFunc
	wake     chan struct{} // resume/end/stop while paused
	enrolled chan struct{} // accounts added or enrolled (Wake)
	// held is closed once Run holds its job and has marked it running:
	// from then on Pause, Resume and End reach it (Manager.Start waits
	// for it).
	held chan struct{}
	// startPaused lets Run take a paused job and wait for Resume (a
	// server restarted while its job was paused).
	startPaused bool
	paused      bool
	outside     bool // outside the job's window (see checkWindow)
	windowSeen  bool
	ended       bool
	stopped     bool
	hostSems    map[string]chan struct{}
	perHost     int // this run's share of PerHost for the lanes (shards.go)
	accounts    int // this run's accounts copied at once (shards.go)
	// placeFirst: an account's own source session counts among the
	// connections (a shard's), so it is open only while the account holds
	// its place (retryConnect).
	placeFirst bool
	// hostPause holds hosts that asked us to back off (throttling), until when.
	hostPause map[string]time.Time
	// outages are the servers nobody of this run has reached lately.
	outages *outages
	// rates caps the bytes read from the old servers (nil: no cap).
	rates   *rates
	changes changes // state changed: events, progress flushes
	saveErr error   // the state file could not be written
	// saveMu orders progress writes: a snapshot taken later must never be
	// overwritten by one taken earlier but saved after it (an account's
	// final state by a periodic flush's older copy, say).
	saveMu sync.Mutex
	// lanes bounds the lanes holding connections, all accounts together
	// (Accounts x Lanes): an account that has queued all its batches lets
	// the next one start while its lanes finish, without more connections.
	lanes chan struct{}
	// ctl orders the admin's per-account requests with the round taking
	// accounts to start (accountcontrol.go): a request finds an account
	// either live or as stored, never between.
	ctl sync.Mutex
	// front holds, per account, when the admin moved it to the front of
	// the queue (under mu).
	front map[string]time.Time
}

// New makes a runner over a store.
func New(store *state.Store, cfg Config) *Runner {
	cfg.defaults()
	return &Runner{cfg: cfg, store: store, live: map[string]*accountRun{}, hostSems: map[string]chan struct{}{}, hostPause: map[string]time.Time{}, outages: newOutages(),
		front: map[string]time.Time{}, wake: make(chan struct{}, 1), enrolled: make(chan struct{}, 1), held: make(chan struct{}), lanes: make(chan struct{}, cfg.Accounts*cfg.Lanes)}
}

// Store is the runner's state file.
func (r *Runner) Store() *state.Store { return r.store }

func (r *Runner) event(job, account, kind, msg string) {
	r.eventBy(string(state.Engine), job, account, kind, msg)
}

// eventBy records an event done by who (a state.Actor).
func (r *Runner) eventBy(who, job, account, kind, msg string) {
	r.record(&state.Event{Job: job, Account: account, Kind: kind, Message: msg, Who: who})
}

// record keeps an event and tells whoever listens.
func (r *Runner) record(e *state.Event) {
	job, account, kind, msg := e.Job, e.Account, e.Kind, e.Message
	if err := r.store.AddEvent(e); err != nil {
		r.cfg.Log.Error("event not saved", "err", err)
	}
	r.cfg.Log.Info(msg, "job", job, "account", account, "event", kind)
	r.changes.notify()
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(e)
	}
}

// Run runs a job until every account is finished, the job is ended, or it is
// interrupted (Stop or ctx). A paused job waits inside Run for Resume or End.
func (r *Runner) Run(ctx context.Context, jobID string) error {
	job, err := r.store.Job(jobID)
	if err != nil {
		return err
	}
	if !job.Closed.IsZero() {
		return closedError(job)
	}
	switch job.State {
	case state.JobEnded:
		return fmt.Errorf("job %s was ended; its remaining accounts are abandoned (create a new job to move them)", jobID)
	case state.JobPaused:
		if !r.startPaused {
			return fmt.Errorf("job %s is paused: run `banjia job resume %s` first", jobID, jobID)
		}
	}
	if err := checkShard(job, r.cfg.Shard); err != nil {
		return err
	}
	shard := r.shardOf(job)
	perHost, accounts, err := SourceBudget(r.cfg.PerHost, r.cfg.Accounts, shard)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.job = job
	r.perHost, r.accounts, r.placeFirst = perHost, accounts, shard != nil && shard.Count > 1
	r.paused, r.ended, r.stopped, r.saveErr = job.State == state.JobPaused, false, false, nil
	r.rates = newRates(shareRate(job.Options.MaxRate, shard), shareRate(job.Options.MaxRatePerHost, shard))
	r.outside, r.windowSeen = false, false
	r.mu.Unlock()
	if w := jobWindow(job); w != nil {
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		wait := r.checkWindow(job, w)
		go r.watchWindow(wctx, job, w, wait)
	}

	if job.State != state.JobPaused {
		if err := r.store.SetJobState(jobID, state.JobRunning); err != nil {
			return err
		}
		r.eventOf(jobID, "", "job.started", wording.New("ev.job.started", "job", jobID))
	}
	// Only now: a pause from here on is not undone by the state written
	// above.
	r.mu.Lock()
	if !isClosed(r.held) {
		close(r.held)
	}
	r.mu.Unlock()

	flushCtx, stopFlush := context.WithCancel(context.Background())
	flushDone := make(chan struct{})
	go func() { defer close(flushDone); r.flushLoop(flushCtx) }()
	defer func() {
		stopFlush()
		<-flushDone
		r.flush()
	}()

	finished := map[string]bool{}
	for {
		r.mu.Lock()
		paused, ended, stopped, saveErr := r.paused || r.outside, r.ended, r.stopped, r.saveErr
		r.mu.Unlock()
		if saveErr != nil {
			return fmt.Errorf("stopped: %w (nothing is lost: what was copied since the last save is found on the target at the next start)", saveErr)
		}
		if stopped || ctx.Err() != nil {
			return ErrInterrupted
		}
		if ended {
			return r.finishEnded(jobID)
		}
		if paused {
			select {
			case <-r.wake:
			case <-ctx.Done():
			}
			continue
		}
		// Between rounds no account is copied: the retention is kept here.
		if err := r.expire(jobID); err != nil {
			return err
		}
		accts, err := r.store.Accounts(jobID)
		if err != nil {
			return err
		}
		if j, err := r.store.Job(jobID); err == nil {
			// Enrollment and the admin's changes reach a running job.
			job = j
			r.mu.Lock()
			r.job = j
			r.mu.Unlock()
		}
		var todo []*state.Account
		awaiting, held := 0, 0
		for _, a := range accts {
			// An account that ended in this run is not tried again in it,
			// unless its member started it again since (it is no longer in
			// a final state).
			if (finished[a.ID] && a.State.Finished()) || a.State == state.AccountAbandoned || (a.State == state.AccountSucceeded && !r.cfg.Rerun) ||
				(r.cfg.Only != nil && !r.cfg.Only[a.ID]) || !shard.Owns(a.ID) {
				continue
			}
			if a.State == state.AccountPaused {
				held++
				continue
			}
			if job.AwaitingMember(a) {
				awaiting++
				continue
			}
			todo = append(todo, a)
		}
		r.noteFront(todo)
		if len(todo) == 0 && job.ModeOf() == state.ModeMember && !r.cfg.sync {
			if job.Enrolling(time.Now()) {
				// Members sign in over days (the seed: accounts added in
				// the next 30 days): the job waits for them, and wakes
				// when a stored password's retention runs out.
				until := job.EnrollUntil
				if next := nextExpiry(r.store, job); !next.IsZero() && next.Before(until) {
					until = next
				}
				r.waitEnroll(ctx, until)
				continue
			}
			if awaiting > 0 {
				if err := r.abandonAwaiting(job); err != nil {
					return err
				}
			}
		}
		if len(todo) == 0 && held > 0 {
			// Accounts the admin paused keep the job running until they
			// are resumed or abandoned, as a paused job waits for Resume.
			r.waitEnroll(ctx, time.Time{})
			continue
		}
		if len(todo) == 0 {
			if err := r.store.SetJobState(jobID, state.JobCompleted); err != nil {
				return err
			}
			if r.cfg.sync {
				// Not job.completed: the admins were told when the first
				// pass completed, and are not told again at every sync.
				return r.synced(jobID)
			}
			r.eventOf(jobID, "", "job.completed", r.summary(jobID))
			return nil
		}
		r.round(ctx, job, todo, finished)
	}
}

// waitEnroll waits for an enrollment (Wake), a control request, or the
// end of the enrollment window (a zero until: no end).
func (r *Runner) waitEnroll(ctx context.Context, until time.Time) {
	var timeout <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-r.wake:
	case <-r.enrolled:
	case <-timeout:
	case <-ctx.Done():
	}
}

// Wake tells a running job that accounts were added or enrolled.
func (r *Runner) Wake() {
	select {
	case r.enrolled <- struct{}{}:
	default:
	}
}

// enrolledAccounts lists accounts that became ready to copy during a round.
func (r *Runner) enrolledAccounts(jobID string, started, finished map[string]bool, mu *sync.Mutex) []*state.Account {
	job, err := r.store.Job(jobID)
	if err != nil {
		return nil
	}
	accts, err := r.store.Accounts(jobID)
	if err != nil {
		return nil
	}
	mu.Lock()
	defer mu.Unlock()
	var out []*state.Account
	for _, a := range accts {
		// One still running is not started twice; one that ended in this
		// round and was started again by its member (failed, then the old
		// password typed once more) is.
		if (started[a.ID] && !finished[a.ID]) || a.State.Finished() || a.State == state.AccountPaused || job.AwaitingMember(a) ||
			(r.cfg.Only != nil && !r.cfg.Only[a.ID]) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// hasWork reports whether the job has an account a new run would copy
// now: used when a Wake came as the last run was ending.
func (r *Runner) hasWork(jobID string) bool {
	job, err := r.store.Job(jobID)
	if err != nil || job.State == state.JobPaused || job.State == state.JobEnded {
		return false
	}
	accts, err := r.store.Accounts(jobID)
	if err != nil {
		return false
	}
	for _, a := range accts {
		if !a.State.Finished() && a.State != state.AccountPaused && !job.AwaitingMember(a) {
			return true
		}
	}
	return false
}

// abandonAwaiting gives up the accounts whose members never came, once the
// enrollment window has closed.
func (r *Runner) abandonAwaiting(job *state.Job) error {
	accts, err := r.store.Accounts(job.ID)
	if err != nil {
		return err
	}
	var changed []*state.Account
	for _, a := range accts {
		if job.AwaitingMember(a) {
			a.State = state.AccountAbandoned
			a.SetReason(wording.New("abandoned.enroll", "until", job.EnrollUntil.Format("2006-01-02 15:04 MST")))
			a.Finished = time.Now().UTC()
			a.TargetSecret = nil
			changed = append(changed, a)
		}
	}
	if err := r.store.PutAccounts(job.ID, changed...); err != nil {
		return err
	}
	for _, a := range changed {
		r.eventOf(job.ID, a.ID, "account.abandoned", wording.New("ev.account.abandoned", "id", a.ID).Because(*a.Why))
	}
	return nil
}

func (r *Runner) summary(jobID string) wording.Reason {
	accts, _ := r.store.Accounts(jobID)
	n := map[state.AccountState]int{}
	var c state.Counts
	for _, a := range accts {
		n[a.State]++
		c.Add(a.Counts)
	}
	return wording.New("ev.job.completed", "job", jobID, "n", strconv.Itoa(len(accts)), "succeeded", strconv.Itoa(n[state.AccountSucceeded]),
		"partial", strconv.Itoa(n[state.AccountPartial]), "failed", strconv.Itoa(n[state.AccountFailed]),
		"to", n64(c.ToImport), "imported", n64(c.Imported), "lost", n64(c.Failed))
}

// round runs accounts until they finish or the round is stopped.
//
// A round has two contexts. io carries the connections: cancelling it cuts
// whatever is on the wire. edge, its child, is the message boundary: a
// stop (pause, end, interrupt, a failed save) cancels it with errStopped,
// and work that checks it finishes the message in progress, records the
// answer and unwinds. io is cancelled only Grace after a stop, for work
// that does not reach a boundary in time. Because edge is io's child, a
// wait on edge alone also ends when io does.
func (r *Runner) round(ctx context.Context, job *state.Job, todo []*state.Account, finished map[string]bool) {
	io, cut := context.WithCancel(ctx)
	defer cut()
	edge, stopAt := context.WithCancelCause(io)
	defer stopAt(nil)
	r.mu.Lock()
	r.stopAt = stopAt
	if r.paused || r.outside || r.ended || r.stopped {
		// Asked to stop between the loop's check and here.
		stopAt(errStopped)
	}
	r.mu.Unlock()
	// A stop waits for message boundaries, but not for ever.
	go func() {
		<-edge.Done()
		t := time.NewTimer(r.cfg.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cut()
		case <-io.Done():
		}
	}()

	places := r.accounts
	if places <= 0 {
		places = r.cfg.Accounts
	}
	sem := make(chan struct{}, places)
	var wg sync.WaitGroup
	var mu sync.Mutex
	started := map[string]bool{}
	allDone := make(chan struct{}, 1)
	running := 0
	queue := todo
	for {
		for len(queue) > 0 && edge.Err() == nil {
			// The place first, then the account: one moved to the front
			// while every place is taken still goes next.
			select {
			case sem <- struct{}{}:
			case <-edge.Done():
			}
			if edge.Err() != nil {
				break
			}
			ar := r.next(job, &queue, edge)
			if ar == nil {
				<-sem
				continue
			}
			a := ar.acct
			started[a.ID] = true
			mu.Lock()
			delete(finished, a.ID)
			mu.Unlock()
			// The account's place is given up when it has queued all its
			// batches (or ends): the next account logs in and lists while the
			// lanes finish, which keeps the target busy between accounts.
			ar.place = &place{sem: sem, held: true}
			wg.Add(1)
			mu.Lock()
			running++
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer ar.place.give()
				done := ar.run(io)
				held := ar.stopDone()
				mu.Lock()
				if done || held {
					finished[a.ID] = true
				}
				running--
				if running == 0 {
					select {
					case allDone <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
				if held {
					// Resumed while it was stopping: the round takes it
					// again (enrolledAccounts).
					r.Wake()
				}
			}()
		}
		mu.Lock()
		idle := running == 0
		mu.Unlock()
		if idle || edge.Err() != nil {
			break
		}
		// A member who enrolls while others copy starts now, not when
		// this round is over.
		select {
		case <-allDone:
		case <-edge.Done():
		case <-r.enrolled:
			queue = r.enrolledAccounts(job.ID, started, finished, &mu)
		}
	}
	wg.Wait()
	r.mu.Lock()
	r.stopAt = nil
	r.mu.Unlock()
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// stopRound ends the current round at message boundaries. Caller holds mu.
func (r *Runner) stopRound() {
	if r.stopAt != nil {
		r.stopAt(errStopped)
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Runner) finishEnded(jobID string) error {
	accts, err := r.store.Accounts(jobID)
	if err != nil {
		return err
	}
	var changed []*state.Account
	for _, a := range accts {
		if !a.State.Finished() {
			a.State = state.AccountAbandoned
			a.SetReason(wording.New("abandoned.jobended"))
			a.Finished = time.Now().UTC()
			a.SourceSecret, a.TargetSecret = nil, nil
			changed = append(changed, a)
		}
	}
	if err := r.store.PutAccounts(jobID, changed...); err != nil {
		return err
	}
	for _, a := range changed {
		r.eventOf(jobID, a.ID, "account.abandoned", wording.New("ev.account.abandoned", "id", a.ID).Because(wording.New("abandoned.ended")))
	}
	if err := r.store.SetJobState(jobID, state.JobEnded); err != nil {
		return err
	}
	r.eventOf(jobID, "", "job.ended", wording.New("ev.job.ended", "job", jobID, "n", strconv.Itoa(len(changed))))
	return nil
}

// Pause stops every account at its next message boundary and keeps the job
// waiting for Resume or End.
func (r *Runner) Pause() error {
	r.mu.Lock()
	if r.job == nil || r.ended {
		r.mu.Unlock()
		return errors.New("no running job to pause")
	}
	if r.paused {
		r.mu.Unlock()
		return nil
	}
	r.paused = true
	id := r.job.ID
	r.stopRound()
	r.mu.Unlock()
	if err := r.store.SetJobState(id, state.JobPaused); err != nil {
		return err
	}
	r.eventOf(id, "", "job.paused", wording.New("ev.job.paused", "job", id))
	return nil
}

// Resume continues a paused job.
func (r *Runner) Resume() error {
	r.mu.Lock()
	if r.job == nil || r.ended {
		r.mu.Unlock()
		return errors.New("no paused job to resume")
	}
	if !r.paused {
		r.mu.Unlock()
		return nil
	}
	r.paused = false
	id := r.job.ID
	r.mu.Unlock()
	if err := r.store.SetJobState(id, state.JobRunning); err != nil {
		return err
	}
	r.eventOf(id, "", "job.resumed", wording.New("ev.job.resumed", "job", id))
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// End stops the job: running accounts stop at a message boundary and every
// account not finished is marked abandoned.
func (r *Runner) End() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.job == nil {
		return errors.New("no job to end")
	}
	r.ended = true
	r.stopRound()
	return nil
}

// Stop interrupts the run (SIGINT/SIGTERM): accounts stop at a message
// boundary, checkpoints are flushed, Run returns ErrInterrupted.
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.stopRound()
}

// Status is a live view of the job.
type Status struct {
	Job      state.Job
	Accounts []state.Account
	Attached bool // a runner is working on the job right now
	// Outside says the job waits for its window to open.
	Outside bool `json:",omitempty"`
	// ETA is the time left for the job at the rate it moves now, and
	// AccountETA each running account's (see estimate); absent while
	// nothing can be told yet.
	ETA        time.Duration            `json:",omitempty"`
	AccountETA map[string]time.Duration `json:",omitempty"`
	// Phase is the job's cutover phase (state.PhaseFirstPass, ...).
	Phase string
}

// Status returns the job with live account counts.
func (r *Runner) Status() (*Status, error) {
	r.mu.Lock()
	job := r.job
	r.mu.Unlock()
	if job == nil {
		return nil, errors.New("no job")
	}
	return r.StatusOf(job.ID)
}

// StatusOf returns a job's status, with live counts for accounts in flight.
func (r *Runner) StatusOf(jobID string) (*Status, error) {
	j, err := r.store.Job(jobID)
	if err != nil {
		return nil, err
	}
	accts, err := r.store.Accounts(jobID)
	if err != nil {
		return nil, err
	}
	st := &Status{Job: *j, Attached: true, Phase: j.Phase()}
	// Sealed secrets are no one's business outside the state file.
	st.Job.SourceAdminSecret, st.Job.TargetAdminSecret = nil, nil
	r.mu.Lock()
	for _, a := range accts {
		if ar, ok := r.live[a.ID]; ok && r.job != nil && r.job.ID == jobID {
			a = ar.snapshot()
		}
		c := *a
		c.SourceSecret, c.TargetSecret = nil, nil
		st.Accounts = append(st.Accounts, c)
	}
	st.Outside = r.outside && r.job != nil && r.job.ID == jobID
	r.mu.Unlock()
	sort.Slice(st.Accounts, func(i, k int) bool { return st.Accounts[i].ID < st.Accounts[k].ID })
	st.estimate(time.Now())
	return st, nil
}

// AccountOf is one account of a job, with live counts while it is copied
// and without its sealed secrets.
func (r *Runner) AccountOf(jobID, id string) (*state.Account, error) {
	r.mu.Lock()
	ar, ok := r.live[id]
	live := ok && r.job != nil && r.job.ID == jobID
	r.mu.Unlock()
	var a *state.Account
	if live {
		a = ar.snapshot()
	} else {
		var err error
		if a, err = r.store.Account(jobID, id); err != nil {
			return nil, err
		}
	}
	a.SourceSecret, a.TargetSecret = nil, nil
	return a, nil
}

func (r *Runner) flushLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.flush()
		}
	}
}

// flush writes every account's changed progress in one transaction.
func (r *Runner) flush() {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	var batch []state.Progress
	for _, ar := range r.live {
		if p, ok := ar.takeProgress(); ok {
			batch = append(batch, p)
		}
	}
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := r.store.Save(batch); err != nil {
		// Copying on without a record would only grow what the next start
		// must look up on the target: stop at the next message boundary.
		r.cfg.Log.Error("progress not saved; stopping", "err", err)
		r.mu.Lock()
		for _, p := range batch {
			if ar, ok := r.live[p.Account.ID]; ok {
				ar.markDirty(p.Checkpoints)
			}
		}
		if r.saveErr == nil {
			r.saveErr = err
			r.stopped = true
			r.stopRound()
		}
		r.mu.Unlock()
		return
	}
	r.changes.notify()
}

// hostSlot limits connections per source host.
func (r *Runner) hostSlot(host string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.hostSems[host]
	if !ok {
		n := r.perHost
		if n <= 0 {
			n = r.cfg.PerHost // before Run (a verification)
		}
		s = make(chan struct{}, n)
		r.hostSems[host] = s
	}
	return s
}

// slowHost makes every lane on host wait d before its next request: a
// server that says it is throttling is throttling all of us, not one lane.
func (r *Runner) slowHost(host string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if until := time.Now().Add(d); until.After(r.hostPause[host]) {
		r.hostPause[host] = until
	}
}

// hostDelay is how long host still wants us to wait.
func (r *Runner) hostDelay(hosts ...string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d time.Duration
	for _, h := range hosts {
		d = max(d, time.Until(r.hostPause[h]))
	}
	return d
}
