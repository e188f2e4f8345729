package exchange_test

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/banjia-mail/banjia/sources/sourcetest"
)

// exchangeOnline is an IMAP peer that answers as Exchange Online does for
// app-only access, with the replies its documentation and support threads
// show: only XOAUTH2 (LOGIN is refused), "AUTHENTICATE failed." for a bad
// token, "User is authenticated but not connected." on the first command
// for a mailbox the app has no FullAccess on, and "Request is throttled.
// Suggested Backoff Time: N milliseconds". Dovecot cannot be made to say
// these, so the mailbox behind it is go-imap's in-memory server.
type exchangeOnline struct {
	srv   *imapserver.Server
	Addr  string
	valid func(token string) bool

	mu       sync.Mutex
	users    map[string]*imapmemserver.User
	access   map[string]bool // FullAccess granted to the app
	throttle map[string]int  // commands still to throttle per member
	logins   map[string]int
	byes     int // sessions ended for an expired token
	// fetchDelay slows each FETCH, as a remote server is slow, so that a
	// session outlives a short-lived token however fast the machine.
	fetchDelay time.Duration
}

func newExchangeOnline(t *testing.T, valid func(string) bool) *exchangeOnline {
	x := &exchangeOnline{valid: valid, users: map[string]*imapmemserver.User{}, access: map[string]bool{},
		throttle: map[string]int{}, logins: map[string]int{}}
	x.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &exSession{x: x, conn: c}, nil, nil
		},
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapLiteralPlus: {},
			imap.CapListStatus: {}, imap.CapNamespace: {}, imap.CapSpecialUse: {}, "AUTH=XOAUTH2": {}},
		InsecureAuth: true, // loopback only
		Logger:       quiet{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x.Addr = ln.Addr().String()
	go x.srv.Serve(ln)
	t.Cleanup(func() { x.srv.Close() })
	return x
}

// addMailbox creates member's mailbox from a fixture; access says whether
// the app was granted FullAccess on it.
func (x *exchangeOnline) addMailbox(t *testing.T, member string, access bool, fx sourcetest.Fixture, order []string) {
	u := imapmemserver.NewUser(member, "")
	for _, name := range order {
		if !strings.EqualFold(name, "INBOX") {
			parts := strings.Split(name, "/")
			for i := 1; i <= len(parts); i++ {
				u.Create(strings.Join(parts[:i], "/"), nil)
			}
		} else {
			u.Create("INBOX", nil)
		}
		for _, m := range fx.Folders[name] {
			opts := &imap.AppendOptions{Time: m.Date}
			for _, f := range m.Flags {
				opts.Flags = append(opts.Flags, imap.Flag(f))
			}
			if _, err := u.Append(name, literal{bytes.NewReader(m.Body)}, opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	x.mu.Lock()
	x.users[strings.ToLower(member)] = u
	x.access[strings.ToLower(member)] = access
	x.mu.Unlock()
}

func (x *exchangeOnline) setThrottle(member string, n int) {
	x.mu.Lock()
	x.throttle[strings.ToLower(member)] = n
	x.mu.Unlock()
}

func (x *exchangeOnline) loginCount(member string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.logins[strings.ToLower(member)]
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

type exSession struct {
	imapserver.SessionIMAP4rev2 // the member's mailbox, once authenticated
	x                           *exchangeOnline
	conn                        *imapserver.Conn
	member                      string
	token                       string
	denied                      bool
}

func (s *exSession) Close() error {
	if s.SessionIMAP4rev2 != nil {
		return s.SessionIMAP4rev2.Close()
	}
	return nil
}

func (s *exSession) Login(string, string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "LOGIN failed."}
}

func (s *exSession) AuthenticateMechanisms() []string { return []string{"XOAUTH2"} }

func (s *exSession) Authenticate(mech string) (sasl.Server, error) {
	if mech != "XOAUTH2" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "AUTHENTICATE failed."}
	}
	return xoauth2Server(func(user, token string) error {
		s.x.mu.Lock()
		defer s.x.mu.Unlock()
		u, ok := s.x.users[strings.ToLower(user)]
		if !ok || !s.x.valid(token) {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "AUTHENTICATE failed."}
		}
		s.x.logins[strings.ToLower(user)]++
		s.member, s.denied, s.token = strings.ToLower(user), !s.x.access[strings.ToLower(user)], token
		s.SessionIMAP4rev2 = imapmemserver.NewUserSession(u)
		return nil
	}), nil
}

// gate answers the first command of a session as Exchange would.
func (s *exSession) gate() error {
	if s.denied {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "User is authenticated but not connected."}
	}
	s.x.mu.Lock()
	defer s.x.mu.Unlock()
	if s.x.throttle[s.member] > 0 {
		s.x.throttle[s.member]--
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Request is throttled. Suggested Backoff Time: 120 milliseconds"}
	}
	return nil
}

func (s *exSession) List(w *imapserver.ListWriter, ref string, patterns []string, o *imap.ListOptions) error {
	if err := s.gate(); err != nil {
		return err
	}
	return s.SessionIMAP4rev2.List(w, ref, patterns, o)
}

func (s *exSession) Select(name string, o *imap.SelectOptions) (*imap.SelectData, error) {
	if err := s.gate(); err != nil {
		return nil, err
	}
	return s.SessionIMAP4rev2.Select(name, o)
}

// Fetch ends the session as Exchange Online does once the token it began
// with has expired: "* BYE ... AccessTokenExpired", then the connection closes.
func (s *exSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, o *imap.FetchOptions) error {
	time.Sleep(s.x.fetchDelay)
	if s.token != "" && !s.x.valid(s.token) {
		s.x.mu.Lock()
		s.x.byes++
		s.x.mu.Unlock()
		s.conn.Bye("Session invalidated - AccessTokenExpired")
		return &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Session invalidated - AccessTokenExpired"}
	}
	return s.SessionIMAP4rev2.Fetch(w, numSet, o)
}

func (s *exSession) Namespace() (*imap.NamespaceData, error) {
	if err := s.gate(); err != nil {
		return nil, err
	}
	return s.SessionIMAP4rev2.Namespace()
}

// xoauth2Server parses "user=U ^A auth=Bearer T ^A ^A".
type xoauth2Server func(user, token string) error

func (f xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, token string
	for _, kv := range strings.Split(string(resp), "\x01") {
		switch {
		case strings.HasPrefix(kv, "user="):
			user = kv[len("user="):]
		case strings.HasPrefix(kv, "auth=Bearer "):
			token = kv[len("auth=Bearer "):]
		}
	}
	if err := f(user, token); err != nil {
		return nil, true, err
	}
	return nil, true, nil
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
