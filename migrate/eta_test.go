package migrate

import (
	"testing"
	"time"

	"github.com/banjia-mail/banjia/state"
)

func TestEstimate(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	running := func(id string, started time.Duration, toImport, imported int64) state.Account {
		return state.Account{ID: id, State: state.AccountRunning, Started: now.Add(-started), Counts: state.Counts{ToImport: toImport, Imported: imported}}
	}
	cases := []struct {
		name     string
		accounts []state.Account
		job      time.Duration
		each     map[string]time.Duration
	}{
		{name: "nothing running", accounts: []state.Account{{ID: "a", State: state.AccountNotStarted}}, each: map[string]time.Duration{}},
		{name: "too early to tell", accounts: []state.Account{running("a", 2*time.Second, 100, 10)}, each: map[string]time.Duration{}},
		// 100 copied in 100 s: 1/s; 300 left.
		{name: "one account", accounts: []state.Account{running("a", 100*time.Second, 400, 100)},
			job: 300 * time.Second, each: map[string]time.Duration{"a": 300 * time.Second}},
		// a: 1/s, 100 left; b: 2/s, 100 left. The job: 3/s for 200 left,
		// plus c not listed yet, taken as the average listed (250): 450 / 3.
		{name: "job rate is the sum; unlisted as the average", accounts: []state.Account{
			running("a", 100*time.Second, 200, 100), running("b", 100*time.Second, 300, 200),
			{ID: "c", State: state.AccountNotStarted},
			{ID: "d", State: state.AccountSucceeded, Counts: state.Counts{ToImport: 9999, Imported: 9999}}},
			job: 150 * time.Second, each: map[string]time.Duration{"a": 100 * time.Second, "b": 50 * time.Second}},
		{name: "failed and skipped are not left", accounts: []state.Account{
			{ID: "a", State: state.AccountRunning, Started: now.Add(-10 * time.Second), Counts: state.Counts{ToImport: 100, Imported: 10, Failed: 40, Skipped: 40}}},
			job: 10 * time.Second, each: map[string]time.Duration{"a": 10 * time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &Status{Accounts: c.accounts}
			st.estimate(now)
			if st.ETA != c.job {
				t.Errorf("job ETA %s, want %s", st.ETA, c.job)
			}
			if len(st.AccountETA) != len(c.each) {
				t.Errorf("account ETAs %v, want %v", st.AccountETA, c.each)
			}
			for id, want := range c.each {
				if got := st.AccountETA[id]; got != want {
					t.Errorf("%s: ETA %s, want %s", id, got, want)
				}
			}
		})
	}
}

// TestSummaryETA: the job page's time left, from the kept totals and the
// accounts in flight.
func TestSummaryETA(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	j := &state.Job{}
	live := []*state.Account{
		{ID: "a", State: state.AccountRunning, Started: now.Add(-100 * time.Second), Counts: state.Counts{ToImport: 300, Imported: 100}},
		{ID: "b", State: state.AccountRunning, Started: now.Add(-100 * time.Second), Counts: state.Counts{ToImport: 300, Imported: 200}},
	}
	var tot state.Totals
	for _, a := range live {
		tot.Count(a, 1)
	}
	tot.Count(&state.Account{ID: "c", State: state.AccountNotStarted, SourceSecret: []byte("sealed")}, 1)
	// 3/s; left: 200 + 100, and c as the average started (300): 600 / 3.
	if got := summaryETA(&tot, j, live, now); got != 200*time.Second {
		t.Errorf("ETA %s, want 200s", got)
	}
	if got := summaryETA(&tot, j, nil, now); got != 0 {
		t.Errorf("ETA %s with nothing running, want 0 (unknown)", got)
	}
}
