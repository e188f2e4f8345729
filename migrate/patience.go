package migrate

import (
	"math/rand/v2"
	"time"
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
