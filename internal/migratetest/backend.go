package migratetest

import (
	"os"
	"testing"

	"github.com/banjia-mail/banjia/internal/dovecot"
)

// Backend is the kind of server a World runs on.
type Backend string

const (
	// Dovecot: private Dovecot instances, the servers banjia meets in the
	// field, with their own storage, faults and controls.
	Dovecot Backend = "dovecot"
	// Memory: go-imap's in-memory server on loopback (MemServer), for the
	// engine's logic; it starts in a millisecond.
	Memory Backend = "memory"
)

// BackendEnv names the variable that picks EngineBackend's choice
// ("dovecot" or "memory") whatever the flags say.
const BackendEnv = "BANJIA_TEST_BACKEND"

// EngineBackend is the backend for tests of the engine's logic: the one
// BANJIA_TEST_BACKEND names; else the in-memory server under -short,
// unless BANJIA_REQUIRE_SERVERS=1 asks for the real servers; else Dovecot.
func EngineBackend() Backend {
	switch Backend(os.Getenv(BackendEnv)) {
	case Dovecot:
		return Dovecot
	case Memory:
		return Memory
	}
	if testing.Short() && os.Getenv("BANJIA_REQUIRE_SERVERS") != "1" {
		return Memory
	}
	return Dovecot
}

// NeedsRealServers marks a test that checks what only real servers do
// (Dovecot's storage faults, killed processes and configuration; Cyrus,
// Courier): it is skipped, saying why, where EngineBackend is the
// in-memory server, and otherwise runs as it always has.
func NeedsRealServers(t testing.TB, why string) {
	t.Helper()
	if EngineBackend() == Memory {
		t.Skipf("SKIPPED under -short: needs real servers (%s); runs without -short or with %s=dovecot", why, BackendEnv)
	}
}

// Server is one side of a World. On the Dovecot backend it is the
// instance, with all its controls; on the in-memory backend the embedded
// *dovecot.Server is nil, and only IMAPAddr, AddUser, Deliver and
// Delimiter may be used.
type Server struct {
	*dovecot.Server
	// IMAPAddr is the plain IMAP address, on either backend.
	IMAPAddr string
	// Mem is the in-memory server; nil on the Dovecot backend.
	Mem *MemServer
	// Other is a Cyrus or Courier target (Options.Target); the embedded
	// *dovecot.Server is then nil.
	Other OtherServer
}

// OtherServer is what a World needs of a real server that is not Dovecot
// (internal/cyrus, internal/courier).
type OtherServer interface {
	AddUser(addr, password string) error
	Deliver(user, folder string, msgs []dovecot.Message) error
	Delimiter() string
	Prefix() string
}

// Prefix is the personal namespace's prefix ("INBOX." on Courier).
func (s *Server) Prefix() string {
	if s.Other != nil {
		return s.Other.Prefix()
	}
	return ""
}

// FromDovecot is a World side on a Dovecot a test started itself.
func FromDovecot(s *dovecot.Server) *Server { return &Server{Server: s, IMAPAddr: s.IMAPAddr} }

func memServer(s *MemServer) *Server { return &Server{IMAPAddr: s.Addr, Mem: s} }

// AddUser adds a mailbox.
func (s *Server) AddUser(addr, password string) error {
	if s.Other != nil {
		return s.Other.AddUser(addr, password)
	}
	if s.Mem != nil {
		return s.Mem.AddUser(addr, password)
	}
	return s.Server.AddUser(addr, password)
}

// Deliver puts messages in a folder ("/" between levels) of a mailbox.
func (s *Server) Deliver(user, folder string, msgs []dovecot.Message) error {
	if s.Other != nil {
		return s.Other.Deliver(user, folder, msgs)
	}
	if s.Mem != nil {
		return s.Mem.Deliver(user, folder, msgs)
	}
	return s.Server.Deliver(user, folder, msgs)
}

// Delimiter is the hierarchy separator of the server's namespace.
func (s *Server) Delimiter() string {
	if s.Other != nil {
		return s.Other.Delimiter()
	}
	if s.Mem != nil {
		return "/"
	}
	return s.Server.Delimiter()
}

// Reachable is a server a test reads over IMAP: a World's side or a
// Dovecot started on its own.
type Reachable interface {
	*Server | *dovecot.Server
}

func imapAddr[S Reachable](s S) string {
	switch v := any(s).(type) {
	case *Server:
		return v.IMAPAddr
	case *dovecot.Server:
		return v.IMAPAddr
	}
	panic("unreachable")
}
