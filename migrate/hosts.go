package migrate

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/wording"
)

// hostRecheck is how long a failed attempt on a host known to be down
// stands for every account of that host: an account that starts within it
// fails at once, with that attempt's reason, instead of trying again.
const hostRecheck = 30 * time.Second

// hostForget is how long without any attempt makes an outage forgotten:
// what was seen then says nothing about the time in between. It is longer
// than hostRecheck, so the tries of accounts that come one by one keep a
// known outage known.
const hostForget = 2 * hostRecheck

// outages remembers, per server address, that nobody of this run has
// reached it since some time. Without it each account on a dead server
// spends ConnectFor finding that out again in a slot of the pool, and the
// accounts on live servers queue behind them: 15 dead accounts at
// --parallel 4 held the pool for four minutes.
type outages struct {
	mu   sync.Mutex
	down map[string]*outage
}

// outage is one server that has not been reached since since.
type outage struct {
	since time.Time // the first failure with no success after it
	last  time.Time // the latest failed attempt
	err   error     // its error, for the reason
	tries int
}

func newOutages() *outages { return &outages{down: map[string]*outage{}} }

// failed records a failed attempt to reach addr.
func (o *outages) failed(addr string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	d := o.down[addr]
	if d == nil || now.Sub(d.last) > hostForget {
		d = &outage{since: now}
		o.down[addr] = d
	}
	d.last, d.err = now, err
	d.tries++
}

// reached says addr answered: its outage, if any, is over.
func (o *outages) reached(addr string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.down, addr)
}

// lasting returns addr's outage if it has lasted at least long.
func (o *outages) lasting(addr string, long time.Duration) (outage, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.down[addr]
	if d == nil || time.Since(d.since) < long || time.Since(d.last) > hostForget {
		return outage{}, false
	}
	return *d, true
}

// open connects to addr through open, sharing what every account has
// learnt about addr: once nobody has reached it for connectFor, an account
// tries once (or not at all, when the last try is fresh) and fails with the
// step and the reason, so that a dead server costs each of its accounts
// seconds, not connectFor.
func (o *outages) open(ctx context.Context, addr string, connectFor time.Duration, open func() error) error {
	if d, ok := o.lasting(addr, connectFor); ok && time.Since(d.last) < hostRecheck {
		return o.givenUp(addr, d)
	}
	_, known := o.lasting(addr, connectFor)
	err := open()
	switch {
	case err == nil:
		o.reached(addr)
	case ctx.Err() == nil && fault.Classify(err) == fault.Retry:
		o.failed(addr, err)
		if known {
			d, _ := o.lasting(addr, 0)
			return o.givenUp(addr, d)
		}
	}
	return err
}

func (o *outages) givenUp(addr string, d outage) error {
	return fault.Coded(fault.Account, wording.New("outage", "addr", addr, "for", time.Since(d.since).Round(time.Second).String(),
		"tries", strconv.Itoa(d.tries)).Because(fault.WhyOf(d.err)), nil)
}

// place is an account's place among the accounts copied at once (one of
// Config.Accounts). It is given up when the account has queued all its
// batches, when it ends, and while it waits to try a server again.
type place struct {
	sem  chan struct{} // nil: no limit (an account run on its own)
	mu   sync.Mutex
	held bool
}

// give gives the place up, if held, and says whether it was.
func (p *place) give() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held {
		return false
	}
	<-p.sem
	p.held = false
	return true
}

// tryTake takes a place if one is free now (or held, or there is no limit).
func (p *place) tryTake() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held || p.sem == nil {
		return true
	}
	select {
	case p.sem <- struct{}{}:
		p.held = true
		return true
	default:
		return false
	}
}

// take waits for a place, unless one is held (or there is no limit).
func (p *place) take(ctx context.Context) error {
	p.mu.Lock()
	held := p.held || p.sem == nil
	p.mu.Unlock()
	if held {
		return nil
	}
	select {
	case p.sem <- struct{}{}:
		p.mu.Lock()
		p.held = true
		p.mu.Unlock()
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
