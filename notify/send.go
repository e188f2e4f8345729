package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// session is one connection to the SMTP server, logged in.
type session struct {
	c    *smtp.Client
	stop func() bool
}

func (s *session) close() {
	// QUIT is a courtesy; the server has already taken (or refused) the mail.
	if s.c.Quit() != nil {
		s.c.Close()
	}
	s.stop()
}

// Check connects, sets up TLS and logs in, then starts a transaction with
// the From address and resets it: no mail is sent, but a server that refuses
// to send as From says so here rather than when the first account finishes.
func (n *Notifier) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	s, err := n.open(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.c.Mail(n.cfg.From, mailOptions(n.cfg.From)); err != nil {
		return n.failed(ctx, stageMail, err)
	}
	if err := s.c.Reset(); err != nil {
		return n.failed(ctx, stageMail, err)
	}
	return nil
}

// open dials, sets up TLS as configured and logs in. go-smtp's client has
// no context, so ctx ending closes the connection under it.
func (n *Notifier) open(ctx context.Context) (*session, error) {
	d := net.Dialer{Timeout: n.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", n.addr())
	if err != nil {
		return nil, n.failed(ctx, stageDial, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(st stage, err error) (*session, error) {
		stop()
		conn.Close()
		return nil, n.failed(ctx, st, err)
	}
	tlsCfg := &tls.Config{
		ServerName:         n.cfg.Host,
		RootCAs:            n.cfg.RootCAs,
		InsecureSkipVerify: n.cfg.Insecure,
		MinVersion:         tls.VersionTLS12,
	}
	var c *smtp.Client
	switch n.cfg.Security {
	case SecurityTLS:
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(stageTLS, err)
		}
		c = smtp.NewClient(tc)
	case SecurityStartTLS:
		if c, err = smtp.NewClientStartTLS(conn, tlsCfg); err != nil {
			return fail(stageTLS, err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = n.cfg.Timeout
	c.SubmissionTimeout = n.cfg.Timeout
	// After STARTTLS the handshake happens on the next write: saying hello
	// now makes a certificate problem show as one, not as a failed login.
	if err := c.Hello(helloName()); err != nil {
		return fail(stageHello, err)
	}
	if n.cfg.User != "" {
		auth, err := n.saslClient(c)
		if err != nil {
			return fail(stageAuth, err)
		}
		if err := c.Auth(auth); err != nil {
			return fail(stageAuth, err)
		}
	}
	return &session{c: c, stop: stop}, nil
}

// failed classifies err; once ctx has ended, any error is the shutdown or
// the attempt's time running out, whatever the connection said.
func (n *Notifier) failed(ctx context.Context, st stage, err error) *Error {
	if ctx.Err() != nil && n.ctx.Err() != nil {
		return &Error{Kind: Dropped, Reason: "shutting down before the mail could be sent", Err: n.redact.cleanErr(err)}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = context.DeadlineExceeded
	}
	return n.classify(st, err)
}

func (n *Notifier) saslClient(c *smtp.Client) (sasl.Client, error) {
	switch {
	case c.SupportsAuth(sasl.Plain):
		return sasl.NewPlainClient("", n.cfg.User, n.cfg.Password), nil
	case c.SupportsAuth(sasl.Login):
		return sasl.NewLoginClient(n.cfg.User, n.cfg.Password), nil
	}
	ok, mechs := c.Extension("AUTH")
	if !ok {
		hint := ""
		if n.cfg.Security == SecurityNone {
			hint = " (many servers offer it only over TLS: use security \"starttls\" or \"tls\")"
		}
		return nil, &Error{Kind: Auth, Reason: fmt.Sprintf("%s offers no login on this connection%s", n.addr(), hint)}
	}
	return nil, &Error{Kind: Auth, Reason: fmt.Sprintf("%s offers only the login methods %s; banjia speaks PLAIN and LOGIN", n.addr(), mechs)}
}

func helloName() string {
	if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") {
		return h
	}
	return "localhost"
}

func mailOptions(from string) *smtp.MailOptions {
	if isASCII(from) {
		return nil
	}
	return &smtp.MailOptions{UTF8: true}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// sendOnce makes one attempt at m. Recipients the server refuses for good
// are left out and reported without failing the others; a temporary refusal
// of any recipient retries the whole mail, before anything was sent.
func (n *Notifier) sendOnce(parent context.Context, m *message, attempt int) *Error {
	ctx, cancel := context.WithTimeout(parent, n.cfg.Timeout)
	defer cancel()
	s, err := n.open(ctx)
	if err != nil {
		var e *Error
		errors.As(err, &e)
		return e
	}
	defer s.close()
	if err := s.c.Mail(n.cfg.From, mailOptions(n.cfg.From)); err != nil {
		return n.failed(ctx, stageMail, err)
	}
	var refused []string
	var refusal *Error
	accepted := 0
	for _, to := range m.to {
		err := s.c.Rcpt(to, nil)
		if err == nil {
			accepted++
			continue
		}
		e := n.failed(ctx, stageRcpt, err)
		if e.Kind != Recipient || e.Temporary {
			return e
		}
		refused = append(refused, to)
		refusal = e
	}
	if accepted == 0 {
		return refusal
	}
	w, err := s.c.Data()
	if err != nil {
		return n.failed(ctx, stageData, err)
	}
	if _, err := bytes.NewReader(m.data).WriteTo(w); err != nil {
		w.Close()
		return n.failed(ctx, stageData, err)
	}
	if err := w.Close(); err != nil {
		return n.failed(ctx, stageData, err)
	}
	if len(refused) > 0 {
		// The rest got the mail: a retry would send it to them twice.
		n.report(&DeliveryError{To: refused, Subject: m.subject, Attempt: attempt, Final: true,
			Err: &Error{Kind: Recipient, Code: refusal.Code, Reason: fmt.Sprintf("%s refused the recipients %s (the others got the mail)", n.addr(), strings.Join(refused, ", ")), Err: refusal.Err}})
	}
	return nil
}
