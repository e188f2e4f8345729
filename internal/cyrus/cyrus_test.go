package cyrus

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/banjia-mail/banjia/internal/dovecot"
)

func msg(i int, date time.Time, flags ...string) dovecot.Message {
	body := fmt.Sprintf("From: a@x.test\r\nTo: b@y.test\r\nSubject: test %d\r\nDate: %s\r\nMessage-ID: <%d@x.test>\r\n\r\nbody %d\r\nsecond line\r\n",
		i, date.Format(time.RFC1123Z), i, i)
	return dovecot.Message{Body: []byte(body), Flags: flags, Date: date}
}

func compare(t *testing.T, folder string, got []dovecot.SnapMessage, want []dovecot.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%q: %d messages, want %d", folder, len(got), len(want))
	}
	for i, m := range want {
		g := got[i]
		if string(g.Body) != string(m.Body) {
			t.Fatalf("%q message %d: body\n%q\nwant\n%q", folder, i, g.Body, m.Body)
		}
		if !g.Date.Equal(m.Date) {
			t.Fatalf("%q message %d: INTERNALDATE %v, want %v", folder, i, g.Date, m.Date)
		}
		wantFlags := slices.Sorted(slices.Values(m.Flags))
		if !slices.Equal(g.Flags, wantFlags) {
			t.Fatalf("%q message %d: flags %q, want %q", folder, i, g.Flags, wantFlags)
		}
		if i > 0 && g.UID <= got[i-1].UID {
			t.Fatalf("%q: UID %d after %d: not in delivery order", folder, g.UID, got[i-1].UID)
		}
	}
}

func dial(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	return c
}

func login(t *testing.T, addr, user, pw string) *imapclient.Client {
	t.Helper()
	c := dial(t, addr)
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

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
				c := login(t, s.IMAPAddr, u, "pw-"+u)
				ns, err := c.Namespace().Wait()
				if err != nil {
					t.Fatal(err)
				}
				if len(ns.Personal) != 1 || ns.Personal[0].Prefix != wantPrefix || string(ns.Personal[0].Delim) != wantDelim {
					t.Fatalf("%s: NAMESPACE personal %+v, want prefix %q delimiter %q", u, ns.Personal, wantPrefix, wantDelim)
				}
				c.Logout().Wait()
			}
			if c := dial(t, s.IMAPAddr); c.Login(alice, "wrong").Wait() == nil {
				t.Fatal("login with a wrong password succeeded")
			}

			d := time.Date(2017, 3, 4, 5, 6, 7, 0, time.FixedZone("", 8*3600))
			want := map[string][]dovecot.Message{
				"INBOX": {msg(1, d, `\Seen`, "work"), msg(2, d.Add(time.Hour)), msg(3, d.Add(-24*time.Hour), `\Flagged`, `\Seen`)},
				"Archive/2024": {msg(4, d.Add(48*time.Hour), `\Answered`, `\Flagged`, `\Draft`, `\Seen`, "$Forwarded"),
					msg(5, d.AddDate(-1, 0, 0), "$Label1", `\Deleted`)},
				"客户/北京": {msg(6, d.Add(72*time.Hour), "$Forwarded", `\Seen`, "work")},
			}
			for _, f := range []string{"INBOX", "Archive/2024", "客户/北京"} {
				if err := s.Deliver(alice, f, want[f]); err != nil {
					t.Fatal(err)
				}
			}
			// A second delivery to a folder lands after the first, in order.
			more := []dovecot.Message{msg(7, d.AddDate(2, 0, 0), `\Seen`), msg(8, d.AddDate(-3, 0, 0), "$Label1")}
			if err := s.Deliver(alice, "INBOX", more); err != nil {
				t.Fatal(err)
			}
			want["INBOX"] = append(want["INBOX"], more...)
			if err := s.CreateFolder(alice, "Empty"); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateFolder(alice, "Empty"); err != nil {
				t.Fatalf("CreateFolder of an existing folder: %v", err)
			}
			want["Empty"] = nil
			want["Archive"] = nil // a parent Deliver made
			want["客户"] = nil
			bobWant := []dovecot.Message{msg(9, d, `\Seen`)}
			if err := s.Deliver(bob, "INBOX", bobWant); err != nil {
				t.Fatal(err)
			}

			got, delim, err := dovecot.Snapshot(s.IMAPAddr, alice, "pw-"+alice)
			if err != nil {
				t.Fatalf("%v\n%s", err, s.Log())
			}
			if delim != wantDelim {
				t.Fatalf("LIST delimiter %q, want %q", delim, wantDelim)
			}
			var names []string
			for f := range want {
				name, _, err := s.MailboxName(f)
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, name)
				compare(t, f, got[name], want[f])
			}
			if g := slices.Sorted(keys(got)); !slices.Equal(g, slices.Sorted(slices.Values(names))) {
				t.Fatalf("folders %q, want %q", g, slices.Sorted(slices.Values(names)))
			}
			gotBob, _, err := dovecot.Snapshot(s.IMAPAddr, bob, "pw-"+bob)
			if err != nil {
				t.Fatal(err)
			}
			if len(gotBob) != 1 {
				t.Fatalf("bob's folders %q, want INBOX only", slices.Sorted(keys(gotBob)))
			}
			compare(t, "bob INBOX", gotBob["INBOX"], bobWant)

			// The admin may act as a user through SASL PLAIN (authzid).
			c := dial(t, s.IMAPAddr)
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

