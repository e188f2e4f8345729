package migrate

import (
	"context"
	"io"
	"sync"

	"golang.org/x/time/rate"
)

// rates caps the bytes read from the old servers: for the whole job (a
// shared uplink) and per old server (a provider's fair-use limit). The cap
// is on message bodies, which are nearly all of the traffic.
type rates struct {
	job     *rate.Limiter // nil: no cap for the job
	perHost int64         // bytes/s; 0: no cap per server
	chunk   int           // the most read at once: no more than any burst

	mu    sync.Mutex
	hosts map[string]*rate.Limiter
}

// newRates is nil when nothing is capped.
func newRates(job, perHost int64) *rates {
	if job <= 0 && perHost <= 0 {
		return nil
	}
	r := &rates{perHost: perHost, hosts: map[string]*rate.Limiter{}, chunk: 256 << 10}
	for _, c := range []int64{job, perHost} {
		if c > 0 {
			r.chunk = min(r.chunk, burst(c))
		}
	}
	if job > 0 {
		r.job = rate.NewLimiter(rate.Limit(job), burst(job))
	}
	return r
}

// burst is a tenth of a second's worth, within 16 KiB-256 KiB: small
// enough that the rate holds over seconds, large enough that waiting does
// not cost more than it saves.
func burst(perSecond int64) int {
	return int(min(max(perSecond/10, 16<<10), 256<<10))
}

func (r *rates) host(h string) *rate.Limiter {
	if r.perHost <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.hosts[h]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(r.perHost), burst(r.perHost))
		r.hosts[h] = l
	}
	return l
}

// reader is rd read no faster than the caps allow (rd itself when nothing
// is capped).
func (r *rates) reader(ctx context.Context, host string, rd io.Reader) io.Reader {
	if r == nil {
		return rd
	}
	return &capped{ctx: ctx, r: rd, chunk: r.chunk, limits: []*rate.Limiter{r.job, r.host(host)}}
}

type capped struct {
	ctx    context.Context
	r      io.Reader
	chunk  int
	limits []*rate.Limiter
}

func (c *capped) Read(p []byte) (int, error) {
	if len(p) > c.chunk {
		p = p[:c.chunk]
	}
	n, err := c.r.Read(p)
	for _, l := range c.limits {
		if l != nil && n > 0 {
			if werr := l.WaitN(c.ctx, n); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return n, err
}
