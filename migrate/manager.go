package migrate

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// Manager runs the jobs of a state file in this process, one Runner per
// job, and is the application layer every door calls (jobs.go). banjia
// serve runs every job (NewManager); banjia job start and retry run one
// (NewManagerOf); a command while no banjia process holds the state file
// runs none (NewIdleManager) and only changes the records.
type Manager struct {
	store *state.Store
	cfg   Config
	ctx   context.Context
	// only, when set, is the one job this manager may run: a request that
	// would start another job leaves it for its own start.
	only string
	// idle: this manager runs no job at all.
	idle bool

	mu   sync.Mutex
	runs map[string]*run
	errs map[string]error // why a job's last run failed
	last map[string]error // how a job's last run ended (Wait)
	// changes: any job changed
	changes changes
	wg      sync.WaitGroup
	// stopping: Stop was called; no job starts any more.
	stopping bool
	inviter  Inviter // see SetInviter
}

// run is one Runner working on a job.
type run struct {
	r    *Runner
	done chan struct{}
	sync bool  // a sync (cutover.go)
	err  error // how it ended, once done is closed
}

// runOptions are what one run of a job does beyond the manager's Config.
type runOptions struct {
	// only limits the run to these accounts and copies them even if they
	// succeeded before (a retry).
	only map[string]bool
	// refusePaused: a paused job is refused instead of waiting for Resume
	// (a person at a terminal asked for it to run now).
	refusePaused bool
	// sync: copy what is new in every account (Sync).
	sync bool
}

// NewManager makes a manager that runs every job of the store; ctx bounds
// every job it runs.
func NewManager(ctx context.Context, store *state.Store, cfg Config) *Manager {
	m := &Manager{store: store, cfg: cfg, ctx: ctx, runs: map[string]*run{}, errs: map[string]error{}, last: map[string]error{}}
	m.cfg.defaults()
	prev := cfg.OnEvent
	m.cfg.OnEvent = func(e *state.Event) {
		m.changes.notify()
		if prev != nil {
			prev(e)
		}
	}
	return m
}

// NewManagerOf makes a manager that runs one job of the store (banjia job
// start): the control socket reaches that job, and the file's other jobs
// can be read and paused or ended, not run.
func NewManagerOf(ctx context.Context, store *state.Store, cfg Config, jobID string) *Manager {
	m := NewManager(ctx, store, cfg)
	m.only = jobID
	return m
}

// NewIdleManager makes a manager that runs no job: a command changes the
// state file while no banjia process holds it, and a job it would start
// waits for banjia job start or banjia serve.
func NewIdleManager(store *state.Store, cfg Config) *Manager {
	m := NewManager(context.Background(), store, cfg)
	m.idle = true
	return m
}

// mayRun says why this manager does not run the job, or nil.
func (m *Manager) mayRun(jobID string) error {
	switch {
	case m.idle:
		return fmt.Errorf("job %s: %w (banjia job start %s runs it)", jobID, ErrNoRunner, jobID)
	case m.only != "" && jobID != m.only:
		return fmt.Errorf("this banjia process runs job %s only: run job %s with banjia job start %s, or banjia serve", m.only, jobID, jobID)
	}
	return nil
}

func (m *Manager) isStopping() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopping
}

// Event records an event in the audit log (搬家查询) and tells whoever
// listens: the admin's actions, enrollments.
func (m *Manager) Event(job, account, kind, msg string) {
	New(m.store, m.cfg).event(job, account, kind, msg)
}

// EventBy is Event for what who (a state.Actor) did.
func (m *Manager) EventBy(who, job, account, kind, msg string) {
	New(m.store, m.cfg).eventBy(who, job, account, kind, msg)
}

// Store is the manager's state file.
func (m *Manager) Store() *state.Store { return m.store }

// ResumeRunning restarts the jobs that were running when the process
// stopped.
func (m *Manager) ResumeRunning() error {
	jobs, err := m.store.Jobs()
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.State == state.JobRunning || j.State == state.JobPaused {
			if err := m.Start(j.ID); err != nil {
				m.cfg.Log.Warn("job not restarted", "job", j.ID, "err", err)
			}
		}
	}
	return nil
}

// Start runs a job in the background. A job already running is left as it
// is; a completed job runs again for the accounts added since; a paused
// one waits for Resume.
func (m *Manager) Start(jobID string) error {
	return m.start(jobID, runOptions{})
}

// Run runs a job in the foreground (banjia job start) and returns how its
// run ended, ErrInterrupted when it was stopped. A paused job is refused.
func (m *Manager) Run(jobID string) error {
	if err := m.start(jobID, runOptions{refusePaused: true}); err != nil {
		return err
	}
	return m.Wait(jobID)
}

