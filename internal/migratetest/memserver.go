package migratetest

import (
	"bytes"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/banjia-mail/banjia/internal/dovecot"
)

// MemServer is go-imap's in-memory IMAP server on a loopback TCP listener,
// so that banjia's real IMAP source and sink talk to it over the wire. It
// starts in a millisecond where a Dovecot takes a second, which is what
// lets the engine's logic tests run in moments.
//
// What it is not: it keeps no special-use attributes (every folder is found
// by its name, as on Courier), it has no POP3, no master users, no quotas,
// no fault controls (Kick, KillSessions), and it stores every flag in lower
// case (go-imap's client gives the system flags and the registered $
// keywords their usual spelling back; other keywords come back lower case).
//
// One thing it gets wrong is put right here (memSession): its
// PERMANENTFLAGS list only the flags some message of the folder has, so
// \Answered on the first answered message would look refused and be
// dropped.
type MemServer struct {
	Addr string

	srv *imapserver.Server

	mu    sync.Mutex
	users map[string]*imapmemserver.User
}

// MemCaps are the extensions the in-memory server announces: those
// imapmemserver really implements. Left out on purpose: SPECIAL-USE and
// CREATE-SPECIAL-USE (it cannot store the attributes), ID (go-imap's server
// has no ID command), STATUS=SIZE, ESEARCH, SEARCHRES and BINARY, which
// banjia does not use.
var MemCaps = []imap.Cap{
	imap.CapIMAP4rev1,
	imap.CapNamespace,
	imap.CapUIDPlus,
	imap.CapListExtended,
	imap.CapListStatus,
	imap.CapLiteralPlus,
	imap.CapMove,
	imap.CapChildren,
}

// StartMem starts an in-memory server that announces caps (nil: MemCaps)
// and stops it when the test ends.
func StartMem(t testing.TB, caps []imap.Cap) *MemServer {
	t.Helper()
	if caps == nil {
		caps = MemCaps
	}
	set := imap.CapSet{}
	for _, c := range caps {
		set[c] = struct{}{}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &MemServer{Addr: ln.Addr().String(), users: map[string]*imapmemserver.User{}}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &memSession{server: s}, nil, nil
		},
		Caps: set,
		// Plain IMAP on loopback, like the private Dovecots.
		InsecureAuth: true,
		// Connections the engine drops on purpose (a lane ending, a test
		// stopping a job) are no news worth printing.
		Logger: log.New(discard{}, "", 0),
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-done
	})
	return s
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// AddUser adds a mailbox with an empty INBOX.
func (s *MemServer) AddUser(addr, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[addr]; ok {
		return fmt.Errorf("memserver: user %s exists", addr)
	}
	u := imapmemserver.NewUser(addr, password)
	if err := u.Create("INBOX", nil); err != nil {
		return err
	}
	s.users[addr] = u
	return nil
}

// memSession is imapmemserver's session with its own login (against
// AddUser's mailboxes) and the PERMANENTFLAGS a real server announces.
// Before login the embedded session is nil, as in imapmemserver's own.
type memSession struct {
	*imapmemserver.UserSession
	server *MemServer
}

func (s *memSession) Login(user, password string) error {
	s.server.mu.Lock()
	u := s.server.users[user]
	s.server.mu.Unlock()
	if u == nil {
		return imapserver.ErrAuthFailed
	}
	if err := u.Login(user, password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(u)
	return nil
}

// systemFlags are the flags every folder keeps, whatever its messages have.
var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

func (s *memSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := s.UserSession.Select(name, options)
	if err != nil {
		return nil, err
	}
	have := map[imap.Flag]bool{}
	for _, f := range data.PermanentFlags {
		have[imap.Flag(strings.ToLower(string(f)))] = true
	}
	for _, f := range systemFlags {
		if !have[imap.Flag(strings.ToLower(string(f)))] {
			data.PermanentFlags = append(data.PermanentFlags, f)
		}
	}
	return data, nil
}

// Deliver appends msgs to folder ("/" between levels, as on the server),
// creating it and its parents when missing, with their flags and dates.
func (s *MemServer) Deliver(user, folder string, msgs []dovecot.Message) error {
	s.mu.Lock()
	u := s.users[user]
	s.mu.Unlock()
	if u == nil {
		return fmt.Errorf("memserver: no user %s", user)
	}
	if strings.EqualFold(folder, "INBOX") {
		folder = "INBOX"
	}
	parts := strings.Split(folder, "/")
	for i := 1; i <= len(parts); i++ {
		if err := createMissing(u, strings.Join(parts[:i], "/")); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		o := &imap.AppendOptions{Time: m.Date}
		if o.Time.IsZero() {
			o.Time = time.Now()
		}
		for _, f := range m.Flags {
			o.Flags = append(o.Flags, imap.Flag(f))
		}
		if _, err := u.Append(folder, literal{bytes.NewReader(m.Body)}, o); err != nil {
			return fmt.Errorf("memserver: deliver to %s %q: %w", user, folder, err)
		}
	}
	return nil
}

func createMissing(u *imapmemserver.User, name string) error {
	err := u.Create(name, nil)
	if ie, ok := err.(*imap.Error); ok && ie.Code == imap.ResponseCodeAlreadyExists {
		return nil
	}
	return err
}

// literal is a message body as imapmemserver takes it.
type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }
