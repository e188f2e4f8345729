package migrate

import (
	"time"

	"github.com/banjia-mail/banjia/state"
)

// Summary is a job and the totals of its accounts, with live counts while
// it runs: what a job list, a job page's header and /metrics show, found
// without reading every account (state.Totals).
type Summary struct {
	Job      state.Job
	Totals   state.Totals
	Attached bool // a runner is working on the job right now
	// Outside says the job waits for its window to open.
	Outside bool
	// ETA is the time left at the rate the job moves now (see estimate);
	// 0 while nothing can be told.
	ETA time.Duration
}

// Summary sums one job.
func (m *Manager) Summary(jobID string) (*Summary, error) {
	j, err := m.store.Job(jobID)
	if err != nil {
		return nil, err
	}
	sm := &Summary{Job: *j}
	sm.Job.SourceAdminSecret, sm.Job.TargetAdminSecret = nil, nil
	r := m.runner(jobID)
	var fresh []*state.Account
	var ids []string
	if r != nil {
		sm.Attached = true
		fresh = r.unsaved(jobID)
		for _, a := range fresh {
			ids = append(ids, a.ID)
		}
	}
	tot, stored, err := m.store.TotalsWith(jobID, ids)
	if err != nil {
		return nil, err
	}
	// The accounts being copied count as they are now, not as last saved.
	for _, a := range fresh {
		if old, ok := stored[a.ID]; ok {
			tot.Count(old, -1)
		}
		tot.Count(a, 1)
	}
	sm.Totals = *tot
	if r != nil {
		sm.ETA = summaryETA(tot, j, fresh, time.Now())
		r.mu.Lock()
		sm.Outside = r.outside && r.job != nil && r.job.ID == jobID
		r.mu.Unlock()
	}
	return sm, nil
}

// summaryETA is Status.estimate from the kept totals and the accounts in
// flight: the job's rate is the sum of theirs; accounts not started yet
// are taken to hold as many messages as the average started one.
func summaryETA(tot *state.Totals, j *state.Job, live []*state.Account, now time.Time) time.Duration {
	var rate float64
	for _, a := range live {
		rate += accountRate(a, now)
	}
	if rate == 0 {
		return 0
	}
	left := remaining(tot.Counts)
	notStarted := tot.N[state.AccountNotStarted] - tot.Waiting(j)
	if started := tot.Accounts - tot.N[state.AccountNotStarted]; notStarted > 0 && started > 0 {
		left += int64(notStarted) * tot.Counts.ToImport / int64(started)
	}
	return time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second)
}

// Summaries sums every job, oldest first.
func (m *Manager) Summaries() ([]*Summary, error) {
	jobs, err := m.store.Jobs()
	if err != nil {
		return nil, err
	}
	var out []*Summary
	for _, j := range jobs {
		sm, err := m.Summary(j.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, sm)
	}
	return out, nil
}

// AccountPage lists count accounts of a job in ID order after skipping
// skip, of the given states (none: all), live while they are copied and
// without their sealed secrets. Only the accounts listed are read.
func (m *Manager) AccountPage(jobID string, states []state.AccountState, skip, count int) ([]state.Account, error) {
	accts, err := m.store.AccountPage(jobID, states, skip, count)
	if err != nil {
		return nil, err
	}
	r := m.runner(jobID)
	out := make([]state.Account, 0, len(accts))
	for _, a := range accts {
		if r != nil {
			if live := r.liveAccount(jobID, a.ID); live != nil {
				a = live
			}
		}
		c := *a
		c.SourceSecret, c.TargetSecret = nil, nil
		out = append(out, c)
	}
	return out, nil
}

// unsaved are copies of the job's accounts whose record in the state may
// be behind: every account of the round, until the flush that follows its
// end has been written (a copy taken for a flush is not yet in the file).
// A round holds as many accounts as are copied at once, not the job.
func (r *Runner) unsaved(jobID string) []*state.Account {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.job == nil || r.job.ID != jobID {
		return nil
	}
	out := make([]*state.Account, 0, len(r.live))
	for _, ar := range r.live {
		out = append(out, ar.snapshot())
	}
	return out
}

// liveAccount is a copy of an account being copied in this runner's job,
// or nil.
func (r *Runner) liveAccount(jobID, id string) *state.Account {
	r.mu.Lock()
	ar, ok := r.live[id]
	live := ok && r.job != nil && r.job.ID == jobID
	r.mu.Unlock()
	if !live {
		return nil
	}
	return ar.snapshot()
}

// Summary sums a status already read in full.
func (st *Status) Summary() *Summary {
	sm := &Summary{Job: st.Job, Attached: st.Attached, Totals: state.Totals{N: map[state.AccountState]int{}}}
	for i := range st.Accounts {
		sm.Totals.Count(&st.Accounts[i], 1)
	}
	return sm
}
