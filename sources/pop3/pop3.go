// Package pop3 is the POP3 source: the single maildrop becomes INBOX, UIDL is
// the checkpoint key, and the mailbox is never changed (no DELE, and no QUIT,
// so a server can never enter its UPDATE state on our account).
//
// It sits on github.com/knadh/go-pop3 and fills that library's gaps itself:
// TLS and STLS are done in our own Dialer (so certificates are verified with
// our roots), every read and write has a deadline, and only RetrRaw is used
// (Retr decodes and alters the message).
package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	netmail "net/mail"
	"strings"
	"time"

	gopop3 "github.com/knadh/go-pop3"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/mail/imapconn"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/wording"
)

func init() {
	sources.Register(func(ctx context.Context, e mail.Endpoint) (sources.Source, error) {
		return Open(ctx, e)
	}, "pop3", "pop3s", "pop3+plain")
}

// MaxMessageSize caps what one RETR may hold in memory; larger messages
// fail alone with a reason.
var MaxMessageSize int64 = 64 << 20

// IOTimeout bounds every read and write.
var IOTimeout = 2 * time.Minute

// Source is one POP3 session.
type Source struct {
	e      mail.Endpoint
	conn   *gopop3.Conn
	raw    net.Conn
	noUIDL bool
	noTop  bool
}

var _ sources.Source = (*Source)(nil)

// deadlineConn gives every read and write its own deadline: go-pop3 sets none.
type deadlineConn struct {
	net.Conn
	r io.Reader
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(IOTimeout))
	return c.r.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(IOTimeout))
	return c.Conn.Write(b)
}

// dialer secures the connection as the scheme says before go-pop3 sees it.
type dialer struct {
	ctx context.Context
	e   mail.Endpoint
	raw net.Conn
}

func (d *dialer) Dial(network, addr string) (net.Conn, error) {
	cctx, ccancel := context.WithTimeout(d.ctx, imapconn.ConnectTimeout)
	raw, err := imapconn.Dialer().DialContext(cctx, network, addr)
	ccancel()
	if err != nil {
		return nil, imapconn.DialError(d.e, err)
	}
	dctx, cancel := context.WithTimeout(d.ctx, imapconn.LoginTimeout)
	defer cancel()
	d.raw = raw
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	defer stop()
	cfg, err := d.e.TLSConfig()
	if err != nil {
		raw.Close()
		return nil, fault.New(fault.Account, "bad CA certificate", err)
	}
	switch d.e.Scheme {
	case "pop3s":
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, imapconn.TLSError(d.e, err, "use pop3:// (STLS) or the TLS port 995")
		}
		return &deadlineConn{Conn: tc, r: tc}, nil
	case "pop3":
		// STLS (RFC 2595): read the greeting, upgrade, then hand go-pop3 a
		// greeting of our own, since it reads one as soon as it connects.
		br := bufio.NewReader(raw)
		raw.SetDeadline(time.Now().Add(imapconn.LoginTimeout))
		greet, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(greet, "+OK") {
			raw.Close()
			return nil, fault.Coded(fault.Retry, wording.New("greeting.none", "addr", d.e.Addr(), "proto", "POP3"), err)
		}
		if _, err := raw.Write([]byte("STLS\r\n")); err != nil {
			raw.Close()
			return nil, fault.New(fault.Retry, "STLS", err)
		}
		resp, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(resp, "+OK") {
			raw.Close()
			return nil, fault.Coded(fault.Account, wording.New("tls.nostarttls", "addr", d.e.Addr(), "advice", "use pop3s:// (port 995) or, only on a trusted network, pop3+plain://"), err)
		}
		raw.SetDeadline(time.Time{})
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, imapconn.TLSError(d.e, err, "use pop3:// (STLS) or the TLS port 995")
		}
		return &deadlineConn{Conn: tc, r: io.MultiReader(strings.NewReader("+OK after STLS\r\n"), tc)}, nil
	case "pop3+plain":
		return &deadlineConn{Conn: raw, r: raw}, nil
	}
	raw.Close()
	return nil, fault.New(fault.Account, fmt.Sprintf("scheme %q is not POP3", d.e.Scheme), nil)
}

