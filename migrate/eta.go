package migrate

import (
	"time"

	"github.com/banjia-mail/banjia/state"
)

// etaWarmup is how long an account must have run before its rate says
// anything: the first seconds are login and listing, not copying.
const etaWarmup = 5 * time.Second

// remaining is how many of a's messages are still to be copied.
func remaining(c state.Counts) int64 {
	return max(c.ToImport-c.Imported-c.Failed-c.Skipped, 0)
}

// accountRate is a running account's messages per second since it
// started, or 0 while that says nothing yet.
func accountRate(a *state.Account, now time.Time) float64 {
	if a.State != state.AccountRunning || a.Started.IsZero() || a.Counts.Imported == 0 {
		return 0
	}
	d := now.Sub(a.Started)
	if d < etaWarmup {
		return 0
	}
	return float64(a.Counts.Imported) / d.Seconds()
}

// estimate fills in the times left, from the rates measured now: each
// running account's own, and the job's as the sum of its running accounts'
// (what the job moves per second now). Accounts not listed yet are taken
// to hold as many messages as the average listed one. Nothing is estimated
// while no account has a rate.
func (st *Status) estimate(now time.Time) {
	st.AccountETA = map[string]time.Duration{}
	var jobRate float64
	var left, listed, listedTotal, unlisted int64
	for i := range st.Accounts {
		a := &st.Accounts[i]
		if a.State.Finished() {
			continue
		}
		if rate := accountRate(a, now); rate > 0 {
			jobRate += rate
			st.AccountETA[a.ID] = time.Duration(float64(remaining(a.Counts)) / rate * float64(time.Second)).Round(time.Second)
		}
		if a.Counts.ToImport > 0 {
			listed++
			listedTotal += a.Counts.ToImport
			left += remaining(a.Counts)
		} else if !st.Job.AwaitingMember(a) {
			unlisted++
		}
	}
	if jobRate == 0 {
		st.ETA = 0
		return
	}
	if listed > 0 {
		left += unlisted * listedTotal / listed
	}
	st.ETA = time.Duration(float64(left) / jobRate * float64(time.Second)).Round(time.Second)
}
