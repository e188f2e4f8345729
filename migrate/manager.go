package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// Manager runs several jobs in one process (banjia serve): one Runner per
// job, all over the same state file, which the process holds locked. The
// CLI's `job start` runs a single Runner instead.
type Manager struct {
	store *state.Store
	cfg   Config
	ctx   context.Context

	mu      sync.Mutex
	runners map[string]*Runner
	done    map[string]chan struct{}
	errs    map[string]error
	changes changes // any job changed
	wg      sync.WaitGroup
	// stopping: Stop was called; no job starts any more.
	stopping bool
}

// NewManager makes a manager; ctx bounds every job it runs.
func NewManager(ctx context.Context, store *state.Store, cfg Config) *Manager {
	m := &Manager{store: store, cfg: cfg, ctx: ctx, runners: map[string]*Runner{}, done: map[string]chan struct{}{}, errs: map[string]error{}}
	prev := cfg.OnEvent
	m.cfg.OnEvent = func(e *state.Event) {
		m.changes.notify()
		if prev != nil {
			prev(e)
		}
	}
	return m
}

// Event records an event in the audit log (搬家查询) and tells whoever
// listens: the admin's actions, enrollments.
func (m *Manager) Event(job, account, kind, msg string) {
	New(m.store, m.cfg).event(job, account, kind, msg)
}

// Store is the manager's state file.
func (m *Manager) Store() *state.Store { return m.store }

// Resume restarts the jobs that were running when the process stopped.
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
// is; a completed job runs again for the accounts added since.
func (m *Manager) Start(jobID string) error {
	j, err := m.store.Job(jobID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return errors.New("banjia is stopping: the job starts with the next start")
	}
	if _, ok := m.runners[jobID]; ok {
		m.mu.Unlock()
		return nil
	}
	if j.State == state.JobEnded {
		m.mu.Unlock()
		return fmt.Errorf("job %s was ended; create a new job to move its remaining accounts", jobID)
	}
	r := New(m.store, m.cfg)
	// A paused job comes back paused, waiting for Resume.
	r.startPaused = j.State == state.JobPaused
	done := make(chan struct{})
	m.runners[jobID] = r
	m.done[jobID] = done
	delete(m.errs, jobID)
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		err := r.Run(m.ctx, jobID)
		m.mu.Lock()
		delete(m.runners, jobID)
		delete(m.done, jobID)
		if err != nil && !errors.Is(err, ErrInterrupted) {
			m.errs[jobID] = err
			m.cfg.Log.Error("job stopped", "job", jobID, "err", err)
		}
		// A Wake that reached this runner after its last look at the
		// accounts (Wake sends under m.mu, so it came before the runner
		// was forgotten above) would be lost with it.
		woken := false
		select {
		case <-r.enrolled:
			woken = err == nil && m.ctx.Err() == nil
		default:
		}
		m.mu.Unlock()
		close(done)
		m.changes.notify()
		if woken && r.hasWork(jobID) {
			if err := m.Start(jobID); err != nil {
				m.cfg.Log.Error("job not started again for an enrolled account", "job", jobID, "err", err)
			}
		}
	}()
	// Wait until the runner holds the job, so that a pause right after
	// this call reaches it.
	for i := 0; i < 400; i++ {
		r.mu.Lock()
		ready := r.job != nil
		r.mu.Unlock()
		if ready || isClosed(done) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func (m *Manager) runner(jobID string) *Runner {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runners[jobID]
}

// Running reports whether a runner works on the job now.
func (m *Manager) Running(jobID string) bool { return m.runner(jobID) != nil }

// Err is why the job's last run stopped, if it failed.
func (m *Manager) Err(jobID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errs[jobID]
}

// Control pauses, resumes or ends a job, running or not.
func (m *Manager) Control(jobID, op string) error {
	if r := m.runner(jobID); r != nil {
		switch op {
		case "pause":
			return r.Pause()
		case "resume":
			return r.Resume()
		case "end":
			return r.End()
		}
		return fmt.Errorf("unknown operation %q", op)
	}
	if op == "start" {
		return m.Start(jobID)
	}
	if err := Offline(m.store, jobID, op); err != nil {
		return err
	}
	m.changes.notify()
	if op == "resume" {
		return m.Start(jobID)
	}
	return nil
}

// Wake tells a job that accounts were added or enrolled; a job that is not
// running (created or completed) is started.
func (m *Manager) Wake(jobID string) error {
	m.mu.Lock()
	if r := m.runners[jobID]; r != nil {
		r.Wake()
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
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
	m.mu.Lock()
	// No job starts after this: not even one a Wake restarts as its last
	// run ends.
	m.stopping = true
	for _, r := range m.runners {
		r.Stop()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Retry runs again, once the admin has fixed the cause, the job's accounts
// that failed or finished with failures (what `banjia job retry` does): their
// failed messages and refused folders are tried once more; what is already on
// the target is not copied again. who is recorded in the event log as the
// one who asked. A job that is not running is started; a running one (a
// member-triggered job waits for its members for weeks) takes the accounts
// back as not started, as when a member types the old password again. It
// returns the accounts retried.
func (m *Manager) Retry(jobID, who string) ([]string, error) {
	j, err := m.store.Job(jobID)
	if err != nil {
		return nil, err
	}
	switch j.State {
	case state.JobEnded:
		return nil, fmt.Errorf("job %s was ended; create a new job to move its remaining accounts", jobID)
	case state.JobPaused:
		return nil, fmt.Errorf("job %s is paused: resume it, then retry", jobID)
	}
	accts, err := m.store.Accounts(jobID)
	if err != nil {
		return nil, err
	}
	var ids []string
	var again []*state.Account
	waiting := 0
	for _, a := range accts {
		if a.State != state.AccountFailed && a.State != state.AccountPartial {
			continue
		}
		if j.ModeOf() == state.ModeMember && len(a.SourceSecret) == 0 {
			// Only the member can give the old password again (the portal).
			waiting++
			continue
		}
		ids = append(ids, a.ID)
		again = append(again, a)
	}
	if len(ids) == 0 {
		if waiting > 0 {
			return nil, fmt.Errorf("job %s: the %d failed accounts have no old password stored; their members type it again in the portal", jobID, waiting)
		}
		return nil, fmt.Errorf("job %s: no account failed or finished with failures; nothing to retry", jobID)
	}
	m.mu.Lock()
	stopping := m.stopping
	m.mu.Unlock()
	if stopping {
		return nil, errors.New("banjia is stopping: retry after the next start")
	}
	names := strings.Join(ids, ", ")
	if len(ids) > 10 {
		names = strings.Join(ids[:10], ", ") + fmt.Sprintf(" and %d more", len(ids)-10)
	}
	m.Event(jobID, "", "admin.retry", fmt.Sprintf("%s asked to retry job %s: %d %s that failed or finished with failures (%s)",
		who, jobID, len(ids), plural(int64(len(ids)), "account", "accounts"), names))
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return nil, errors.New("banjia is stopping: retry after the next start")
	}
	if r := m.runners[jobID]; r != nil {
		// The running job has finished with these accounts for this run:
		// as not started, it takes them again (now, or as this round
		// ends). Under m.mu, so that a run ending now sees the Wake and
		// starts again.
		for _, a := range again {
			a.State, a.Reason = state.AccountNotStarted, ""
		}
		err := m.store.PutAccounts(jobID, again...)
		if err == nil {
			r.Wake()
		}
		m.mu.Unlock()
		m.changes.notify()
		return ids, err
	}
	m.mu.Unlock()
	// A new run takes every account that has not succeeded.
	return ids, m.Start(jobID)
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
