// Package smtptest runs a real SMTP server (go-smtp) on loopback for tests:
// implicit TLS and STARTTLS listeners on a self-signed certificate, AUTH
// PLAIN, accepted mail kept in memory, and replies scripted per command. The
// notifier's tests and the web end-to-end tests use it to see what was sent.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Command names a step of an SMTP session that can be scripted to fail.
type Command string

const (
	CmdAuth Command = "AUTH"
	CmdMail Command = "MAIL"
	CmdRcpt Command = "RCPT"
	CmdData Command = "DATA"
)

// Options configure a server. The zero value accepts any mail without a login.
type Options struct {
	// Users are the accepted logins (user -> password). When set, AUTH is
	// offered (after TLS) and MAIL before a login is refused with 530.
	Users map[string]string
	// SendAs, when set, makes the server behave as Zoho and most providers
	// do: MAIL FROM must be the login or one of SendAs[login], or it is
	// refused with "553 5.7.1 Relaying not allowed".
	SendAs map[string][]string
	// Mechanisms are the AUTH mechanisms offered: "PLAIN" (the default) and
	// "LOGIN" (still the only one some older servers speak).
	Mechanisms []string
	// AllowInsecureAuth offers AUTH on the plain listener before STARTTLS.
	AllowInsecureAuth bool
	// Hostname goes into the certificate (besides 127.0.0.1 and localhost).
	Hostname string
}

// Message is one mail the server accepted.
type Message struct {
	From string   // envelope sender
	To   []string // envelope recipients
	User string   // the login that sent it ("" without AUTH)
	TLS  bool     // whether the session was encrypted
	Data []byte   // the message as received
}

// Server is a running test server.
type Server struct {
	Host         string // 127.0.0.1
	TLSPort      int    // implicit TLS
	StartTLSPort int    // plain, offering STARTTLS
	// RootCAs trusts the server's certificate (and only it).
	RootCAs *x509.CertPool
	// CertPEM is the certificate, for tools that want a file.
	CertPEM []byte

	opts Options
	cert tls.Certificate
	// run is the serving server and its goroutines (nil while stopped).
	run *running

	mu       sync.Mutex
	msgs     []Message
	script   map[Command][]*smtp.SMTPError
	attempts map[Command]int
	arrived  chan struct{}
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{Host: "127.0.0.1", opts: opts, script: map[Command][]*smtp.SMTPError{},
		attempts: map[Command]int{}, arrived: make(chan struct{}, 1)}
	cert, err := s.makeCert(opts.Hostname)
	if err != nil {
		t.Fatalf("smtptest: certificate: %v", err)
	}
	s.cert = cert
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	implicit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		plain.Close()
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.StartTLSPort = plain.Addr().(*net.TCPAddr).Port
	s.TLSPort = implicit.Addr().(*net.TCPAddr).Port
	s.serve(plain, implicit)
	t.Cleanup(s.Stop)
	return s
}

// TLSAddr and StartTLSAddr are host:port of the two listeners.
func (s *Server) TLSAddr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.TLSPort)) }

func (s *Server) StartTLSAddr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.StartTLSPort))
}

// Fail makes the next len(replies) uses of cmd answer with these replies,
// in order, e.g. Fail(CmdData, Reply(451, "4.3.0 try later"), Reply(451, "4.3.0 try later")).
func (s *Server) Fail(cmd Command, replies ...*smtp.SMTPError) {
	s.mu.Lock()
	s.script[cmd] = append(s.script[cmd], replies...)
	s.mu.Unlock()
}

// Reply builds an SMTP reply: Reply(553, "5.7.1 Relaying not allowed").
func Reply(code int, text string) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: code, EnhancedCode: smtp.NoEnhancedCode, Message: text}
	if first, rest, ok := strings.Cut(text, " "); ok {
		var ec smtp.EnhancedCode
		if _, err := fmt.Sscanf(first, "%d.%d.%d", &ec[0], &ec[1], &ec[2]); err == nil {
			e.EnhancedCode, e.Message = ec, rest
		}
	}
	return e
}

// Attempts counts how often cmd was issued (refused or not).
func (s *Server) Attempts(cmd Command) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[cmd]
}

// Messages returns the mails accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns once n mails have arrived, or fails the test after timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.arrived:
		case <-deadline.C:
			t.Fatalf("smtptest: %d of %d mails arrived within %s", len(s.Messages()), n, timeout)
		}
	}
}

// next takes the scripted reply for cmd, if any, and counts the attempt.
func (s *Server) next(cmd Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[cmd]++
	if q := s.script[cmd]; len(q) > 0 {
		s.script[cmd] = q[1:]
		return q[0]
	}
	return nil
}

type session struct {
	s    *Server
	tls  bool
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Users == nil {
		return nil
	}
	if len(ss.s.opts.Mechanisms) == 0 {
		return []string{sasl.Plain}
	}
	return ss.s.opts.Mechanisms
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if !slices.Contains(ss.AuthMechanisms(), mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	check := func(identity, user, password string) error {
		if err := ss.s.next(CmdAuth); err != nil {
			return err
		}
		if want, ok := ss.s.opts.Users[user]; !ok || want != password || (identity != "" && identity != user) {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}
	if mech == sasl.Login {
		return &loginServer{check: check}, nil
	}
	return sasl.NewPlainServer(check), nil
}

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks: the
// user name (perhaps as the initial response), then the password.
type loginServer struct {
	check    func(identity, user, password string) error
	user     []byte
	haveUser bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case !l.haveUser && response == nil:
		return []byte("Username:"), false, nil
	case !l.haveUser:
		l.user, l.haveUser = response, true
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check("", string(l.user), string(response))
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := ss.s.next(CmdMail); err != nil {
		return err
	}
	if ss.s.opts.Users != nil && ss.user == "" {
		return Reply(530, "5.7.0 Authentication required")
	}
	if ss.s.opts.SendAs != nil && !ss.maySendAs(from) {
		return Reply(553, "5.7.1 Relaying not allowed: sender address is not the login or its alias")
	}
	ss.from = from
	return nil
}

func (ss *session) maySendAs(from string) bool {
	if strings.EqualFold(from, ss.user) {
		return true
	}
	for _, a := range ss.s.opts.SendAs[ss.user] {
		if strings.EqualFold(from, a) {
			return true
		}
	}
	return false
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.next(CmdRcpt); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.s.next(CmdData); err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	s.msgs = append(s.msgs, Message{From: ss.from, To: append([]string(nil), ss.to...), User: ss.user, TLS: ss.tls, Data: data})
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

func (s *Server) makeCert(host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	s.RootCAs = x509.NewCertPool()
	s.RootCAs.AddCert(leaf)
	s.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Header parses the message's header.
func (m Message) Header() (mail.Header, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, err
	}
	return msg.Header, nil
}

// Subject is the decoded Subject header.
func (m Message) Subject() (string, error) {
	h, err := m.Header()
	if err != nil {
		return "", err
	}
	return new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
}

// Text is the decoded body of a single-part text message (quoted-printable,
// base64 or plain), with CRLF turned into LF.
func (m Message) Text() (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return "", err
	}
	if ct := msg.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(mt, "text/") {
			return "", fmt.Errorf("smtptest: Content-Type %s is not text", mt)
		}
		if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
			return "", fmt.Errorf("smtptest: charset %s is not UTF-8", cs)
		}
	}
	var body io.Reader = msg.Body
	switch cte := strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "", "7bit", "8bit", "binary":
	default:
		return "", errors.New("smtptest: unknown Content-Transfer-Encoding " + cte)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}
