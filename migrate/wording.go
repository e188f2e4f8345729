package migrate

import (
	"strconv"

	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// eventOf records an event the engine did, kept as a catalogue code so
// each reader sees it in their language.
func (r *Runner) eventOf(job, account, kind string, why wording.Reason) {
	r.eventOfBy(string(state.Engine), job, account, kind, why)
}

// eventOfBy is eventOf for what who (a state.Actor) did.
func (r *Runner) eventOfBy(who, job, account, kind string, why wording.Reason) {
	e := &state.Event{Job: job, Account: account, Kind: kind, Message: why.String(), Who: who}
	if why.Coded() {
		e.Why = &why
	}
	r.record(e)
}

// EventOf is Event with the line as a catalogue code.
func (m *Manager) EventOf(who, job, account, kind string, why wording.Reason) {
	New(m.store, m.cfg).eventOfBy(who, job, account, kind, why)
}

// countsWhy is the counts line (R8) as a reason.
func countsWhy(c state.Counts) wording.Reason {
	return wording.New("counts", "to", n64(c.ToImport), "imported", n64(c.Imported), "failed", n64(c.Failed))
}

// leftWhy is the reason of an account that finished with messages not on
// the target: the counts, how many are missing, and why (the first groups).
func leftWhy(c state.Counts, groups []FailureGroup) wording.Reason {
	var left int64
	for _, g := range groups {
		left += g.Messages
	}
	return wording.New("left", "to", n64(c.ToImport), "imported", n64(c.Imported), "failed", n64(c.Failed),
		"left", n64(left)).With("groups", GroupsWhy(groups, 3))
}

// accountWhy is an account's reason as a reason: its code while the code
// still says the text (see state.Account.ReasonIn).
func accountWhy(a *state.Account) wording.Reason {
	if a.Why != nil && a.Why.String() == a.Reason {
		return *a.Why
	}
	return wording.Plain(a.Reason)
}

func n64(n int64) string { return strconv.FormatInt(n, 10) }

// one is code, or its ".1" form (the English singular) when n is 1.
func one(code string, n int) string {
	if n == 1 {
		return code + ".1"
	}
	return code
}