// Open connects and logs in with USER/PASS.
func Open(ctx context.Context, e mail.Endpoint) (*Source, error) {
	d := &dialer{ctx: ctx, e: e}
	c := gopop3.New(gopop3.Opt{Host: e.Host, Port: e.Port, Dialer: d, DialTimeout: imapconn.ConnectTimeout})
	conn, err := c.NewConn()
	if err != nil {
		if d.raw != nil {
			d.raw.Close()
		}
		var fe *fault.Error
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, fault.Coded(fault.Retry, wording.New("greeting.none", "addr", e.Addr(), "proto", "POP3"), err)
	}
	s := &Source{e: e, conn: conn, raw: d.raw}
	stop := context.AfterFunc(ctx, func() { d.raw.Close() })
	defer stop()
	if e.AuthzID != "" {
		s.Close()
		return nil, fault.New(fault.Account, "POP3 logins cannot act for another user here; use the Exchange/IMAP delegated source", nil)
	}
	if err := conn.Auth(e.User, e.Password); err != nil {
		s.Close()
		return nil, loginError(e, err)
	}
	return s, nil
}

// loginDelay is how long to wait after [LOGIN-DELAY]: servers that use it
// allow a login every few minutes.
const loginDelay = 5 * time.Minute

// loginError says why a POP3 login was refused, by the response codes of
// RFC 3206 where the server gives them: [AUTH] (or none) is the
// credentials, [SYS/PERM] the account on the server's side, [SYS/TEMP],
// [IN-USE] and [LOGIN-DELAY] pass. The server's own words are kept for
// the admin; the Refusal lets the portal word it for the member.
func loginError(e mail.Endpoint, err error) error {
	if fault.IsTransient(err) {
		return fault.Coded(fault.Retry, wording.New("net.lost.login", "addr", e.Addr()), err)
	}
	line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(err.Error()), "-ERR"))
	text := strings.ToLower(line)
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	switch {
	case strings.Contains(text, "[in-use]") || strings.Contains(text, "in use") || (strings.Contains(text, "locked") && !strings.Contains(text, "[auth]") && !strings.Contains(text, "[sys/perm]")):
		return fault.Coded(fault.Retry, wording.New("login.inuse"), err)
	case strings.Contains(text, "[login-delay]"):
		return fault.RetryAfterCoded(loginDelay, wording.New("login.wait", "addr", e.Addr(), "reply", line), err)
	case strings.Contains(text, "[sys/temp]"):
		return fault.Coded(fault.Retry, wording.New("login.temporary", "addr", e.Addr(), "user", e.User, "reply", line), err)
	case strings.Contains(text, "[sys/perm]"):
		return fault.RefusedCoded(fault.Disabled, wording.New("login.disabled", "addr", e.Addr(), "user", e.User, "proto", "POP3", "tag", "SYS/PERM", "reply", line), err)
	}
	return fault.RefusedCoded(fault.BadCredentials, wording.New("login.refused", "user", e.User, "addr", e.Addr(), "proto", "POP3", "reply", line, "hint", e.Hint), err)
}

// Folders is the one maildrop, as INBOX.
func (s *Source) Folders(ctx context.Context) ([]mail.Folder, error) {
	n, _, err := s.conn.Stat()
	if err != nil {
		return nil, s.cmdError("STAT", err)
	}
	// UIDLs do not change meaning, so the validity never changes.
	return []mail.Folder{{Name: "INBOX", Validity: 1, Messages: uint32(n)}}, nil
}

type entry struct {
	num  int
	key  string
	size int64
}

// list reads LIST and UIDL; without UIDL, keys come from the headers.
func (s *Source) list(ctx context.Context) ([]entry, error) {
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	defer stop()
	sizes, err := s.conn.List(0)
	if err != nil {
		return nil, s.cmdError("LIST", err)
	}
	out := make([]entry, 0, len(sizes))
	for _, m := range sizes {
		out = append(out, entry{num: m.ID, size: int64(m.Size)})
	}
	if !s.noUIDL {
		uidls, err := s.conn.Uidl(0)
		if err == nil {
			keys := map[int]string{}
			for _, u := range uidls {
				keys[u.ID] = u.UID
			}
			for i := range out {
				out[i].key = keys[out[i].num]
			}
			return out, nil
		}
		if fault.IsTransient(err) {
			return nil, s.cmdError("UIDL", err)
		}
		s.noUIDL = true
	}
	// No UIDL: a key from the size and the headers, which is as stable as
	// the server's copy of the message.
	for i := range out {
		b, err := s.conn.Cmd("TOP", true, out[i].num, 0)
		if err != nil {
			return nil, s.cmdError("TOP", err)
		}
		h := sha256.Sum256(b.Bytes())
		out[i].key = fmt.Sprintf("h%d-%s", out[i].size, hex.EncodeToString(h[:12]))
	}
	return out, nil
}

