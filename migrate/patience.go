package migrate

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/wording"
)

// patience decides how long a failing thing is retried: until it has been
// tried at least Retries times and nothing has moved for a budget of time.
// A count alone gives up on a link that breaks often but still carries
// mail (a reset every few hundred kilobytes fails some message three times
// in a row within seconds); time alone would give up a lane that was asleep
// in its backoff.
type patience struct {
	min    int           // attempts before giving up is considered
	budget time.Duration // time without progress before giving up
	since  time.Time     // the last progress (or the start)
	tries  int           // failures since then
}

func newPatience(min int, budget time.Duration) *patience {
	return &patience{min: min, budget: budget, since: time.Now()}
}

// progress says something moved: the count and the clock start again.
func (p *patience) progress() {
	p.since = time.Now()
	p.tries = 0
}

// failed counts a failure and reports whether to give up.
func (p *patience) failed() (giveUp bool) {
	p.tries++
	return p.tries >= p.min && time.Since(p.since) >= p.budget
}

// backoff is the wait before try n+1 after n failures (n >= 1): base,
// doubling up to limit, with jitter so that lanes and accounts cut off
// together do not come back together. A server's own hint wins.
func backoff(base, limit time.Duration, n int, hint time.Duration) time.Duration {
	if hint > 0 {
		return hint
	}
	d := base << min(max(n-1, 0), 16)
	if d > limit || d <= 0 {
		d = limit
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// maxThrottled bounds how many throttling replies in a row a lane accepts
// before it gives the account up.
const maxThrottled = 200

// action is what a lane does after a failure.
type action int

const (
	// retry: hang up, wait, connect and try again.
	retry action = iota
	// throttle: the server asked us to slow down; every lane on its host
	// waits as long as it asked.
	throttle
	// giveUp: the first message left keeps breaking the session; it fails
	// alone, and the lane goes on with the rest after the wait.
	giveUp
	// failAccount: the account cannot be copied now.
	failAccount
	// stop: the lane ends at this message boundary (a stop, or its
	// connections were cut).
	stop
)

func (a action) String() string {
	return [...]string{"retry", "throttle", "give up the message", "fail the account", "stop"}[a]
}

// decision is what a lane is to do next.
type decision struct {
	act  action
	wait time.Duration
	// err ends the lane: with failAccount and stop at once, with throttle
	// and giveUp after doing them (the account fails).
	err error
	// reason is why a message is given up.
	reason wording.Reason
}

// pacer is a lane's retry policy: the lane tells it what went wrong and
// whether anything moved, and it says what to do next, keeping the counts
// that decide it. It gives up a message or the account only after RetryFor
// without progress (patience), so a link that breaks often but still moves
// mail is ridden out.
type pacer struct {
	base time.Duration
	// linkUp is the longest wait between connection attempts: the
	// account's servers answered when its pass began, so a lane's waits
	// stop growing sooner than an account's that cannot reach them at all.
	// Waits of 30 s on a link that breaks every few hundred kilobytes left
	// a lane about ten tries in its budget to look up what it had in doubt
	// over the whole folder, and the account failed.
	linkUp time.Duration
	pat    *patience
	// poison counts messages given up in a row: a session that keeps
	// breaking whatever it carries is the account's problem.
	poison int

	// For the batch in hand.
	noProgress   int           // rounds in a row that settled nothing
	connectFails int           // connection attempts in a row that failed
	throttled    int           // throttling replies in a row
	twin         time.Duration // the next wait for a twin in flight
}

func newPacer(cfg *Config) *pacer {
	return &pacer{
		base:   cfg.RetryBase,
		linkUp: min(cfg.RetryMax, 16*cfg.RetryBase),
		pat:    newPatience(cfg.Retries, cfg.RetryFor),
	}
}

// batch starts the counts kept per batch.
func (p *pacer) batch() {
	p.noProgress, p.connectFails, p.throttled = 0, 0, 0
	p.twin = twinWaitFirst
}

// retrying says the last round settled nothing: the next asks for the
// failing message alone, since a whole batch streamed ahead would ride on
// the same connection, and a reset discards what was buffered.
func (p *pacer) retrying() bool { return p.noProgress > 0 }

// connected: the sessions are up (or failed for a reason connecting again
// does not cure).
func (p *pacer) connected() { p.connectFails = 0 }

// settled: lookups settled messages in doubt.
func (p *pacer) settled() {
	p.connectFails = 0
	p.pat.progress()
}

// moved: a round settled messages.
func (p *pacer) moved() {
	p.noProgress, p.poison, p.throttled = 0, 0, 0
	p.pat.progress()
}

// twinWait is how long a lookup deferred by errTwinInFlight waits: each
// look lists the folder, so a long APPEND (a large message on a slow link)
// is waited for ever more patiently.
func (p *pacer) twinWait() time.Duration {
	d := p.twin
	p.twin = min(2*p.twin, twinWaitMax)
	return d
}

// connectFailed decides after a transient failure to connect, or to look
// up what is in doubt, before anything was sent: not the message's fault.
func (p *pacer) connectFailed(err error) decision {
	if fault.Wait(err) > 0 {
		return p.throttle(err)
	}
	p.connectFails++
	if p.pat.failed() {
		return decision{act: failAccount, err: fault.Coded(fault.Account, wording.New("conn.unstable").Because(fault.WhyOf(err)), err)}
	}
	return decision{act: retry, wait: backoff(p.base, p.linkUp, p.connectFails, fault.Wait(err))}
}

// throttle obeys a server that asks us to wait.
func (p *pacer) throttle(err error) decision {
	d := decision{act: throttle, wait: fault.Wait(err)}
	if p.throttled++; p.throttled > maxThrottled {
		d.err = fault.Coded(fault.Account, wording.New("throttled").Because(fault.WhyOf(err)), err)
	}
	return d
}

// afterRound decides after a copy round that ended with err (not one
// unreadable message). halted is why the lane must end now (its boundary's
// cause), or nil; moved says the round settled a message; doubt are the
// messages in doubt, which are not looked up before the target may have
// stored them.
func (p *pacer) afterRound(err, halted error, moved bool, doubt []mail.Message) decision {
	switch {
	case errors.Is(err, errStopped):
		return decision{act: stop, err: errStopped}
	case halted != nil:
		return decision{act: stop, err: halted}
	case fault.Classify(err) == fault.Account || errors.Is(err, mail.ErrValidityChanged):
		return decision{act: failAccount, err: err}
	case fault.Wait(err) > 0 && !moved:
		return p.throttle(err)
	}
	d := decision{act: retry}
	if !moved {
		p.noProgress++
		if p.pat.failed() {
			// The same message keeps breaking the session: give it up.
			d.act = giveUp
			d.reason = wording.New("message.retried", "times", strconv.Itoa(p.noProgress), "over", time.Since(p.pat.since).Round(time.Second).String()).Because(fault.WhyOf(err))
			p.noProgress = 0
			p.pat.progress()
			if p.poison++; p.poison >= 3 {
				d.err = fault.Coded(fault.Account, wording.New("conn.keepsfailing").Because(fault.WhyOf(err)), err)
			}
		}
	}
	d.wait = backoff(p.base, p.linkUp, p.noProgress, fault.Wait(err))
	if len(doubt) > 0 {
		d.wait = max(d.wait, doubtGrace(doubt))
	}
	return d
}
