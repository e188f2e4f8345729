package cyrus

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/banjia-mail/banjia/internal/imapfill/filltest"
	"github.com/banjia-mail/banjia/internal/instance"
	"github.com/banjia-mail/banjia/internal/isolate"
)

// TestNamespacesUsersDeliver runs each namespace setting: two users log in,
// NAMESPACE answers as Prefix and Delimiter say, and what Deliver and
// CreateFolder put in reads back the same through dovecot.Snapshot.
func TestNamespacesUsersDeliver(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{{}, {AltNamespace: true}, {UnixHierarchySep: true}, {AltNamespace: true, UnixHierarchySep: true}} {
		t.Run(fmt.Sprintf("alt=%v,unixsep=%v", o.AltNamespace, o.UnixHierarchySep), func(t *testing.T) {
			t.Parallel()
			t0 := time.Now()
			s := StartT(t, o)
			t.Logf("started in %v", time.Since(t0).Round(time.Millisecond))
			wantPrefix, wantDelim := "INBOX.", "."
			if o.UnixHierarchySep {
				wantPrefix, wantDelim = "INBOX/", "/"
			}
			if o.AltNamespace {
				wantPrefix = ""
			}
			if s.Prefix() != wantPrefix || s.Delimiter() != wantDelim {
				t.Fatalf("Prefix %q Delimiter %q, want %q %q", s.Prefix(), s.Delimiter(), wantPrefix, wantDelim)
			}
			// A dotted login (bob.smith) only with "/": with "." Cyrus 3.6
			// lists nothing for it (see TestQuirks).
			const alice = "alice@new.example"
			bob := "bob@new.example"
			if o.UnixHierarchySep {
				bob = "bob.smith@new.example"
			}
			for _, u := range []string{alice, bob} {
				if err := s.AddUser(u, "pw-"+u); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.AddUser(alice, "again"); err == nil {
				t.Error("AddUser of an existing user: no error")
			}
			for _, u := range []string{alice, bob} {
				c := filltest.Login(t, s.IMAPAddr, u, "pw-"+u)
				ns, err := c.Namespace().Wait()
				if err != nil {
					t.Fatal(err)
				}
				if len(ns.Personal) != 1 || ns.Personal[0].Prefix != wantPrefix || string(ns.Personal[0].Delim) != wantDelim {
					t.Fatalf("%s: NAMESPACE personal %+v, want prefix %q delimiter %q", u, ns.Personal, wantPrefix, wantDelim)
				}
				c.Logout().Wait()
			}
			if c := filltest.Dial(t, s.IMAPAddr); c.Login(alice, "wrong").Wait() == nil {
				t.Fatal("login with a wrong password succeeded")
			}

			filltest.RoundTrip(t, s, s.IMAPAddr, wantDelim, filltest.User{Name: alice, Password: "pw-" + alice}, filltest.User{Name: bob, Password: "pw-" + bob})

			// The admin may act as a user through SASL PLAIN (authzid), and
			// sees the five messages RoundTrip left in alice's INBOX.
			c := filltest.Dial(t, s.IMAPAddr)
			if err := c.Authenticate(sasl.NewPlainClient(alice, s.AdminUser, s.AdminPassword)); err != nil {
				t.Fatalf("admin authorizing as %s: %v", alice, err)
			}
			if st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *st.NumMessages != 5 {
				t.Fatalf("STATUS INBOX as admin-for-alice: %v %v", st, err)
			}
			c.Logout().Wait()

			stopAndCheck(t, s)
		})
	}
}

// stopAndCheck stops s and checks that none of its processes is left.
func stopAndCheck(t *testing.T, s *Server) {
	t.Helper()
	isolate.CheckStop(t, isolated(s), "master and its children", answers)
}

func isolated(s *Server) isolate.Instance {
	return isolate.Instance{NS: s.ns, Dir: s.Dir, Addr: s.IMAPAddr, Stop: s.Stop}
}

func answers(addr string) bool { return instance.Greeting(addr) == nil }

// TestTwoAtOnce runs two instances side by side and stops them.
func TestTwoAtOnce(t *testing.T) {
	t.Parallel()
	Require(t)
	var wg sync.WaitGroup
	servers := make([]*Server, 2)
	errs := make([]error, 2)
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = Start(Options{})
		}()
	}
	wg.Wait()
	for i, s := range servers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { s.Stop() })
	}
	if servers[0].IMAPAddr == servers[1].IMAPAddr || servers[0].Dir == servers[1].Dir {
		t.Fatalf("two instances share %s / %s", servers[0].IMAPAddr, servers[0].Dir)
	}
	for i, s := range servers {
		u := fmt.Sprintf("u%d@x.test", i)
		if err := s.AddUser(u, "pw"); err != nil {
			t.Fatal(err)
		}
		filltest.Login(t, s.IMAPAddr, u, "pw").Logout().Wait()
	}
	// Each instance knows only its own users.
	if err := filltest.Dial(t, servers[1].IMAPAddr).Login("u0@x.test", "pw").Wait(); err == nil {
		t.Fatal("u0@x.test logged in on the other instance")
	}
	for _, s := range servers {
		stopAndCheck(t, s)
	}
}

