// Package check walks an endpoint from name resolution to listing folders
// (banjia check, the portal's and the admin's "test the connection") and
// says, for the first step that fails, what went wrong and what to do.
package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources"
)

// Step is one stage of a connection check.
type Step struct {
	Name   string // dns, tcp, tls, greeting, login, folders
	OK     bool
	Detail string `json:",omitempty"`
	Hint   string `json:",omitempty"`
}

// Report is a whole check of one endpoint.
type Report struct {
	Endpoint string // without secrets
	OK       bool
	Steps    []Step
}

// StepTimeout bounds each network step of a check.
var StepTimeout = 8 * time.Second

// Check walks an endpoint from name resolution to listing folders and says,
// for the first stage that fails, what went wrong and what to do. Stages
// after a failure are not attempted.
func Check(ctx context.Context, e mail.Endpoint) *Report {
	r := &Report{Endpoint: e.String()}
	add := func(s Step) bool {
		r.Steps = append(r.Steps, s)
		return s.OK
	}
	portHint := "check the port: IMAP is 993 with TLS or 143 with STARTTLS; POP3 is 995 with TLS or 110 with STLS"

	// DNS
	if ip := net.ParseIP(e.Host); ip != nil {
		add(Step{Name: "dns", OK: true, Detail: "address " + ip.String()})
	} else {
		dctx, cancel := context.WithTimeout(ctx, StepTimeout)
		addrs, err := net.DefaultResolver.LookupHost(dctx, e.Host)
		cancel()
		if err != nil {
			add(Step{Name: "dns", Detail: fmt.Sprintf("cannot resolve host %q: %v", e.Host, err),
				Hint: "check the server name for typos; the provider's preset (banjia providers) has the right one"})
			return r
		}
		add(Step{Name: "dns", OK: true, Detail: strings.Join(addrs, ", ")})
	}

	// TCP
	dctx, cancel := context.WithTimeout(ctx, StepTimeout)
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", e.Addr())
	cancel()
	if err != nil {
		s := Step{Name: "tcp", Detail: fmt.Sprintf("cannot connect to %s: %v", e.Addr(), err), Hint: portHint}
		if errors.Is(err, syscall.ECONNREFUSED) {
			s.Detail = fmt.Sprintf("connection refused: nothing listens on %s", e.Addr())
		} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			s.Detail = fmt.Sprintf("no answer from %s within %s", e.Addr(), StepTimeout)
			s.Hint = "a firewall drops the connection, or the host is wrong"
		}
		add(s)
		return r
	}
	add(Step{Name: "tcp", OK: true, Detail: "connected to " + conn.RemoteAddr().String()})

	// TLS, for implicit-TLS schemes; STARTTLS/STLS is proven at login.
	implicit := strings.HasSuffix(e.Scheme, "s") && !strings.Contains(e.Scheme, "+") || e.Scheme == "ews"
	switch {
	case implicit:
		if !add(checkTLS(ctx, conn, e)) {
			return r
		}
	case strings.HasSuffix(e.Scheme, "+plain"):
		conn.Close()
		add(Step{Name: "tls", OK: true, Detail: "not used (plain connection, as asked)", Hint: "passwords cross the network unencrypted: only on a trusted network"})
	default:
		conn.Close()
		add(Step{Name: "tls", OK: true, Detail: "negotiated with STARTTLS/STLS at login"})
	}

	// Greeting and login, through the source itself.
	lctx, cancel := context.WithTimeout(ctx, 3*StepTimeout)
	defer cancel()
	src, err := sources.Open(lctx, e)
	if err != nil {
		reason := err.Error()
		lower := strings.ToLower(reason)
		switch {
		case strings.Contains(lower, "greeting") || strings.Contains(lower, "tls") || strings.Contains(lower, "starttls") || strings.Contains(lower, "stls"):
			add(Step{Name: "greeting", Detail: reason, Hint: portHint})
		default:
			add(Step{Name: "greeting", OK: true})
			add(Step{Name: "login", Detail: reason, Hint: loginHint(e, strings.ToLower(innermost(err).Error()))})
		}
		return r
	}
	defer src.Close()
	add(Step{Name: "greeting", OK: true})
	add(Step{Name: "login", OK: true, Detail: "logged in as " + e.User})

	folders, err := src.Folders(lctx)
	if err != nil {
		add(Step{Name: "folders", Detail: err.Error(), Hint: "the server accepted the login but would not list folders: is the mailbox usable?"})
		return r
	}
	var n uint64
	system := 0
	for _, f := range folders {
		if f.System != "" {
			system++ // left behind unless the job keeps them
			continue
		}
		n += uint64(f.Messages)
	}
	detail := fmt.Sprintf("%d folders, %d messages", len(folders)-system, n)
	if system > 0 {
		detail += fmt.Sprintf(" (and %d system folders, such as Exchange's Outbox and Sync Issues, left behind unless --system-folders)", system)
	}
	add(Step{Name: "folders", OK: true, Detail: detail})
	r.OK = true
	return r
}

