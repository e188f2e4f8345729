package idproxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/idproxy"
)

// client is a raw IMAP session: the proxy is checked by what goes over the
// wire, not through a client library that might paper over it.
type client struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	seq int
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if g := cl.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return cl
}

func (cl *client) line() string {
	cl.t.Helper()
	l, err := cl.r.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("read: %v (so far %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// do sends one command and returns its untagged lines and tagged reply.
func (cl *client) do(cmd string) (untagged []string, tagged string) {
	cl.t.Helper()
	cl.seq++
	tag := fmt.Sprintf("t%d", cl.seq)
	if _, err := fmt.Fprintf(cl.c, "%s %s\r\n", tag, cmd); err != nil {
		cl.t.Fatal(err)
	}
	for {
		l := cl.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

func start(t *testing.T, opts idproxy.Options) (*idproxy.Proxy, *dovecot.Server) {
	t.Helper()
	s := dovecot.StartT(t, dovecot.Options{})
	if err := s.AddUser("u@x.test", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver("u@x.test", "INBOX", []dovecot.Message{{Body: []byte("Subject: hi\r\n\r\nhello\r\n")}}); err != nil {
		t.Fatal(err)
	}
	p, err := idproxy.Start(s.IMAPAddr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, s
}

func hasCap(lines []string, c string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "* CAPABILITY ") {
			for _, f := range strings.Fields(l)[2:] {
				if strings.EqualFold(f, c) {
					return true
				}
			}
		}
	}
	return false
}

// TestNetEase walks the session NetEase's users report: login and LIST
// work, SELECT and EXAMINE are refused as unsafe, a malformed ID does not
// help, a well-formed one does.
func TestNetEase(t *testing.T) {
	p, _ := start(t, idproxy.Options{})
	cl := dial(t, p.Addr())
	caps, ok := cl.do("CAPABILITY")
	if !strings.HasPrefix(ok, "OK") || !hasCap(caps, "ID") {
		t.Fatalf("capabilities %q %q: want ID", caps, ok)
	}
	if _, ok := cl.do("LOGIN u@x.test pw"); !strings.HasPrefix(ok, "OK") {
		t.Fatalf("login: %q", ok)
	}
	caps, _ = cl.do("CAPABILITY")
	if !hasCap(caps, "ID") {
		t.Fatalf("capabilities after login %q: want ID", caps)
	}
	if list, ok := cl.do(`LIST "" "*"`); !strings.HasPrefix(ok, "OK") || len(list) == 0 {
		t.Fatalf("LIST before ID: %q %q", list, ok)
	}
	for _, cmd := range []string{"SELECT INBOX", "EXAMINE INBOX"} {
		verb, _, _ := strings.Cut(cmd, " ")
		if _, no := cl.do(cmd); no != "NO "+verb+" "+idproxy.UnsafeLogin {
			t.Fatalf("%s before ID: %q", cmd, no)
		}
	}
	// The tagged NO came between the server's responses: the session is
	// still in step.
	if _, ok := cl.do("NOOP"); !strings.HasPrefix(ok, "OK") {
		t.Fatalf("NOOP: %q", ok)
	}
	for _, bad := range []string{`( "name" "x" )`, `("name" "x" )`, `("name")`, `("name" x)`} {
		if _, r := cl.do("ID " + bad); !strings.HasPrefix(r, "BAD") {
			t.Fatalf("ID %s: %q, want BAD", bad, r)
		}
	}
	if _, no := cl.do("EXAMINE INBOX"); !strings.HasPrefix(no, "NO EXAMINE Unsafe Login") {
		t.Fatalf("EXAMINE after malformed IDs: %q", no)
	}
	if untagged, ok := cl.do(`ID ("name" "test" "version" "1" "vendor" NIL)`); !strings.HasPrefix(ok, "OK") || len(untagged) == 0 || !strings.HasPrefix(untagged[0], "* ID ") {
		t.Fatalf("ID: %q %q", untagged, ok)
	}
	untagged, ok := cl.do("EXAMINE INBOX")
	if !strings.HasPrefix(ok, "OK") || !strings.Contains(strings.Join(untagged, "\n"), "1 EXISTS") {
		t.Fatalf("EXAMINE after ID: %q %q", untagged, ok)
	}
	// A literal passes through whole, in both directions.
	if _, err := fmt.Fprintf(cl.c, "f1 FETCH 1 BODY.PEEK[]\r\n"); err != nil {
		t.Fatal(err)
	}
	l := cl.line()
	if !strings.HasSuffix(l, "{22}") {
		t.Fatalf("FETCH: %q", l)
	}
	body := make([]byte, 22)
	if _, err := io.ReadFull(cl.r, body); err != nil || string(body) != "Subject: hi\r\n\r\nhello\r\n" {
		t.Fatalf("body %q %v", body, err)
	}
	if rest := cl.line(); rest != ")" {
		t.Fatalf("after body: %q", rest)
	}
	if l := cl.line(); !strings.HasPrefix(l, "f1 OK") {
		t.Fatalf("FETCH: %q", l)
	}
	if got := len(p.IDs()); got != 5 {
		t.Fatalf("IDs seen: %q", p.IDs())
	}
	if got := len(p.Refused()); got != 3 {
		t.Fatalf("refused: %q", p.Refused())
	}
}

// TestLiteralInRefusedCommand: a refused EXAMINE whose folder name is a
// synchronising literal gets its continuation from the proxy.
func TestLiteralInRefusedCommand(t *testing.T) {
	p, _ := start(t, idproxy.Options{})
	cl := dial(t, p.Addr())
	if _, ok := cl.do("LOGIN u@x.test pw"); !strings.HasPrefix(ok, "OK") {
		t.Fatalf("login: %q", ok)
	}
	fmt.Fprintf(cl.c, "x1 EXAMINE {5}\r\n")
	if l := cl.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("want a continuation, got %q", l)
	}
	fmt.Fprintf(cl.c, "INBOX\r\n")
	if l := cl.line(); l != "x1 NO EXAMINE "+idproxy.UnsafeLogin {
		t.Fatalf("EXAMINE: %q", l)
	}
	if _, ok := cl.do("NOOP"); !strings.HasPrefix(ok, "OK") {
		t.Fatalf("NOOP: %q", ok)
	}
}

func TestOptions(t *testing.T) {
	t.Run("HideID", func(t *testing.T) {
		p, _ := start(t, idproxy.Options{HideID: true})
		cl := dial(t, p.Addr())
		if _, ok := cl.do("LOGIN u@x.test pw"); !strings.HasPrefix(ok, "OK") {
			t.Fatalf("login: %q", ok)
		}
		if caps, _ := cl.do("CAPABILITY"); hasCap(caps, "ID") {
			t.Fatalf("ID advertised: %q", caps)
		}
		if _, no := cl.do("SELECT INBOX"); !strings.Contains(no, "Unsafe Login") {
			t.Fatalf("SELECT: %q", no)
		}
	})
	t.Run("RefuseID", func(t *testing.T) {
		p, _ := start(t, idproxy.Options{RefuseID: true})
		cl := dial(t, p.Addr())
		cl.do("LOGIN u@x.test pw")
		if _, r := cl.do(`ID ("name" "test")`); r != "BAD Parse command error" {
			t.Fatalf("ID: %q", r)
		}
		if _, no := cl.do("SELECT INBOX"); !strings.Contains(no, "Unsafe Login") {
			t.Fatalf("SELECT: %q", no)
		}
	})
	t.Run("BrokenSASLIR", func(t *testing.T) {
		p, _ := start(t, idproxy.Options{BrokenSASLIR: true})
		cl := dial(t, p.Addr())
		if caps, _ := cl.do("CAPABILITY"); !hasCap(caps, "SASL-IR") || !hasCap(caps, "AUTH=PLAIN") {
			t.Fatalf("capabilities %q", caps)
		}
		if _, r := cl.do("AUTHENTICATE PLAIN AHVAeC50ZXN0AHB3"); r != "BAD Request not ending with" {
			t.Fatalf("AUTHENTICATE with an initial response: %q", r)
		}
		if _, ok := cl.do("LOGIN u@x.test pw"); !strings.HasPrefix(ok, "OK") {
			t.Fatalf("LOGIN after it: %q", ok)
		}
	})
}
