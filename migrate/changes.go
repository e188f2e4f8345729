package migrate

import "sync"

// changes wakes listeners (logs -f, the control socket's follow) when a
// job's state changes. Each listener has one pending wake-up at most: a
// slow one sees the latest state once, not every step. Listeners leave
// when they are done, so a long-running server does not collect them.
type changes struct {
	mu   sync.Mutex
	subs map[chan struct{}]bool
}

// Subscribe returns a channel that receives a value after every change,
// and the function that stops it.
func (c *changes) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.subs == nil {
		c.subs = map[chan struct{}]bool{}
	}
	c.subs[ch] = true
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, ch)
		c.mu.Unlock()
	}
}

func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
