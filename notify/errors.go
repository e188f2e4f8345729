package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/banjia-mail/banjia/wording"
	"github.com/emersion/go-smtp"
)

// Kind says which setting or party a failed notification points at, so the
// admin knows what to fix.
type Kind int

const (
	// Connect: DNS, connection refused, timeout, connection lost.
	Connect Kind = iota + 1
	// TLS: handshake failed, certificate not trusted, no STARTTLS.
	TLS
	// Auth: the server refused the login, or wants one that is not configured.
	Auth
	// Relay: the server will not send as the From address (MAIL FROM refused,
	// or "relay not allowed").
	Relay
	// Recipient: the server refused a recipient address.
	Recipient
	// Server: any other refusal (a 4xx busy reply, a refused message).
	Server
	// Dropped: the mail never reached the server (queue full, notifier closed).
	Dropped
)

func (k Kind) String() string {
	switch k {
	case Connect:
		return "connect"
	case TLS:
		return "tls"
	case Auth:
		return "auth"
	case Relay:
		return "relay"
	case Recipient:
		return "recipient"
	case Server:
		return "server"
	case Dropped:
		return "dropped"
	}
	return "unknown"
}

// Error is a classified SMTP failure with a reason an admin can act on. Its
// text never holds the SMTP password, even if a server echoes it back.
type Error struct {
	Kind Kind
	// Temporary: worth trying again later (4xx replies, network trouble).
	Temporary bool
	// Reason is what a person reads, e.g. "the SMTP server refused the login
	// for x@example.com: check the password or app password".
	Reason string
	// Why is Reason as a catalogue code and its parameters, for the
	// outbox's readers in their language.
	Why wording.Reason
	// Code is the SMTP reply code, when a server reply caused the error.
	Code int
	// Err is the cause; server replies are *smtp.SMTPError (with any secret
	// already removed from the text).
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// DeliveryError is what the OnError callback receives: one failed attempt at
// one mail. Final says no more attempts will be made and the mail is lost.
type DeliveryError struct {
	To      []string
	Subject string
	Attempt int
	Final   bool
	Err     *Error
}

func (e *DeliveryError) Error() string {
	s := fmt.Sprintf("notification %q to %s", e.Subject, strings.Join(e.To, ", "))
	if e.Final {
		s += fmt.Sprintf(" not sent (attempt %d, giving up)", e.Attempt)
	} else {
		s += fmt.Sprintf(" failed (attempt %d, will retry)", e.Attempt)
	}
	return s + ": " + e.Err.Error()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// stage is the step of an SMTP session an error happened in: the same reply
// code means different things at different steps (a 5xx to MAIL FROM is a
// sender refusal, to RCPT TO a recipient refusal).
type stage int

const (
	stageDial stage = iota
	stageTLS
	stageHello
	stageAuth
	stageMail
	stageRcpt
	stageData
)

// redactor removes the password from text before anyone can print it. Its
// base64 forms are removed too: an AUTH PLAIN or LOGIN line is base64.
type redactor struct{ secrets []string }

func newRedactor(user, password string) redactor {
	if password == "" {
		return redactor{}
	}
	enc := base64.StdEncoding.EncodeToString
	return redactor{secrets: []string{
		password,
		enc([]byte(password)),
		enc([]byte("\x00" + user + "\x00" + password)),
		enc([]byte(user + "\x00" + user + "\x00" + password)),
	}}
}

func (r redactor) clean(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

// cleanErr returns err with any secret removed from its text, keeping
// *smtp.SMTPError so callers can still read the code.
func (r redactor) cleanErr(err error) error {
	if err == nil || len(r.secrets) == 0 {
		return err
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		c := *se
		c.Message = r.clean(se.Message)
		return &c
	}
	if s := err.Error(); r.clean(s) != s {
		return errors.New(r.clean(s))
	}
	return err
}

// classify turns a failure at step st into an Error a person can act on.
func (n *Notifier) classify(st stage, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e = n.explain(st, err)
	e.Err = n.redact.cleanErr(err)
	e.Reason = n.redact.clean(e.Reason)
	for k, v := range e.Why.Args {
		e.Why.Args[k] = n.redact.clean(v)
	}
	return e
}

// failure is an Error of kind k worded by the catalogue.
func failure(k Kind, temporary bool, why wording.Reason) *Error {
	return &Error{Kind: k, Temporary: temporary, Reason: why.String(), Why: why}
}

func (n *Notifier) explain(st stage, err error) *Error {
	addr := n.addr()
	if e := tlsFailure(addr, n.cfg.Host, err); e != nil {
		return e
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return n.replyFailure(st, se)
	}
	if strings.Contains(err.Error(), "doesn't support STARTTLS") {
		return failure(TLS, false, wording.New("smtp.nostarttls", "addr", addr))
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return failure(Connect, false, wording.New("smtp.resolve", "host", n.cfg.Host))
		}
		return failure(Connect, true, wording.New("smtp.resolve.now", "host", n.cfg.Host))
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return failure(Connect, true, wording.New("smtp.timeout", "addr", addr, "timeout", n.cfg.Timeout.String()))
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return failure(Connect, true, wording.New("smtp.refused", "addr", addr))
	}
	if st == stageDial {
		return failure(Connect, true, wording.New("smtp.connect", "addr", addr))
	}
	return failure(Connect, true, wording.New("smtp.lost", "addr", addr))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// tlsFailure explains handshake and certificate errors; nil if err is not one.
func tlsFailure(addr, host string, err error) *Error {
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &hostErr):
		return failure(TLS, false, wording.New("smtp.tls.name", "addr", addr, "host", host))
	case errors.As(err, &invalid):
		return failure(TLS, false, wording.New("smtp.tls.invalid", "addr", addr))
	case errors.As(err, &unknown), errors.As(err, &verify):
		return failure(TLS, false, wording.New("smtp.tls.untrusted", "addr", addr))
	case errors.As(err, &header), strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return failure(TLS, false, wording.New("smtp.tls.plainport", "addr", addr))
	case errors.As(err, &alert):
		return failure(TLS, false, wording.New("tls.failed", "addr", addr))
	}
	return nil
}

// replyFailure explains a server's refusal at step st.
func (n *Notifier) replyFailure(st stage, se *smtp.SMTPError) *Error {
	addr := n.addr()
	temp := se.Code/100 == 4
	text := strings.ToLower(se.Message)
	relay := strings.Contains(text, "relay")
	e := &Error{Code: se.Code, Temporary: temp}
	switch {
	case se.Code == 523 || se.Code == 538:
		e.Kind, e.Why = TLS, wording.New("smtp.needtls", "addr", addr)
	case st == stageAuth && temp:
		e.Kind, e.Why = Auth, wording.New("smtp.auth.later", "user", n.cfg.User)
	case st == stageAuth:
		e.Kind, e.Why = Auth, wording.New("smtp.auth.refused", "user", n.cfg.User)
	case temp:
		e.Kind, e.Why = Server, wording.New("smtp.busy", "addr", addr)
	case se.Code == 530 || (se.EnhancedCode[0] == 5 && se.EnhancedCode[1] == 7 && se.EnhancedCode[2] == 0 && strings.Contains(text, "auth")):
		e.Kind, e.Why = Auth, wording.New("smtp.auth.needed", "addr", addr)
	case st == stageMail && se.Code != 552, relay && (se.Code == 550 || se.Code == 551 || se.Code == 553 || se.Code == 554):
		e.Kind, e.Why = Relay, n.relayReason()
	case st == stageRcpt:
		e.Kind, e.Why = Recipient, wording.New("smtp.rcpt", "addr", addr)
	case st == stageData:
		e.Kind, e.Why = Server, wording.New("smtp.data", "addr", addr)
	default:
		e.Kind, e.Why = Server, wording.New("smtp.session", "addr", addr)
	}
	e.Reason = e.Why.String()
	return e
}

// relayReason follows Zoho's notes on "relay not allowed": the server sends
// only as the address that logged in or one of its aliases.
func (n *Notifier) relayReason() wording.Reason {
	if n.cfg.User == "" {
		return wording.New("smtp.relay.nologin", "addr", n.addr(), "from", n.cfg.From)
	}
	return wording.New("smtp.relay", "addr", n.addr(), "from", n.cfg.From, "user", n.cfg.User)
}