func keys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// stopAndCheck stops s and checks that none of its processes is left.
func stopAndCheck(t *testing.T, s *Server) {
	t.Helper()
	pids := s.processes()
	if len(pids) < 3 {
		t.Fatalf("instance processes %v: want master and its children", pids)
	}
	t0 := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(t0).Round(time.Millisecond))
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// Stop checked that the namespace is empty; and each process seen
	// before is gone (same pid and start time).
	for _, p := range pids {
		if _, start, ok := procStat(p.pid); ok && start == p.start && !zombie(p.pid) {
			t.Fatalf("process %d left after Stop", p.pid)
		}
	}
	select {
	case <-s.ns.exited:
	default:
		t.Fatalf("unshare %d still running after Stop", s.ns.cmd.Process.Pid)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Fatalf("%s remains after Stop: %v", s.Dir, err)
	}
	if greeting(s.IMAPAddr) == nil {
		t.Fatal("still answering after Stop")
	}
}

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
		login(t, s.IMAPAddr, u, "pw").Logout().Wait()
	}
	// Each instance knows only its own users.
	if err := dial(t, servers[1].IMAPAddr).Login("u0@x.test", "pw").Wait(); err == nil {
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
	c := login(t, s.IMAPAddr, "q@x.test", "pw")
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
	c = login(t, s.IMAPAddr, "bob.smith@x.test", "pw")
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
		return freePort()
	}
	defer func() { pickPort = freePort }()
	s := StartT(t, Options{})
	if calls != 2 {
		t.Fatalf("port picked %d times, want 2 (one lost race, one retry)\n%s", calls, s.Log())
	}
	if err := greeting(s.IMAPAddr); err != nil {
		t.Fatal(err)
	}
}

// TestKilledTestLeavesNothing kills a test binary that runs an instance
// (as a panic or a -timeout would end it, skipping Stop): the instance's
// processes must end with it.
func TestKilledTestLeavesNothing(t *testing.T) {
	if os.Getenv("BANJIA_CYRUS_HELPER") == "1" {
		s, err := Start(Options{})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println(s.ns.pidNS, s.Dir, s.IMAPAddr, s.ns.init.pid)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	t.Parallel()
	Require(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledTestLeavesNothing$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BANJIA_CYRUS_HELPER=1", "BANJIA_KEEP_SERVERS=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %v (%q)", err, line)
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] == "ERROR" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	ns, dir, addr, initPid := f[0], f[1], f[2], f[3]
	defer os.RemoveAll(dir)
	// Hold the namespace open, so that its number is not reused by another
	// instance's while we look for what is left in it.
	ref, err := os.Open("/proc/" + initPid + "/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if got, err := os.Readlink("/proc/" + initPid + "/ns/pid"); err != nil || got != ns {
		t.Fatalf("process %s is in %q (%v), not the helper's %s", initPid, got, err, ns)
	}
	if len(processesIn(ns)) == 0 {
		t.Fatalf("no processes in the helper's namespace %s", ns)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for len(processesIn(ns)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of the killed test's instance are left", processesIn(ns))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if greeting(addr) == nil {
		t.Fatalf("%s still answers", addr)
	}
}
