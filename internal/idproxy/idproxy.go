// Package idproxy is a loopback proxy in front of a real IMAP server (a test
// Dovecot) that behaves as NetEase's Coremail servers (163, 126, yeah.net,
// 网易企业邮) do towards clients that do not identify themselves: LOGIN and
// LIST work, but SELECT and EXAMINE are answered
//
//	tag NO SELECT Unsafe Login. Please contact kefu@188.com for help
//
// until the client has sent an IMAP ID command (RFC 2971). Like Coremail it
// is strict about that command's syntax: a list with a space after "(" or
// before ")" is answered "BAD Parse command error" and does not count.
// Options add Coremail's other quirks and the ways a test needs to make the
// server look otherwise.
//
// The proxy parses both directions into commands and responses (lines and
// the literals they announce), so what it answers itself never lands in the
// middle of the server's responses. It does not speak TLS: clients use
// plain IMAP to it, and STARTTLS and COMPRESS are taken out of the
// capabilities.
package idproxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// UnsafeLogin is the text NetEase answers SELECT and EXAMINE with (after the
// command's name) until the client identified itself.
const UnsafeLogin = "Unsafe Login. Please contact kefu@188.com for help"

// Options shape the server the proxy pretends to be.
type Options struct {
	// HideID takes ID out of the capabilities, as a server that does not
	// offer the command; SELECT and EXAMINE are still refused without it.
	HideID bool
	// RefuseID answers every ID command "BAD Parse command error", as
	// Coremail answers one it cannot parse; the client stays unidentified.
	RefuseID bool
	// BrokenSASLIR answers AUTHENTICATE PLAIN with an initial response
	// "BAD Request not ending with", as Coremail does although it
	// advertises SASL-IR (the upstream Dovecot advertises SASL-IR and
	// AUTH=PLAIN too).
	BrokenSASLIR bool
}

// Proxy accepts on Addr and forwards each connection to the upstream server.
type Proxy struct {
	ln       net.Listener
	upstream string
	opts     Options

	mu      sync.Mutex
	conns   map[net.Conn]bool
	closed  bool
	ids     []string
	refused []string
	wg      sync.WaitGroup
}

// Start listens on a free loopback port.
func Start(upstream string, opts Options) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, opts: opts, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect (127.0.0.1:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// IDs are the ID commands clients sent, as they sent them (without the
// tag), refused ones included.
func (p *Proxy) IDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ids...)
}

// Refused are the SELECT and EXAMINE commands answered "Unsafe Login".
func (p *Proxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// Close stops accepting, drops every connection and waits for them.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
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
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c, up)
	}
}

// session is one client connection and its upstream connection.
type session struct {
	p          *Proxy
	client, up net.Conn
	// wmu serialises writes to the client: the server's responses, each
	// line with its literals, and what the proxy answers itself.
	wmu        sync.Mutex
	identified bool // only the client-reading goroutine uses it
}

func (p *Proxy) serve(c, up net.Conn) {
	defer p.wg.Done()
	s := &session{p: p, client: c, up: up}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.responses()
		c.Close()
	}()
	s.commands()
	up.Close()
	<-done
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// literalAt is a line's announced literal: "{N}", "{N+}" (LITERAL+ and
// LITERAL-) or "~{N}" (BINARY) before the line end.
var literalAt = regexp.MustCompile(`\{(\d+)(\+?)\}\r?\n$`)