// TestQuirks pins what Cyrus 3.6 answers where servers differ, as tests of
// the migration engine rely on it.
func TestQuirks(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{})
	if err := s.AddUser("q@x.test", "pw"); err != nil {
		t.Fatal(err)
	}
	c := filltest.Login(t, s.IMAPAddr, "q@x.test", "pw")
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapLiteralPlus, imap.CapUIDPlus, imap.CapNamespace, imap.CapIdle, "MOVE", "CONDSTORE", "SPECIAL-USE"} {
		if !caps.Has(want) {
			t.Errorf("no %s in CAPABILITY", want)
		}
	}
	create := func(name string) error { return c.Create(name, nil).Wait() }
	// A top-level name is outside the personal namespace "INBOX.".
	if err := create("Sent"); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("CREATE Sent: %v, want Permission denied", err)
	}
	if err := create("INBOX.a%b"); err == nil || !strings.Contains(err.Error(), "Invalid mailbox name") {
		t.Errorf("CREATE INBOX.a%%b: %v, want Invalid mailbox name", err)
	}
	if err := create("INBOX.a*b"); err != nil {
		t.Errorf("CREATE INBOX.a*b: %v", err)
	}
	if err := create("INBOX.客户"); err != nil {
		t.Errorf("CREATE INBOX.客户: %v", err)
	}
	d := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	appendMsg := func(body string, flags ...imap.Flag) error {
		cmd := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: flags, Time: d})
		cmd.Write([]byte(body))
		cmd.Close()
		_, err := cmd.Wait()
		return err
	}
	if err := appendMsg(""); err == nil || !strings.Contains(err.Error(), "Zero-length message literal") {
		t.Errorf("zero-length APPEND: %v", err)
	}
	if err := appendMsg("Subject: ok\r\n\r\nhi\r\n", `\Seen`); err != nil {
		t.Errorf("APPEND: %v", err)
	}
	var kw []imap.Flag
	for i := 0; i < 100; i++ {
		kw = append(kw, imap.Flag(fmt.Sprintf("kw%d", i)))
	}
	if err := appendMsg("Subject: kw\r\n\r\nhi\r\n", kw...); err != nil {
		t.Errorf("APPEND with 100 keywords: %v", err)
	}
	if err := appendMsg("Subject: kw\r\n\r\nhi\r\n", "one-more"); err == nil || !strings.Contains(err.Error(), "Too many user flags in mailbox") {
		t.Errorf("APPEND of a 101st keyword: %v", err)
	}
	c.Logout().Wait()

	// Cyrus 3.6 with "." between levels lists nothing at all for a login
	// with a dot (its INBOX is user.bob^smith@x.test), though it can
	// SELECT INBOX.
	if err := s.AddUser("bob.smith@x.test", "pw"); err != nil {
		t.Fatal(err)
	}
	c = filltest.Login(t, s.IMAPAddr, "bob.smith@x.test", "pw")
	if l, err := c.List("", "*", nil).Collect(); err != nil || len(l) != 0 {
		t.Errorf("LIST for a dotted login: %v %v; Cyrus 3.6 was seen to list nothing", l, err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Errorf("SELECT INBOX for a dotted login: %v", err)
	}
	c.Logout().Wait()
}

// TestPortRace loses the race for the port once (another process binds it
// between the pick and master's bind): Start must retry on a fresh port.
func TestPortRace(t *testing.T) {
	Require(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return taken.Addr().(*net.TCPAddr).Port, nil
		}
		return instance.FreePort()
	}
	defer func() { pickPort = instance.FreePort }()
	s := StartT(t, Options{})
	if calls != 2 {
		t.Fatalf("port picked %d times, want 2 (one lost race, one retry)\n%s", calls, s.Log())
	}
	if err := instance.Greeting(s.IMAPAddr); err != nil {
		t.Fatal(err)
	}
}

// TestKilledTestLeavesNothing kills a test binary that runs an instance
// (as a panic or a -timeout would end it, skipping Stop): the instance's
// processes must end with it.
func TestKilledTestLeavesNothing(t *testing.T) {
	t.Parallel()
	Require(t)
	isolate.CheckKilled(t, "BANJIA_CYRUS_HELPER", func() (isolate.Instance, error) {
		s, err := Start(Options{})
		if err != nil {
			return isolate.Instance{}, err
		}
		return isolated(s), nil
	}, answers)
}
