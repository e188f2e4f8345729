// Package imapconn is the IMAP connection both ends share: dialing with
// dead-peer detection, STARTTLS and TLS, login (PLAIN, LOGIN, XOAUTH2,
// delegated), the IMAP ID step, namespaces, folder listing, and errors
// classified for the engine with reasons a person can act on. The IMAP
// source, the IMAP sink and the POP3 source's dialing use it.
package imapconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/wording"
)

// Conn is one logged-in IMAP session, shared by the IMAP source and the IMAP
// sink. Every blocking call takes a context; cancelling it closes the
// connection, since go-imap itself has no notion of contexts.
type Conn struct {
	*imapclient.Client
	Endpoint mail.Endpoint
	Caps     imap.CapSet
	raw      net.Conn
	aborted  atomic.Bool
	// ns is the session's namespaces, once asked (namespace.go).
	ns *Namespaces
	// idf hides the server's ID answer from go-imap (idfilter.go).
	idf *idFilter
}

// ResetOnClose makes closing the connection (or the process dying) reset
// it rather than close it in order: the server then drops what it has
// received and not yet read, instead of carrying out those commands after
// the client is gone. The IMAP sink wants that: a restart that looks for the
// APPENDs a killed run had in flight must not have them land after it looked.
func (c *Conn) ResetOnClose() {
	if tc, ok := c.raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

// Abort drops the connection at once. go-imap's Close waits for its reader,
// which may itself wait for us to finish reading a literal: closing the
// socket first makes every pending read and write fail instead.
func (c *Conn) Abort() {
	c.aborted.Store(true)
	c.raw.Close()
	go c.Client.Close()
}

// deadlineConn turns go-imap's "no deadline" into an idle timeout.
type deadlineConn struct {
	net.Conn
	idle time.Duration
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() && c.idle > 0 {
		t = time.Now().Add(c.idle)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	if t.IsZero() && c.idle > 0 {
		t = time.Now().Add(c.idle)
	}
	return c.Conn.SetDeadline(t)
}

// Dial connects to e, secures the connection as its scheme says, and logs in.
func Dial(ctx context.Context, e mail.Endpoint, opts *imapclient.Options) (*Conn, error) {
	return DialWrapped(ctx, e, opts, nil)
}

// DialWrapped is Dial with wrap placed between the (TLS) connection and
// go-imap, over the plain IMAP stream: the IMAP sink writes its pipelined
// APPENDs there itself. With wrap, STARTTLS is done here rather than by
// go-imap, which would otherwise put TLS above the wrapper.
func DialWrapped(ctx context.Context, e mail.Endpoint, opts *imapclient.Options, wrap func(net.Conn) net.Conn) (*Conn, error) {
	if opts == nil {
		opts = &imapclient.Options{}
	}
	tlsCfg, err := e.TLSConfig()
	if err != nil {
		return nil, fault.New(fault.Account, "bad CA certificate", err)
	}
	cctx, ccancel := context.WithTimeout(ctx, ConnectTimeout)
	raw, err := Dialer().DialContext(cctx, "tcp", e.Addr())
	ccancel()
	if err != nil {
		return nil, DialError(e, err)
	}
	dctx, cancel := context.WithTimeout(ctx, LoginTimeout)
	defer cancel()
	// The greeting and STARTTLS have no context in go-imap: close on timeout.
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	defer stop()
	var nc net.Conn = &deadlineConn{Conn: raw, idle: IdleTimeout}
	var idf *idFilter
	inner := wrap
	wrap = func(c net.Conn) net.Conn {
		idf = &idFilter{Conn: c}
		return wrapped(idf, inner)
	}
	var c *imapclient.Client
	switch e.Scheme {
	case "imaps":
		tc := tls.Client(nc, tlsCfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, tlsError(e, err)
		}
		c = imapclient.New(wrapped(tc, wrap), opts)
	case "imap":
		if wrap != nil {
			tc, err := startTLS(dctx, nc, tlsCfg)
			if err != nil {
				raw.Close()
				if strings.Contains(err.Error(), "STARTTLS") {
					return nil, fault.Coded(fault.Account, wording.New("tls.nostarttls", "addr", e.Addr(), "advice", "use imaps:// (port 993) or, only on a trusted network, imap+plain://"), err)
				}
				return nil, tlsError(e, err)
			}
			// go-imap reads a greeting first; the real one came before TLS.
			c = imapclient.New(wrap(&greetedConn{Conn: tc, greeting: []byte("* OK TLS established\r\n")}), opts)
			break
		}
		o := *opts
		o.TLSConfig = tlsCfg
		c, err = imapclient.NewStartTLS(nc, &o)
		if err != nil {
			raw.Close()
			if strings.Contains(err.Error(), "STARTTLS") || isIMAPError(err) {
				return nil, fault.Coded(fault.Account, wording.New("tls.nostarttls", "addr", e.Addr(), "advice", "use imaps:// (port 993) or, only on a trusted network, imap+plain://"), err)
			}
			return nil, tlsError(e, err)
		}
	case "imap+plain":
		c = imapclient.New(wrapped(nc, wrap), opts)
	default:
		raw.Close()
		return nil, fault.New(fault.Account, fmt.Sprintf("scheme %q is not IMAP", e.Scheme), nil)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		if dctx.Err() != nil {
			return nil, fault.Coded(fault.Retry, wording.New("greeting.timeout", "addr", e.Addr(), "timeout", LoginTimeout.String(), "proto", "IMAP"), err)
		}
		return nil, fault.Coded(fault.Retry, wording.New("greeting.none", "addr", e.Addr(), "proto", "IMAP"), err)
	}
	conn := &Conn{Client: c, Endpoint: e, raw: raw, idf: idf}
	if err := conn.login(dctx); err != nil {
		c.Close()
		return nil, err
	}
	stop()
	conn.Caps = c.Caps()
	return conn, nil
}

func wrapped(c net.Conn, wrap func(net.Conn) net.Conn) net.Conn {
	if wrap == nil {
		return c
	}
	return wrap(c)
}

// startTLS reads the greeting and upgrades the connection with STARTTLS.
// It reads byte by byte so nothing after the tagged reply is consumed.
func startTLS(ctx context.Context, nc net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	line := func() (string, error) {
		var b []byte
		one := make([]byte, 1)
		for len(b) < 64<<10 {
			if _, err := nc.Read(one); err != nil {
				return string(b), err
			}
			b = append(b, one[0])
			if one[0] == '\n' {
				return string(b), nil
			}
		}
		return string(b), errors.New("line too long")
	}
	greeting, err := line()
	if err != nil {
		return nil, fmt.Errorf("reading the greeting: %w", err)
	}
	if !strings.HasPrefix(strings.ToUpper(greeting), "* OK") {
		// PREAUTH before TLS is refused, as go-imap does (RFC 3501 7.1.4).
		return nil, fmt.Errorf("greeting before STARTTLS: %q", strings.TrimSpace(greeting))
	}
	if _, err := nc.Write([]byte("S STARTTLS\r\n")); err != nil {
		return nil, err
	}
	for {
		reply, err := line()
		if err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
		if strings.HasPrefix(reply, "S ") {
			if !strings.HasPrefix(strings.ToUpper(reply), "S OK") {
				return nil, fmt.Errorf("STARTTLS refused: %s", strings.TrimSpace(reply))
			}
			break
		}
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// greetedConn hands go-imap a greeting before the connection's own bytes.
type greetedConn struct {
	net.Conn
	greeting []byte
}

func (g *greetedConn) Read(b []byte) (int, error) {
	if len(g.greeting) > 0 {
		n := copy(b, g.greeting)
		g.greeting = g.greeting[n:]
		return n, nil
	}
	return g.Conn.Read(b)
}

func (c *Conn) login(ctx context.Context) error {
	e := c.Endpoint
	caps := c.Client.Caps()
	mech := e.Auth
	if mech == "" {
		mech = "login"
		if caps.Has(imap.AuthCap(sasl.Plain)) || e.AuthzID != "" {
			mech = "plain"
		}
	}
	var err error
	switch mech {
	case "plain":
		err = c.Client.Authenticate(sasl.NewPlainClient(e.AuthzID, e.User, e.Password))
		if plainUnsupported(err) && e.Auth == "" && e.AuthzID == "" && !caps.Has(imap.CapLoginDisabled) {
			// Coremail (NetEase 163/126) advertises AUTH=PLAIN and SASL-IR
			// but answers PLAIN with an initial response "BAD Request not
			// ending with"; a BAD is about the command, not the password,
			// and LOGIN carries the same credentials.
			err = c.Client.Login(e.User, e.Password).Wait()
		}
	case "xoauth2":
		token, terr := mail.Token(ctx, e)
		if terr != nil {
			return fault.Coded(fault.Account, wording.New("login.token", "app", e.App.ClientID, "err", redactSecret(terr.Error(), e.Password)), nil)
		}
		err = c.Client.Authenticate(&xoauth2Client{user: e.User, token: token})
	case "login":
		if caps.Has(imap.CapLoginDisabled) {
			return fault.Coded(fault.Account, wording.New("login.noplain", "addr", e.Addr()), nil)
		}
		err = c.Client.Login(e.User, e.Password).Wait()
	}
	if err != nil {
		return LoginError(e, err)
	}
	return c.identify()
}

// plainUnsupported says AUTHENTICATE PLAIN was refused as a command (BAD),
// not as a login (NO).
func plainUnsupported(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeBad
}

// LoginError classifies a failed login and says what to do about it.
func LoginError(e mail.Endpoint, err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch ie.Code {
		case imap.ResponseCodeUnavailable:
			return fault.Coded(fault.Retry, wording.New("login.unavailable", "addr", e.Addr()), err)
		case imap.ResponseCodeAuthorizationFailed:
			return fault.Coded(fault.Account, wording.New("delegate.denied", "admin", e.User, "member", e.AuthzID), err)
		case imap.ResponseCodeExpired:
			return fault.RefusedCoded(fault.Expired, wording.New("login.expired", "user", e.User, "reply", reply(ie)), err)
		case imap.ResponseCodeContactAdmin:
			if e.Delegated {
				// The admin logs in for the member: which of the two is
				// disabled, or lacks the right, the server does not say.
				return fault.RefusedCoded(fault.Disabled, delegatedRefusal(e, ie), err)
			}
			// The password may well be right: retyping it cannot help, the
			// old provider's admin must enable the account (or IMAP for it).
			return fault.RefusedCoded(fault.Disabled, wording.New("login.disabled", "addr", e.Addr(), "user", e.User, "proto", "IMAP", "tag", "CONTACTADMIN", "reply", reply(ie)), err)
		case imap.ResponseCodePrivacyRequired:
			return fault.Coded(fault.Account, wording.New("login.needtls", "addr", e.Addr()), err)
		}
		if strings.Contains(strings.ToLower(ie.Text), "throttl") {
			return fault.RetryAfterCoded(backoffHint(ie.Text), wording.New("login.throttled", "addr", e.Addr()), err)
		}
		if strings.Contains(strings.ToLower(ie.Text), "too many simultaneous connections") {
			// Gmail: "[ALERT] Too many simultaneous connections. (Failure)";
			// other clients of the mailbox hold them, not a wrong password.
			// No pause hint: the limit is this mailbox's, and a hint would
			// pause every account on the host.
			return fault.Coded(fault.Retry, wording.New("login.toomany", "addr", e.Addr(), "user", e.User, "reply", reply(ie)), err)
		}
		if e.Delegated {
			return fault.Coded(fault.Account, delegatedRefusal(e, ie), err)
		}
		if ie.Type == imap.StatusResponseTypeBad && e.Auth == "plain" {
			// BAD is about the command, not the credentials: Coremail
			// (NetEase) answers AUTHENTICATE PLAIN so although it offers it.
			return fault.Coded(fault.Account, wording.New("login.plainbad", "addr", e.Addr(), "reply", reply(ie)), err)
		}
		return fault.RefusedCoded(fault.BadCredentials, wording.New("login.refused", "user", e.User, "addr", e.Addr(), "proto", "IMAP", "reply", reply(ie), "hint", e.Hint), err)
	}
	// Servers refuse logins with a tagged NO (handled above); anything else
	// is the connection failing under us.
	return fault.Coded(fault.Retry, wording.New("net.lost.login", "addr", e.Addr()), err)
}

func isIMAPError(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie)
}

// DialError explains a failed TCP connection.
func DialError(e mail.Endpoint, err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fault.Coded(fault.Account, wording.New("net.resolve", "host", e.Host), err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fault.Coded(fault.Retry, wording.New("net.timeout", "addr", e.Addr(), "timeout", ConnectTimeout.String()), err)
	}
	return fault.Coded(fault.Retry, wording.New("net.connect", "addr", e.Addr()), err)
}

func tlsError(e mail.Endpoint, err error) error {
	return TLSError(e, err, "use imap:// (STARTTLS) or the TLS port 993")
}

// TLSError explains a failed TLS handshake; hint says what to use instead
// when the port does not speak TLS.
func TLSError(e mail.Endpoint, err error, hint string) error {
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	switch {
	case errors.As(err, &hostErr):
		return fault.Coded(fault.Account, wording.New("tls.name", "addr", e.Addr(), "host", e.Host), err)
	case errors.As(err, &authErr), errors.As(err, &certErr):
		return fault.Coded(fault.Account, wording.New("tls.untrusted", "addr", e.Addr()), err)
	case errors.As(err, new(tls.RecordHeaderError)) || strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return fault.Coded(fault.Account, wording.New("tls.plainport", "addr", e.Addr(), "advice", hint), err)
	}
	if fault.IsTransient(err) {
		return fault.Coded(fault.Retry, wording.New("tls.failed", "addr", e.Addr()), err)
	}
	return fault.Coded(fault.Account, wording.New("tls.failed", "addr", e.Addr()), err)
}

// Do runs one blocking step of the session; if ctx ends first the connection
// is closed so the step returns.
func (c *Conn) Do(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.Abort)
	err := fn()
	stop()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Logout ends the session politely, bounded in time.
func (c *Conn) Logout() error {
	if c.aborted.Load() {
		// Writing LOGOUT now would make go-imap fail the aborted command
		// from this goroutine while its reader may still be handing it
		// data; Abort already closes the client.
		select {
		case <-c.Client.Closed():
		case <-time.After(2 * time.Second):
		}
		return nil
	}
	done := make(chan struct{})
	go func() {
		c.Client.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	return c.Client.Close()
}

// CommandError classifies a failed IMAP command on an open session.
func CommandError(op string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		text := strings.ToLower(ie.Text)
		switch {
		case ie.Code == imap.ResponseCodeUnavailable || ie.Code == imap.ResponseCodeServerBug || ie.Code == imap.ResponseCodeInUse:
			return fault.Coded(fault.Retry, wording.New("cmd.busy", "op", op), err)
		case strings.Contains(text, "throttl"):
			return fault.RetryAfterCoded(backoffHint(ie.Text), wording.New("cmd.throttled", "op", op), err)
		case strings.Contains(text, "bandwidth limit"):
			// Gmail answers FETCH "[OVERQUOTA] Account exceeded command or
			// bandwidth limits." when the mailbox's daily IMAP allowance is
			// spent: the source's limit, not a full target, and one that
			// lasts hours (a pause hint would hold every account on the host).
			return fault.Coded(fault.Account, wording.New("cmd.daylimit", "op", op, "reply", reply(ie)), err)
		case ie.Code == imap.ResponseCodeOverQuota || strings.Contains(text, "quota"):
			return fault.Coded(fault.Account, wording.New("target.quota"), err)
		case ie.Code == imap.ResponseCodeTooBig || ie.Code == imap.ResponseCodeLimit || strings.Contains(text, "too big") || strings.Contains(text, "too large") || strings.Contains(text, "maximum size"):
			return fault.Coded(fault.Message, wording.New("target.toolarge", "reply", reply(ie)), err)
		case ie.Code == imap.ResponseCodeNoPerm:
			return fault.Coded(fault.Account, wording.New("cmd.nopermission", "op", op), err)
		case strings.Contains(text, "not connected"):
			return fault.Coded(fault.Account, wording.New("delegate.notconnected"), err)
		case strings.Contains(text, "unsafe login"):
			return fault.Coded(fault.Account, wording.New("cmd.unsafe", "op", op, "reply", reply(ie)), err)
		}
		return fault.Coded(fault.Message, wording.New("cmd.refused", "op", op, "reply", reply(ie)), err)
	}
	if fault.IsTransient(err) || strings.Contains(err.Error(), "connection closed") {
		return fault.Coded(fault.Retry, wording.New("cmd.lost", "op", op), err)
	}
	return fault.New(fault.Retry, op, err)
}

// backoffHint reads "Suggested Backoff Time: N milliseconds" (Exchange).
func backoffHint(text string) time.Duration {
	i := strings.Index(strings.ToLower(text), "backoff time:")
	if i < 0 {
		return 5 * time.Second
	}
	var ms int
	if _, err := fmt.Sscanf(strings.TrimSpace(text[i+len("backoff time:"):]), "%d", &ms); err != nil || ms <= 0 {
		return 5 * time.Second
	}
	return time.Duration(ms) * time.Millisecond
}

// HintSuffix is the provider's advice, for the end of a login failure.
func HintSuffix(e mail.Endpoint) string {
	if e.Hint == "" {
		return ""
	}
	return "; " + e.Hint
}

// delegatedRefusal words a refused delegated login for the admin who can
// fix it: the admin's own credentials, or the admin's rights on this one
// mailbox (the server's own words tell which, when it gives them).
func delegatedRefusal(e mail.Endpoint, ie *imap.Error) wording.Reason {
	member := e.AuthzID
	if member == "" {
		member = e.User
	}
	if e.Auth == "xoauth2" {
		return wording.New("delegate.refused.app", "member", member, "reply", reply(ie))
	}
	return wording.New("delegate.refused", "member", member, "reply", reply(ie))
}

func redactSecret(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "[secret]")
}

// xoauth2Client is SASL XOAUTH2 (Google's and Microsoft's bearer-token
// login). go-sasl has OAUTHBEARER but no XOAUTH2 client, and the mechanism is
// one message: "user=" user ^A "auth=Bearer " token ^A ^A.
type xoauth2Client struct{ user, token string }

func (x *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the server's error challenge (a JSON status) with an empty
// response, after which the server sends the tagged NO that carries the reason.
func (x *xoauth2Client) Next(challenge []byte) ([]byte, error) { return []byte{}, nil }

// dovecotTiming is the "(0.001 + 0.000 secs)." Dovecot appends to replies.
var dovecotTiming = regexp.MustCompile(`\s*\(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)\.?$`)

// reply is the server's own words, kept as they were said (in every
// language a reason is read in), without Dovecot's timing.
func reply(ie *imap.Error) string {
	t := strings.TrimSpace(dovecotTiming.ReplaceAllString(ie.Text, ""))
	if len(t) > 200 {
		t = t[:200] + "..."
	}
	return t
}
