package web

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// errSeveralJobs says a new address is in more than one job that is not
// ended (made before new addresses were checked, see migrate.ErrNewTaken):
// the portal does not pick one for the member.
type errSeveralJobs struct {
	jobs  []string
	first *state.Job // whose new server checks the member's password
}

func (e *errSeveralJobs) Error() string {
	return fmt.Sprintf("the new address is in %d jobs that are not ended: %s", len(e.jobs), strings.Join(e.jobs, ", "))
}

// jobsForMember finds the job a new address belongs to: the one that lists
// it (found in the state's new-address index, without reading every
// account), else a member-triggered job of its domain that still takes
// members.
func (s *Server) jobsForMember(address string) (*state.Job, *state.Account, error) {
	jobs, accts, err := s.m.MemberJobs(address)
	if err != nil {
		return nil, nil, err
	}
	switch len(jobs) {
	case 1:
		return jobs[0], accts[0], nil
	case 0:
	default:
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		return nil, nil, &errSeveralJobs{jobs: ids, first: jobs[0]}
	}
	all, err := s.store.Jobs()
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(all, func(i, k int) bool { return all[i].Created.After(all[k].Created) })
	_, domain, _ := strings.Cut(address, "@")
	for _, j := range all {
		if j.ModeOf() == state.ModeMember && strings.EqualFold(j.NewDomain, domain) && j.Enrolling(time.Now()) {
			return j, nil, nil
		}
	}
	return nil, nil, state.ErrNotFound
}

// memberAccount is the account a signed-in member moves, if any yet.
func (s *Server) memberAccount(ss *session) (*state.Job, *state.Account, error) {
	// The job found at sign-in, while it lasts.
	j, err := s.store.Job(ss.job)
	if err != nil || j.State == state.JobEnded {
		if j, _, err = s.jobsForMember(ss.member); err != nil {
			return nil, nil, err
		}
	}
	refs, err := s.store.ByTarget(ss.member)
	if err != nil {
		return nil, nil, err
	}
	for _, ref := range refs {
		if ref.Job != j.ID {
			continue
		}
		live, err := s.m.Account(j.ID, ref.Account)
		if err != nil || live.State == state.AccountNotStarted {
			// Not started, the stored record is as live as any, and it
			// still says whether the member typed the old password (the
			// live copy has no secrets: it would read as waiting for the
			// member, and the page would show the form again).
			stored, serr := s.store.Account(j.ID, ref.Account)
			if serr != nil {
				return nil, nil, serr
			}
			return j, stored, nil
		}
		return j, live, nil
	}
	return j, nil, nil
}

// severalJobs tells a member whose new address is in several jobs to ask
// the admin, and tells the admin, in the event log, which jobs to fix.
func (s *Server) severalJobs(address string, several *errSeveralJobs, lang string, fail func(int, string)) {
	for _, j := range several.jobs {
		s.m.EventBy(state.MemberActor(address), j, "", "warning", fmt.Sprintf("portal: %s signed in, but %s: end all but one of them so that the portal knows which move is the member's", address, several.Error()))
	}
	fail(http.StatusConflict, tr(lang, "new.several"))
}
