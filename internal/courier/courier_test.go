package courier

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

// TestUsersNamespaceDeliver: two users log in (LOGIN and AUTHENTICATE
// PLAIN), NAMESPACE answers as Prefix and Delimiter say, and what Deliver and
// CreateFolder put in reads back the same through dovecot.Snapshot.
func TestUsersNamespaceDeliver(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	s := StartT(t)
	t.Logf("started in %v", time.Since(t0).Round(time.Millisecond))
	if s.Prefix() != "INBOX." || s.Delimiter() != "." {
		t.Fatalf("Prefix %q Delimiter %q, want INBOX. and .", s.Prefix(), s.Delimiter())
	}
	const alice, bob = "alice@new.example", "bob.smith@new.example"
	if err := s.AddUser(alice, "pw-"+alice); err != nil {
		t.Fatal(err)
	}
	// A user added while the instance runs (and after a first login).
	filltest.Login(t, s.IMAPAddr, alice, "pw-"+alice).Logout().Wait()
	if err := s.AddUser(bob, "pw-"+bob); err != nil {
		t.Fatal(err)
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
		if len(ns.Personal) != 1 || ns.Personal[0].Prefix != "INBOX." || ns.Personal[0].Delim != '.' {
			t.Fatalf("%s: NAMESPACE personal %+v, want INBOX. and .", u, ns.Personal)
		}
		c.Logout().Wait()
		c = filltest.Dial(t, s.IMAPAddr)
		if err := c.Authenticate(sasl.NewPlainClient("", u, "pw-"+u)); err != nil {
			t.Fatalf("AUTHENTICATE PLAIN %s: %v\n%s", u, err, s.Log())
		}
		c.Logout().Wait()
	}
	if c := filltest.Dial(t, s.IMAPAddr); c.Login(alice, "wrong").Wait() == nil {
		t.Fatal("login with a wrong password succeeded")
	}

	filltest.RoundTrip(t, s, s.IMAPAddr, ".", filltest.User{Name: alice, Password: "pw-" + alice}, filltest.User{Name: bob, Password: "pw-" + bob})
	stopAndCheck(t, s)
}

// stopAndCheck stops s and checks that none of its processes is left.
func stopAndCheck(t *testing.T, s *Server) {
	t.Helper()
	isolate.CheckStop(t, isolated(s), "the shell, authdaemond and couriertcpd", answers)
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
			servers[i], errs[i] = Start()
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

// TestQuirks pins what Courier-IMAP 5 answers where servers differ, as
// tests of the migration engine rely on it.
func TestQuirks(t *testing.T) {
	t.Parallel()
	s := StartT(t)
	if err := s.AddUser("q@x.test", "pw"); err != nil {
		t.Fatal(err)
	}
	c := filltest.Dial(t, s.IMAPAddr)
	pre, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !pre.Has("AUTH=PLAIN") || pre.Has(imap.CapStartTLS) || pre.Has(imap.CapLoginDisabled) {
		t.Errorf("CAPABILITY before login %v: want AUTH=PLAIN, no STARTTLS, no LOGINDISABLED", pre)
	}
	if err := c.Login("q@x.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapUIDPlus, imap.CapNamespace, imap.CapIdle, imap.CapChildren, "QUOTA", "ACL"} {
		if !caps.Has(want) {
			t.Errorf("no %s in CAPABILITY %v", want, caps)
		}
	}
	for _, no := range []imap.Cap{imap.CapLiteralPlus, imap.CapLiteralMinus, imap.CapMove, imap.CapSpecialUse, imap.CapCondStore} {
		if caps.Has(no) {
			t.Errorf("%s in CAPABILITY %v: Courier 5 was seen without it", no, caps)
		}
	}
	create := func(name string) error { return c.Create(name, nil).Wait() }
	// Everything is under INBOX.
	if err := create("Sent"); err == nil || !strings.Contains(err.Error(), "Invalid mailbox name") {
		t.Errorf("CREATE Sent: %v, want Invalid mailbox name", err)
	}
	for _, ok := range []string{"INBOX.a%b", "INBOX.a*b", "INBOX.客户"} {
		if err := create(ok); err != nil {
			t.Errorf("CREATE %s: %v", ok, err)
		}
	}
	d := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	appendMsg := func(body string, flags ...imap.Flag) error {
		cmd := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: flags, Time: d})
		cmd.Write([]byte(body))
		cmd.Close()
		_, err := cmd.Wait()
		return err
	}
	// Courier takes a zero-length message (Cyrus refuses it).
	if err := appendMsg(""); err != nil {
		t.Errorf("zero-length APPEND: %v", err)
	}
	var kw []imap.Flag
	for i := 0; i < 150; i++ {
		kw = append(kw, imap.Flag(fmt.Sprintf("kw%d", i)))
	}
	if err := appendMsg("Subject: kw\r\n\r\nhi\r\n", kw...); err != nil {
		t.Errorf("APPEND with 150 keywords: %v", err)
	}
	c.Logout().Wait()
}

// TestPortRace loses the race for the port once (another process binds it
// between the pick and couriertcpd's bind): Start must retry on a fresh port.
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
	s := StartT(t)
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
	isolate.CheckKilled(t, "BANJIA_COURIER_HELPER", func() (isolate.Instance, error) {
		s, err := Start()
		if err != nil {
			return isolate.Instance{}, err
		}
		return isolated(s), nil
	}, answers)
}
