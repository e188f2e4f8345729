// Package appendtap is a TCP proxy for tests that watches the IMAP APPENDs
// a client sends through it, without changing a byte: how many the server
// accepted, what each carried, and how many one connection had in flight
// at once (sent in full, not answered yet). A test can then use the real
// sink, pipelining and all, and still count what reached the server.
package appendtap

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Append is one APPEND the server accepted.
type Append struct {
	Flags []string // as sent
	Date  time.Time
	Body  []byte
}

// Tap forwards one listener to one address.
type Tap struct {
	ln       net.Listener
	target   string
	accepted atomic.Int64
	flight   atomic.Int64
	onAccept func(Append)
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

// Start listens on a free loopback port; onAccept (may be nil) runs for
// every APPEND the server answers OK, before the client sees the answer.
func Start(target string, onAccept func(Append)) (*Tap, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &Tap{ln: ln, target: target, onAccept: onAccept}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

// Addr is the address to connect to instead of the target.
func (t *Tap) Addr() string { return t.ln.Addr().String() }

// Accepted is how many APPENDs the server answered OK.
func (t *Tap) Accepted() int64 { return t.accepted.Load() }

// MaxInFlight is the most APPENDs one connection had sent in full and not
// yet seen answered.
func (t *Tap) MaxInFlight() int64 { return t.flight.Load() }

// Close stops listening, closes the connections and waits for them.
func (t *Tap) Close() error {
	err := t.ln.Close()
	t.mu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

func (t *Tap) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		t.mu.Lock()
		if t.conns == nil {
			t.conns = map[net.Conn]bool{}
		}
		t.conns[c] = true
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.serve(c)
			t.mu.Lock()
			delete(t.conns, c)
			t.mu.Unlock()
		}()
	}
}

// conn is what one connection has in flight, by tag.
type conn struct {
	mu      sync.Mutex
	pending map[string]*Append
}

func (t *Tap) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", t.target)
	if err != nil {
		return
	}
	defer server.Close()
	c := &conn{pending: map[string]*Append{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.fromClient(client, server, c)
		server.Close()
	}()
	t.fromServer(server, client, c)
	client.Close()
	<-done
}

var literal = regexp.MustCompile(`\{(\d+)\+?\}\r?\n$`)

// literalLen is the length of the literal a line announces, if any.
func literalLen(line []byte) (int64, bool) {
	m := literal.FindSubmatch(line)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	return n, err == nil
}

// fromClient forwards commands, noting each APPEND once it is sent in full
// (before its last bytes go out, so its answer cannot come first).
func (t *Tap) fromClient(client, server net.Conn, c *conn) {
	br := bufio.NewReaderSize(client, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			server.Write(line)
			return
		}
		f := strings.Fields(string(line))
		var a *Append
		tag := ""
		if len(f) >= 2 && strings.EqualFold(f[1], "APPEND") {
			a, tag = &Append{}, f[0]
		}
		for {
			n, ok := literalLen(line)
			if !ok {
				if a != nil {
					c.mu.Lock()
					c.pending[tag] = a
					for k := int64(len(c.pending)); ; {
						if m := t.flight.Load(); k <= m || t.flight.CompareAndSwap(m, k) {
							break
						}
					}
					c.mu.Unlock()
				}
				if _, err := server.Write(line); err != nil {
					return
				}
				break
			}
			if _, err := server.Write(line); err != nil {
				return
			}
			lit := make([]byte, n)
			if _, err := io.ReadFull(br, lit); err != nil {
				return
			}
			if _, err := server.Write(lit); err != nil {
				return
			}
			if a != nil {
				// The last literal of an APPEND is the message; the text
				// before it holds its flags and date.
				a.Body = lit
				a.Flags, a.Date = flagsAndDate(line)
			}
			if line, err = br.ReadBytes('\n'); err != nil {
				return
			}
		}
	}
}

var (
	flagList = regexp.MustCompile(` \(([^()]*)\)(?: |\{)`)
	quoted   = regexp.MustCompile(`"([^"]*)" \{\d+\+?\}\r?\n$`)
)

// flagsAndDate reads the flag list and date-time of an APPEND from the
// text before its message literal.
func flagsAndDate(head []byte) ([]string, time.Time) {
	var flags []string
	if m := flagList.FindAllSubmatch(head, -1); m != nil {
		flags = strings.Fields(string(m[len(m)-1][1]))
	}
	var date time.Time
	if m := quoted.FindSubmatch(head); m != nil {
		date, _ = time.Parse("_2-Jan-2006 15:04:05 -0700", string(m[1]))
	}
	return flags, date
}

// fromServer forwards responses, counting tagged OKs to APPENDs.
func (t *Tap) fromServer(server, client net.Conn, c *conn) {
	br := bufio.NewReaderSize(server, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			client.Write(line)
			return
		}
		if !bytes.HasPrefix(line, []byte("* ")) && !bytes.HasPrefix(line, []byte("+")) {
			if f := strings.Fields(string(line)); len(f) >= 2 {
				c.mu.Lock()
				a := c.pending[f[0]]
				delete(c.pending, f[0])
				c.mu.Unlock()
				if a != nil && f[1] == "OK" {
					t.accepted.Add(1)
					if t.onAccept != nil {
						t.onAccept(*a)
					}
				}
			}
		}
		for {
			if _, err := client.Write(line); err != nil {
				return
			}
			n, ok := literalLen(line)
			if !ok {
				break
			}
			if _, err := io.CopyN(client, br, n); err != nil {
				return
			}
			if line, err = br.ReadBytes('\n'); err != nil {
				client.Write(line)
				return
			}
		}
	}
}

// Port is the port of Addr.
func (t *Tap) Port() int { return t.ln.Addr().(*net.TCPAddr).Port }
