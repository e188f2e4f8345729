package migrate

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/banjia-mail/banjia/state"
)

// A new address is moved into by one job at a time (ended jobs aside): the
// portal finds its member's move by the new address, and with two jobs it
// could show only one of them. So adding an account whose new address
// another job still holds is refused, at job creation, when accounts are
// added, and when a member enrolls, with what the admin can do about it.

// ErrNewTaken says another job, not ended, already moves into the new
// address.
var ErrNewTaken = errors.New("the new address is already in another job")

// NewTaken is ErrNewTaken with where.
type NewTaken struct {
	New, Job, Old string
	State         state.JobState
}

func (e *NewTaken) Error() string {
	return fmt.Sprintf("%s is already the new address of %s in job %s (%s): a new address is moved into by one job at a time, "+
		"or its member's portal would show only one of the moves; end job %s first (ending a job whose accounts are done loses nothing), "+
		"or add the account to job %s", e.New, e.Old, e.Job, e.State, e.Job, e.Job)
}

func (e *NewTaken) Is(target error) bool { return target == ErrNewTaken }

// newTaken is the account of another job than jobID, not ended, that moves
// into the new address, or nil.
func newTaken(store *state.Store, jobID, newAddr string) (*NewTaken, error) {
	refs, err := store.ByTarget(newAddr)
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		if ref.Job == jobID {
			continue
		}
		j, err := store.Job(ref.Job)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if j.State != state.JobEnded {
			return &NewTaken{New: strings.ToLower(newAddr), Job: j.ID, Old: ref.Account, State: j.State}, nil
		}
	}
	return nil, nil
}

// MemberJobs lists the jobs, not ended, that move into a new address, with
// the account of each (oldest job first): the portal's sign-in. More than
// one is a conflict made before new addresses were checked; the portal
// does not choose among them.
func (m *Manager) MemberJobs(newAddr string) ([]*state.Job, []*state.Account, error) {
	refs, err := m.store.ByTarget(newAddr)
	if err != nil {
		return nil, nil, err
	}
	var jobs []*state.Job
	var accts []*state.Account
	for _, ref := range refs {
		j, err := m.store.Job(ref.Job)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if j.State == state.JobEnded {
			continue
		}
		a, err := m.store.Account(ref.Job, ref.Account)
		if err != nil {
			return nil, nil, err
		}
		if len(jobs) > 0 && jobs[len(jobs)-1].ID == j.ID {
			// Two old mailboxes into one new, in one job: the first.
			continue
		}
		jobs, accts = append(jobs, j), append(accts, a)
	}
	idx := make([]int, len(jobs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, k int) bool { return jobs[idx[i]].Created.Before(jobs[idx[k]].Created) })
	sj, sa := make([]*state.Job, len(jobs)), make([]*state.Account, len(jobs))
	for i, k := range idx {
		sj[i], sa[i] = jobs[k], accts[k]
	}
	return sj, sa, nil
}