func checkTLS(ctx context.Context, conn net.Conn, e mail.Endpoint) Step {
	defer conn.Close()
	cfg, err := e.TLSConfig()
	if err != nil {
		return Step{Name: "tls", Detail: err.Error(), Hint: "the --ca-file must hold PEM certificates"}
	}
	hctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	tc := tls.Client(conn, cfg)
	err = tc.HandshakeContext(hctx)
	if err == nil {
		st := tc.ConnectionState()
		detail := tls.VersionName(st.Version)
		if len(st.PeerCertificates) > 0 {
			c := st.PeerCertificates[0]
			detail += fmt.Sprintf(", certificate for %s, valid until %s", strings.Join(append([]string{c.Subject.CommonName}, c.DNSNames...), " "), c.NotAfter.Format("2006-01-02"))
		}
		if e.Insecure {
			detail += " (NOT verified: --insecure)"
		}
		return Step{Name: "tls", OK: true, Detail: detail}
	}
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var certErr *tls.CertificateVerificationError
	var invErr x509.CertificateInvalidError
	switch {
	case errors.As(err, &hostErr):
		return Step{Name: "tls", Detail: fmt.Sprintf("certificate mismatch: the certificate of %s is not valid for %q: %v", e.Addr(), e.Host, err),
			Hint: "use the host name the certificate names (the provider's official server name)"}
	case errors.As(err, &invErr):
		return Step{Name: "tls", Detail: fmt.Sprintf("the certificate of %s is invalid: %v", e.Addr(), err), Hint: "expired or not yet valid: tell the server's administrator"}
	case errors.As(err, &authErr), errors.As(err, &certErr):
		return Step{Name: "tls", Detail: fmt.Sprintf("the certificate of %s is not trusted (self-signed or unknown CA): %v", e.Addr(), err),
			Hint: "give the CA with --ca-file, or --insecure if you trust the network"}
	case strings.Contains(err.Error(), "first record does not look like a TLS handshake") || errors.As(err, new(tls.RecordHeaderError)):
		return Step{Name: "tls", Detail: fmt.Sprintf("%s does not speak TLS: it is a plain port", e.Addr()),
			Hint: "use the STARTTLS scheme (imap://, pop3://) on this port, or the TLS port (993 for IMAP, 995 for POP3)"}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return Step{Name: "tls", Detail: fmt.Sprintf("no TLS answer from %s within %s", e.Addr(), StepTimeout),
			Hint: "the port may be plain: try the STARTTLS scheme, or the TLS port"}
	}
	return Step{Name: "tls", Detail: fmt.Sprintf("TLS with %s failed: %v", e.Addr(), err)}
}

// innermost is the error at the bottom of a chain: the server's own words.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// loginHint reads the server's reply for what a person should do.
func loginHint(e mail.Endpoint, reason string) string {
	switch {
	case e.Scheme == "ews":
		// The EWS source's reasons already name the fix.
		return "check the login (name, DOMAIN\\name or address, --ews-domain), the password, and for a delegated job the admin's ApplicationImpersonation role and the member's address"
	case strings.Contains(reason, "disabled") || strings.Contains(reason, "not enabled") || strings.Contains(reason, "未开启") || strings.Contains(reason, "not open"):
		return "the protocol is disabled for this mailbox: enable IMAP/POP in the old mailbox's settings (or ask its provider)"
	case strings.Contains(reason, "locked") || strings.Contains(reason, "frozen") || strings.Contains(reason, "冻结") || strings.Contains(reason, "suspended"):
		return "the account is locked or frozen at the provider: unlock it there first"
	case strings.Contains(reason, "no permission") || strings.Contains(reason, "may not act"):
		return "the admin login has no delegation permission for this mailbox"
	case e.Hint != "":
		return e.Hint
	}
	return "check the user name and password; many providers want an authorization code (授权码) or app password for IMAP/POP"
}
