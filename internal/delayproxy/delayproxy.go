// Package delayproxy is a TCP proxy on loopback that holds every chunk for a
// fixed time in each direction, so tests and benchmarks see a real network's
// round trip (twice the one-way delay) without a network namespace or netem.
// Order and throughput are kept: chunks queue behind each other, and a slow
// round trip never slows the byte stream itself.
package delayproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// chunkSize is the largest piece read at once; queueChunks bounds what is in
// flight per direction (queueChunks x chunkSize), enough for a loopback
// stream held for tens of milliseconds.
const (
	chunkSize   = 64 << 10
	queueChunks = 4096
)

// Proxy accepts on Addr and forwards to an upstream address.
type Proxy struct {
	// Addr is where clients connect (127.0.0.1:port).
	Addr     string
	upstream string
	delay    time.Duration
	ln       net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
	pool   sync.Pool
}

// Start listens on a free loopback port and forwards every connection to
// upstream, adding oneWay to each direction.
func Start(upstream string, oneWay time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), upstream: upstream, delay: oneWay, ln: ln, conns: map[net.Conn]bool{}}
	p.pool.New = func() any { b := make([]byte, chunkSize); return &b }
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Add(1)
		go p.serve(c, up)
	}
}

// serve runs both directions of one connection and forgets it when both end.
func (p *Proxy) serve(c, up net.Conn) {
	defer p.wg.Done()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(up, c) }()
	go func() { defer wg.Done(); p.pipe(c, up) }()
	wg.Wait()
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

type chunk struct {
	buf *[]byte
	n   int
	due time.Time
}

// pipe copies src to dst, each chunk leaving no sooner than delay after it
// arrived. Reading never waits for the delay, so the stream keeps its rate.
func (p *Proxy) pipe(dst, src net.Conn) {
	q := make(chan chunk, queueChunks)
	done := make(chan struct{})
	go func() {
		defer close(done)
		broken := false
		for c := range q {
			if !broken {
				if d := time.Until(c.due); d > 0 {
					time.Sleep(d)
				}
				if _, err := dst.Write((*c.buf)[:c.n]); err != nil {
					broken = true
					src.Close()
				}
			}
			p.pool.Put(c.buf)
		}
		if tc, ok := dst.(*net.TCPConn); ok && !broken {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	for {
		buf := p.pool.Get().(*[]byte)
		n, err := src.Read(*buf)
		if n > 0 {
			q <- chunk{buf: buf, n: n, due: time.Now().Add(p.delay)}
		} else {
			p.pool.Put(buf)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// A reset, not an orderly end: drop the other side too once
				// what arrived before it has gone through.
				close(q)
				<-done
				dst.Close()
				return
			}
			break
		}
	}
	close(q)
	<-done
}

// Close stops accepting and cuts every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