func literal(line []byte) (n int64, synchronizing bool, ok bool) {
	m := literalAt.FindSubmatch(line)
	if m == nil {
		return 0, false, false
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	if err != nil {
		return 0, false, false
	}
	return n, len(m[2]) == 0, true
}

// reply writes a whole line to the client between the server's responses.
func (s *session) reply(line string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := io.WriteString(s.client, line+"\r\n")
	return err
}

// commands reads the client's commands and forwards them, except those the
// proxy answers itself.
func (s *session) commands() {
	r := bufio.NewReaderSize(s.client, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		tag, verb, args := split(line)
		answer := s.decide(verb, args)
		// The command's literals: forwarded to the server, or read and
		// dropped (with the continuation the client waits for) when the
		// proxy answers the command itself.
		for {
			if answer == "" {
				if _, err := s.up.Write(line); err != nil {
					return
				}
			}
			n, synchronizing, ok := literal(line)
			if !ok {
				break
			}
			if answer != "" && synchronizing {
				if s.reply("+ Ready for literal data") != nil {
					return
				}
			}
			dst := s.up
			if answer != "" {
				dst = nil
			}
			if err := copyN(dst, r, n); err != nil {
				return
			}
			if line, err = r.ReadBytes('\n'); err != nil {
				return
			}
		}
		if answer != "" {
			if s.reply(tag+" "+answer) != nil {
				return
			}
		}
	}
}

func copyN(dst io.Writer, r io.Reader, n int64) error {
	if dst == nil {
		dst = io.Discard
	}
	_, err := io.CopyN(dst, r, n)
	return err
}

// decide says what the proxy answers to a command itself ("" forwards it),
// and notes a client that identified itself.
func (s *session) decide(verb, args string) string {
	o := s.p.opts
	switch verb {
	case "ID":
		s.p.mu.Lock()
		s.p.ids = append(s.p.ids, "ID "+args)
		s.p.mu.Unlock()
		if o.RefuseID || !validID(args) {
			return "BAD Parse command error"
		}
		// The server carries out commands in order, so whatever the
		// client sends after ID finds it identified.
		s.identified = true
	case "SELECT", "EXAMINE":
		if !s.identified {
			s.p.mu.Lock()
			s.p.refused = append(s.p.refused, verb+" "+args)
			s.p.mu.Unlock()
			return "NO " + verb + " " + UnsafeLogin
		}
	case "AUTHENTICATE":
		mech, ir, _ := strings.Cut(args, " ")
		if o.BrokenSASLIR && strings.EqualFold(mech, "PLAIN") && ir != "" {
			return "BAD Request not ending with"
		}
	case "STARTTLS", "COMPRESS":
		return "BAD " + verb + " is not offered through this proxy"
	}
	return ""
}

// split reads a command line's tag, verb (upper case) and arguments (the
// rest of the first line, without its line end).
func split(line []byte) (tag, verb, args string) {
	text := strings.TrimRight(string(line), "\r\n")
	tag, rest, _ := strings.Cut(text, " ")
	verb, args, _ = strings.Cut(rest, " ")
	return tag, strings.ToUpper(verb), args
}

// idArgs is RFC 2971's id_params_list as Coremail parses it: NIL, or a
// parenthesised list of quoted field-value pairs with single spaces and no
// space inside the parentheses.
var idArgs = regexp.MustCompile(`^(?i:NIL)$|^\((?:` + quoted + ` (?:` + quoted + `|(?i:NIL))(?: ` + quoted + ` (?:` + quoted + `|(?i:NIL)))*)?\)$`)

const quoted = `"(?:[^"\\\r\n]|\\["\\])*"`

func validID(args string) bool { return idArgs.MatchString(args) }

// responses forwards the server's responses, each line with its literals,
// and rewrites the capabilities the client sees.
func (s *session) responses() {
	r := bufio.NewReaderSize(s.up, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		line = s.rewriteCaps(line)
		s.wmu.Lock()
		err = s.forward(line, r)
		s.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// forward writes one response line and, while it announces literals, the
// literals and the lines that continue it.
func (s *session) forward(line []byte, r *bufio.Reader) error {
	for {
		if _, err := s.client.Write(line); err != nil {
			return err
		}
		n, _, ok := literal(line)
		if !ok {
			return nil
		}
		if _, err := io.CopyN(s.client, r, n); err != nil {
			return err
		}
		var err error
		if line, err = r.ReadBytes('\n'); err != nil {
			return err
		}
	}
}

var capsAt = regexp.MustCompile(`(?i)^\* CAPABILITY |\[CAPABILITY `)

// rewriteCaps edits a CAPABILITY response or response code: ID advertised
// (or hidden) and what the proxy cannot pass on (STARTTLS, COMPRESS) taken
// out. Dovecot lists AUTH=PLAIN and SASL-IR before login already, as
// Coremail does.
func (s *session) rewriteCaps(line []byte) []byte {
	loc := capsAt.FindIndex(line)
	if loc == nil {
		return line
	}
	start := loc[1]
	end := bytes.IndexByte(line[start:], ']')
	if line[0] == '*' && loc[0] == 0 {
		end = len(bytes.TrimRight(line[start:], "\r\n"))
	}
	if end < 0 {
		return line
	}
	var caps []string
	have := map[string]bool{}
	for _, c := range strings.Fields(string(line[start : start+end])) {
		u := strings.ToUpper(c)
		if u == "STARTTLS" || strings.HasPrefix(u, "COMPRESS=") || (u == "ID" && s.p.opts.HideID) || have[u] {
			continue
		}
		have[u] = true
		caps = append(caps, c)
	}
	if !s.p.opts.HideID && !have["ID"] {
		caps = append(caps, "ID")
	}
	var b bytes.Buffer
	b.Write(line[:start])
	b.WriteString(strings.Join(caps, " "))
	b.Write(line[start+end:])
	return b.Bytes()
}
