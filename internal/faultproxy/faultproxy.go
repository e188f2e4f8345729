// Package faultproxy is a TCP proxy for tests that breaks connections the
// way real networks do: resets in the middle of a transfer, resets before
// the greeting, half-closed connections and stalls longer than any timeout.
package faultproxy

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Plan says how often and how faults happen; zero values turn a kind off.
type Plan struct {
	// Early is the chance a new connection is reset within its first bytes.
	Early float64
	// MeanBytes: connections die after an exponentially distributed number
	// of bytes (both directions) with this mean...
	MeanBytes int64
	// ...except this share of them, which live on.
	Healthy float64
	// HalfClose and Stall are the shares of mid-transfer faults that close
	// only the client's read side, or stop forwarding for StallFor.
	HalfClose, Stall float64
	StallFor         time.Duration
	Seed             uint64
}

// Counts are the faults injected so far.
type Counts struct {
	Connections, Resets, EarlyResets, HalfCloses, Stalls int64
}

// Total is every injected fault.
func (c Counts) Total() int64 { return c.Resets + c.EarlyResets + c.HalfCloses + c.Stalls }

// Proxy forwards one listener to one address.
type Proxy struct {
	ln     net.Listener
	target string
	plan   Plan
	mu     sync.Mutex
	rng    *rand.Rand
	on     atomic.Bool
	counts struct{ conns, resets, early, half, stalls atomic.Int64 }
	wg     sync.WaitGroup
}

// Start listens on a free loopback port.
func Start(target string, plan Plan) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, plan: plan, rng: rand.New(rand.NewPCG(plan.Seed, 99))}
	p.on.Store(true)
	go p.accept()
	return p, nil
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetFaults turns injection on or off (off: a clean proxy).
func (p *Proxy) SetFaults(on bool) { p.on.Store(on) }

// Counts reports what was injected.
func (p *Proxy) Counts() Counts {
	return Counts{Connections: p.counts.conns.Load(), Resets: p.counts.resets.Load(), EarlyResets: p.counts.early.Load(),
		HalfCloses: p.counts.half.Load(), Stalls: p.counts.stalls.Load()}
}

// Close stops accepting and waits for connections to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c.(*net.TCPConn))
		}()
	}
}

type fate struct {
	after int64 // bytes until the fault; <0: none
	kind  int   // 0 reset, 1 half-close, 2 stall
	early bool
}

func (p *Proxy) decide() fate {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on.Load() {
		return fate{after: -1}
	}
	if p.plan.Early > 0 && p.rng.Float64() < p.plan.Early {
		return fate{after: int64(p.rng.IntN(64)), early: true}
	}
	if p.plan.MeanBytes <= 0 || p.rng.Float64() < p.plan.Healthy {
		return fate{after: -1}
	}
	f := fate{after: 1 + int64(p.rng.ExpFloat64()*float64(p.plan.MeanBytes))}
	switch r := p.rng.Float64(); {
	case r < p.plan.Stall:
		f.kind = 2
	case r < p.plan.Stall+p.plan.HalfClose:
		f.kind = 1
	}
	return f
}

func (p *Proxy) serve(client *net.TCPConn) {
	p.counts.conns.Add(1)
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	f := p.decide()
	var moved atomic.Int64
	var once sync.Once
	trip := make(chan struct{})
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				total := moved.Add(int64(n))
				if f.after >= 0 && total >= f.after {
					once.Do(func() { close(trip) })
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				return
			}
		}
	}
	done := make(chan struct{}, 2)
	go func() { pipe(server, client); done <- struct{}{} }()
	go func() { pipe(client, server); done <- struct{}{} }()
	pending := 2
	select {
	case <-trip:
		switch {
		case f.early:
			p.counts.early.Add(1)
			client.SetLinger(0) // RST, not FIN
		case f.kind == 2:
			p.counts.stalls.Add(1)
			time.Sleep(p.plan.StallFor)
		case f.kind == 1:
			p.counts.half.Add(1)
			client.CloseWrite()
			time.Sleep(50 * time.Millisecond)
		default:
			p.counts.resets.Add(1)
			client.SetLinger(0)
		}
	case <-done:
		pending--
	}
	client.Close()
	server.Close()
	for ; pending > 0; pending-- {
		<-done
	}
}