// Wait waits until no run of the job is left (a run that ends as an
// account arrives is followed by another) and returns how the last ended.
func (m *Manager) Wait(jobID string) error {
	for {
		m.mu.Lock()
		ru := m.runs[jobID]
		err := m.last[jobID]
		m.mu.Unlock()
		if ru == nil {
			return err
		}
		<-ru.done
	}
}

func (m *Manager) start(jobID string, o runOptions) error {
	if err := m.mayRun(jobID); err != nil {
		return err
	}
	j, err := m.store.Job(jobID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	ru, err := m.startLocked(j, o)
	m.mu.Unlock()
	if err != nil || ru == nil {
		return err
	}
	// A pause right after this call must reach the runner: wait until it
	// holds the job, or has already given up.
	select {
	case <-ru.r.held:
	case <-ru.done:
	}
	return nil
}

// startLocked starts a run of the job unless one runs already (then it
// returns nil, nil); m.mu is held.
func (m *Manager) startLocked(j *state.Job, o runOptions) (*run, error) {
	if m.stopping {
		return nil, errors.New("banjia is stopping: the job starts with the next start")
	}
	if _, ok := m.runs[j.ID]; ok {
		return nil, nil
	}
	if !j.Closed.IsZero() {
		return nil, closedError(j)
	}
	if j.State == state.JobEnded {
		return nil, fmt.Errorf("job %s was ended; create a new job to move its remaining accounts", j.ID)
	}
	cfg := m.cfg
	if o.only != nil {
		cfg.Only, cfg.Rerun = o.only, true
	}
	if o.sync {
		cfg.sync, cfg.Rerun = true, true
	}
	r := New(m.store, cfg)
	// A paused job comes back paused, waiting for Resume.
	r.startPaused = j.State == state.JobPaused && !o.refusePaused
	ru := &run{r: r, done: make(chan struct{}), sync: o.sync}
	m.runs[j.ID] = ru
	delete(m.errs, j.ID)
	m.wg.Add(1)
	go m.run(j.ID, ru)
	return ru, nil
}

func (m *Manager) run(jobID string, ru *run) {
	defer m.wg.Done()
	err := ru.r.Run(m.ctx, jobID)
	m.mu.Lock()
	delete(m.runs, jobID)
	m.last[jobID] = err
	ru.err = err
	if err != nil && !errors.Is(err, ErrInterrupted) {
		m.errs[jobID] = err
		m.cfg.Log.Error("job stopped", "job", jobID, "err", err)
	}
	// A Wake that reached this runner after its last look at the accounts
	// (Wake sends under m.mu, so it came before the runner was forgotten
	// above) would be lost with it: the next run is registered before this
	// one is seen to end, so that Wait follows it.
	select {
	case <-ru.r.enrolled:
		if err == nil && m.ctx.Err() == nil && ru.r.hasWork(jobID) {
			j, jerr := m.store.Job(jobID)
			if jerr == nil {
				_, jerr = m.startLocked(j, runOptions{})
			}
			if jerr != nil {
				m.cfg.Log.Error("job not started again for an enrolled account", "job", jobID, "err", jerr)
			}
		}
	default:
	}
	if _, again := m.runs[jobID]; !again {
		m.waitMembersAgain(jobID, ru, err)
	}
	m.mu.Unlock()
	close(ru.done)
	m.changes.notify()
}

func (m *Manager) runner(jobID string) *Runner {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ru := m.runs[jobID]; ru != nil {
		return ru.r
	}
	return nil
}

// Running reports whether a runner works on the job now.
func (m *Manager) Running(jobID string) bool { return m.runner(jobID) != nil }

// Err is why the job's last run stopped, if it failed.
func (m *Manager) Err(jobID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errs[jobID]
}

// control pauses, resumes, ends or starts a job, running or not.
func (m *Manager) control(jobID, op string) error {
	if r := m.runner(jobID); r != nil {
		switch op {
		case "pause":
			return r.Pause()
		case "resume":
			return r.Resume()
		case "end":
			return r.End()
		case "start":
			return nil
		}
		return fmt.Errorf("unknown operation %q", op)
	}
	if op == "start" {
		return m.Start(jobID)
	}
	if err := m.offline(jobID, op); err != nil {
		return err
	}
	m.changes.notify()
	if op == "resume" && m.mayRun(jobID) == nil {
		return m.Start(jobID)
	}
	return nil
}

// offline changes a job's state when no runner has it: pause and resume
// only change the recorded state; end abandons what is unfinished.
func (m *Manager) offline(jobID, op string) error {
	j, err := m.store.Job(jobID)
	if err != nil {
		return err
	}
	r := New(m.store, m.cfg)
	switch op {
	case "pause":
		if j.State == state.JobEnded {
			return fmt.Errorf("job %s was ended", jobID)
		}
		if err := m.store.SetJobState(jobID, state.JobPaused); err != nil {
			return err
		}
		r.eventOf(jobID, "", "job.paused", wording.New("ev.job.paused", "job", jobID))
	case "resume":
		if j.State != state.JobPaused {
			return fmt.Errorf("job %s is not paused (it is %s)", jobID, j.State)
		}
		if err := m.store.SetJobState(jobID, state.JobRunning); err != nil {
			return err
		}
		r.eventOf(jobID, "", "job.resumed", wording.New("ev.job.resumed", "job", jobID))
	case "end":
		return r.finishEnded(jobID)
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	return nil
}

// Wake tells a job that accounts were added or enrolled; a job that is not
// running (created or completed) is started, where this manager runs it.
func (m *Manager) Wake(jobID string) error {
	m.mu.Lock()
	if ru := m.runs[jobID]; ru != nil {
		ru.r.Wake()
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	if m.mayRun(jobID) != nil {
		// The accounts wait in the state file for the job's next start.
		return nil
	}
	j, err := m.store.Job(jobID)
	if err != nil {
		return err
	}
	if j.State == state.JobPaused || j.State == state.JobEnded {
		return nil
	}
	return m.Start(jobID)
}

// Status is a job's status, with live counts when it runs.
func (m *Manager) Status(jobID string) (*Status, error) {
	if r := m.runner(jobID); r != nil {
		return r.StatusOf(jobID)
	}
	st, err := New(m.store, Config{}).StatusOf(jobID)
	if st != nil {
		st.Attached = false
	}
	return st, err
}

// Account is one account of a job, live while its job runs, without
// secrets.
func (m *Manager) Account(jobID, id string) (*state.Account, error) {
	if r := m.runner(jobID); r != nil {
		return r.AccountOf(jobID, id)
	}
	return New(m.store, Config{}).AccountOf(jobID, id)
}

// Statuses lists every job's status.
func (m *Manager) Statuses() ([]*Status, error) {
	jobs, err := m.store.Jobs()
	if err != nil {
		return nil, err
	}
	var out []*Status
	for _, j := range jobs {
		st, err := m.Status(j.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Stop interrupts every job at message boundaries and waits for them to
// save their progress.
func (m *Manager) Stop() {
	m.Interrupt()
	m.wg.Wait()
}

// Interrupt asks every job to stop at message boundaries and returns at
// once (a signal handler, which must stay free for a second signal).
func (m *Manager) Interrupt() {
	m.mu.Lock()
	defer m.mu.Unlock()
	// No job starts after this: not even one a Wake restarts as its last
	// run ends.
	m.stopping = true
	for _, ru := range m.runs {
		ru.r.Stop()
	}
}

// Copying names an account of the job (of accounts, when given) that a run
// copies now or is about to; "" when none is, e.g. a completed or paused
// job, or a member-triggered job waiting for its members.
func (m *Manager) Copying(jobID string, accounts []string) string {
	if m.runner(jobID) == nil {
		return ""
	}
	j, err := m.store.Job(jobID)
	if err != nil || j.State == state.JobPaused {
		return ""
	}
	st, err := m.Status(jobID)
	if err != nil {
		return ""
	}
	stored, err := m.store.Accounts(jobID)
	if err != nil {
		return ""
	}
	secret := map[string]bool{}
	for _, a := range stored {
		secret[a.ID] = len(a.SourceSecret) > 0
	}
	want := map[string]bool{}
	for _, a := range accounts {
		want[a] = true
	}
	for _, a := range st.Accounts {
		if len(want) > 0 && !want[a.ID] {
			continue
		}
		switch a.State {
		case state.AccountPreparing, state.AccountRunning:
			return a.ID
		case state.AccountNotStarted:
			if j.ModeOf() != state.ModeMember || secret[a.ID] {
				return a.ID
			}
		}
	}
	return ""
}

// Verify compares the job's source and target folder by folder (Runner.Verify)
// with the manager's settings. It refuses while the job copies the accounts
// checked, whose counts move meanwhile, and stops when the manager's context
// ends.
func (m *Manager) Verify(ctx context.Context, jobID string, accounts []string, deep bool) ([]FolderCheck, error) {
	if _, err := m.store.Job(jobID); err != nil {
		return nil, err
	}
	if a := m.Copying(jobID, accounts); a != "" {
		return nil, fmt.Errorf("job %s is copying %s now: verify once it has finished (a running copy makes the counts move)", jobID, a)
	}
	m.mu.Lock()
	stopping := m.stopping
	m.mu.Unlock()
	if stopping {
		return nil, errors.New("banjia is stopping: verify after the next start")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	checks, err := New(m.store, m.cfg).Verify(ctx, jobID, accounts, deep)
	if err != nil || len(accounts) == 0 {
		return checks, err
	}
	// Only the accounts asked for, whatever Runner.Verify checked besides.
	want := map[string]bool{}
	for _, a := range accounts {
		want[a] = true
	}
	var out []FolderCheck
	for _, c := range checks {
		if want[c.Account] {
			out = append(out, c)
		}
	}
	return out, nil
}