// NoUIDL reports that the server lacks UIDL and keys are derived from headers.
func (s *Source) NoUIDL() bool { return s.noUIDL }

// Messages lists the maildrop in server order with UIDL keys and sizes. The
// date comes with the body (POP3 has no INTERNALDATE) unless the caller
// needs it now: see Dates.
func (s *Source) Messages(ctx context.Context, f mail.Folder) ([]mail.Message, error) {
	es, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]mail.Message, 0, len(es))
	for _, e := range es {
		out = append(out, mail.Message{Key: e.key, Size: e.size})
	}
	return out, nil
}

// Dates reads each message's headers (TOP n 0) for its date.
func (s *Source) Dates(ctx context.Context, f mail.Folder, msgs []mail.Message) error {
	es, err := s.list(ctx)
	if err != nil {
		return err
	}
	byKey := make(map[string]int, len(es))
	for _, e := range es {
		byKey[e.key] = e.num
	}
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	defer stop()
	now := time.Now()
	for i := range msgs {
		num, ok := byKey[msgs[i].Key]
		if !ok {
			continue
		}
		b, err := s.conn.Cmd("TOP", true, num, 0)
		if err != nil {
			return s.cmdError("TOP", err)
		}
		msgs[i].Date = DateOf(b.Bytes(), now)
	}
	return nil
}

var _ sources.Dater = (*Source)(nil)

// Fetch retrieves each message with RETR, one in memory at a time.
func (s *Source) Fetch(ctx context.Context, f mail.Folder, msgs []mail.Message, fn func(*mail.Body) error) error {
	if len(msgs) == 0 {
		return nil
	}
	es, err := s.list(ctx)
	if err != nil {
		return err
	}
	byKey := make(map[string]entry, len(es))
	for _, e := range es {
		byKey[e.key] = e
	}
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	defer stop()
	for _, m := range msgs {
		e, ok := byKey[m.Key]
		if !ok {
			continue
		}
		if e.size > MaxMessageSize {
			return &mail.MessageError{Message: m, Err: fault.New(fault.Message, fmt.Sprintf("message of %d bytes is larger than the %d bytes one POP3 fetch may hold", e.size, MaxMessageSize), nil)}
		}
		// TOP with every line is RETR without the side effect: servers such
		// as Dovecot mark a RETR'd message \Seen in their IMAP view.
		var buf *bytes.Buffer
		if s.noTop {
			buf, err = s.conn.RetrRaw(e.num)
		} else if buf, err = s.conn.Cmd("TOP", true, e.num, 1<<31-1); err != nil && !fault.IsTransient(err) {
			s.noTop = true
			buf, err = s.conn.RetrRaw(e.num)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return s.cmdError("RETR", err)
		}
		body := buf.Bytes()
		meta := m
		meta.Size = int64(len(body))
		meta.Date = DateOf(body, time.Now())
		if err := fn(&mail.Body{Message: meta, Reader: bytes.NewReader(body)}); err != nil {
			return err
		}
	}
	return nil
}

// DateOf is the arrival time of a message: the last Received header's date
// (the first hop into the mailbox), else Date, else now.
func DateOf(msg []byte, now time.Time) time.Time {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	}
	m, err := netmail.ReadMessage(bytes.NewReader(append(append([]byte(nil), msg[:end]...), "\r\n\r\n"...)))
	if err != nil {
		return now
	}
	if rs := m.Header["Received"]; len(rs) > 0 {
		last := rs[len(rs)-1]
		if i := strings.LastIndexByte(last, ';'); i >= 0 {
			if t, err := netmail.ParseDate(strings.TrimSpace(last[i+1:])); err == nil {
				return t
			}
		}
	}
	if t, err := m.Header.Date(); err == nil {
		return t
	}
	return now
}

func (s *Source) cmdError(op string, err error) error {
	if fault.IsTransient(err) {
		return fault.New(fault.Retry, op+": connection lost", err)
	}
	return fault.New(fault.Retry, op+" refused by the server", err)
}

// Close drops the connection without QUIT: with no DELE ever sent nothing
// would be committed anyway, and without QUIT the server never enters UPDATE.
func (s *Source) Close() error { return s.raw.Close() }
