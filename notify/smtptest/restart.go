package smtptest

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// A server can be stopped and started again on the same ports, as a mail
// server goes down and comes back: the mails it accepted are kept.

type running struct {
	srv *smtp.Server
	// The listeners, closed by Stop itself: smtp.Server.Close misses a
	// listener its Serve has not registered yet.
	listeners []net.Listener
	wg        sync.WaitGroup
}

func (s *Server) serve(plain, implicit net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{s: s, tls: isTLS}, nil
	}))
	srv.Domain = "smtptest.local"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.cert}}
	srv.AllowInsecureAuth = s.opts.AllowInsecureAuth
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	r := &running{srv: srv, listeners: []net.Listener{plain, implicit}}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); srv.Serve(plain) }()
	go func() { defer r.wg.Done(); srv.Serve(tls.NewListener(implicit, srv.TLSConfig)) }()
	s.mu.Lock()
	s.run = r
	s.mu.Unlock()
}

// Stop closes the listeners and every session: connections are refused
// until Restart. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.mu.Unlock()
	if r == nil {
		return
	}
	for _, l := range r.listeners {
		l.Close()
	}
	r.srv.Close()
	r.wg.Wait()
}

// Restart listens again on the same ports after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	// The ports were just closed; another process could take them, which
	// on loopback in a test is unlikely enough to fail the test on.
	var plain, implicit net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if plain, err = net.Listen("tcp", s.StartTLSAddr()); err == nil {
			if implicit, err = net.Listen("tcp", s.TLSAddr()); err == nil {
				break
			}
			plain.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtptest: listen again: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.serve(plain, implicit)
}
