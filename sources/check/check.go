// Package check walks an endpoint from name resolution to listing folders
// (banjia check, the portal's and the admin's "test the connection") and
// says, for the first step that fails, what went wrong and what to do.
package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/wording"
)

// Step is one stage of a connection check.
type Step struct {
	Name   string // dns, tcp, tls, greeting, login, folders
	OK     bool
	Detail string `json:",omitempty"`
	Hint   string `json:",omitempty"`
	// DetailWhy and HintWhy are Detail and Hint as catalogue codes.
	DetailWhy *wording.Reason `json:",omitempty"`
	HintWhy   *wording.Reason `json:",omitempty"`
}

// step is a Step whose detail and hint come from the catalogue (either
// may be empty).
func step(name string, ok bool, detail, hint wording.Reason) Step {
	s := Step{Name: name, OK: ok, Detail: detail.String(), Hint: hint.String()}
	if detail.Coded() {
		s.DetailWhy = &detail
	}
	if hint.Coded() {
		s.HintWhy = &hint
	}
	return s
}

// NameIn is the step's name in lang.
func (s Step) NameIn(lang string) string { return wording.Text(lang, "check.step."+s.Name) }

// DetailIn is what the step found, in lang.
func (s Step) DetailIn(lang string) string {
	if s.DetailWhy != nil {
		return s.DetailWhy.In(lang)
	}
	return s.Detail
}

// HintIn is the step's advice, in lang.
func (s Step) HintIn(lang string) string {
	if s.HintWhy != nil {
		return s.HintWhy.In(lang)
	}
	return s.Hint
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
	portHint := wording.New("check.hint.port")
	none := wording.Reason{}

	// DNS
	if ip := net.ParseIP(e.Host); ip != nil {
		add(step("dns", true, wording.New("check.dns.ip", "ip", ip.String()), none))
	} else {
		dctx, cancel := context.WithTimeout(ctx, StepTimeout)
		addrs, err := net.DefaultResolver.LookupHost(dctx, e.Host)
		cancel()
		if err != nil {
			add(step("dns", false, wording.New("check.dns.fail", "host", e.Host, "err", err.Error()), wording.New("check.hint.dns")))
			return r
		}
		add(step("dns", true, wording.Plain(strings.Join(addrs, ", ")), none))
	}

	// TCP
	dctx, cancel := context.WithTimeout(ctx, StepTimeout)
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", e.Addr())
	cancel()
	if err != nil {
		detail, hint := wording.New("check.tcp.fail", "addr", e.Addr(), "err", err.Error()), portHint
		if errors.Is(err, syscall.ECONNREFUSED) {
			detail = wording.New("check.tcp.refused", "addr", e.Addr())
		} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			detail = wording.New("check.tcp.timeout", "addr", e.Addr(), "timeout", StepTimeout.String())
			hint = wording.New("check.hint.firewall")
		}
		add(step("tcp", false, detail, hint))
		return r
	}
	add(step("tcp", true, wording.New("check.tcp.ok", "addr", conn.RemoteAddr().String()), none))

	// TLS, for implicit-TLS schemes; STARTTLS/STLS is proven at login.
	implicit := strings.HasSuffix(e.Scheme, "s") && !strings.Contains(e.Scheme, "+") || e.Scheme == "ews"
	switch {
	case implicit:
		if !add(checkTLS(ctx, conn, e)) {
			return r
		}
	case strings.HasSuffix(e.Scheme, "+plain"):
		conn.Close()
		add(step("tls", true, wording.New("check.tls.plain"), wording.New("check.hint.plain")))
	default:
		conn.Close()
		add(step("tls", true, wording.New("check.tls.starttls"), none))
	}
	if e.Scheme == "ews" && e.Auth == "xoauth2" {
		appOnly(ctx, e, r, add)
		return r
	}

	// Greeting and login, through the source itself.
	lctx, cancel := context.WithTimeout(ctx, 3*StepTimeout)
	defer cancel()
	src, err := sources.Open(lctx, e)
	if err != nil {
		reason := err.Error()
		lower := strings.ToLower(reason)
		// The reason as the source words it, with the server's own
		// words after it (what err.Error() has after the reason).
		why := fault.WhyOf(err)
		switch {
		case !why.Coded() || !strings.HasPrefix(reason, why.String()):
			// Wrapped by words of its own: shown as written.
			why = wording.Plain(reason)
		case reason != why.String():
			why = wording.New("check.reason", "err", strings.TrimPrefix(reason, why.String()+": ")).Because(why)
		}
		switch {
		case strings.Contains(lower, "greeting") || strings.Contains(lower, "tls") || strings.Contains(lower, "starttls") || strings.Contains(lower, "stls"):
			add(step("greeting", false, why, portHint))
		default:
			add(step("greeting", true, none, none))
			add(step("login", false, why, loginHint(e, strings.ToLower(innermost(err).Error()))))
		}
		return r
	}
	defer src.Close()
	add(step("greeting", true, none, none))
	add(step("login", true, wording.New("check.login.ok", "user", e.User), none))

	r.OK = folders(lctx, src, add)
	return r
}

// folders counts the folders and messages a job would move: the last step.
func folders(ctx context.Context, src sources.Source, add func(Step) bool) bool {
	list, err := src.Folders(ctx)
	if err != nil {
		add(step("folders", false, wording.Plain(err.Error()), wording.New("check.hint.folders")))
		return false
	}
	var n uint64
	system := 0
	for _, f := range list {
		if f.System != "" {
			system++ // left behind unless the job keeps them
			continue
		}
		n += uint64(f.Messages)
	}
	found := wording.New("check.folders.ok", "folders", strconv.Itoa(len(list)-system), "messages", strconv.FormatUint(n, 10))
	if system > 0 {
		found = wording.New("check.folders.system", "folders", strconv.Itoa(len(list)-system), "messages", strconv.FormatUint(n, 10), "system", strconv.Itoa(system))
	}
	add(step("folders", true, found, wording.Reason{}))
	return true
}

func checkTLS(ctx context.Context, conn net.Conn, e mail.Endpoint) Step {
	defer conn.Close()
	cfg, err := e.TLSConfig()
	if err != nil {
		return step("tls", false, wording.Plain(err.Error()), wording.New("check.hint.cafile"))
	}
	hctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	tc := tls.Client(conn, cfg)
	err = tc.HandshakeContext(hctx)
	if err == nil {
		st := tc.ConnectionState()
		if len(st.PeerCertificates) == 0 {
			return step("tls", true, wording.Plain(tls.VersionName(st.Version)), wording.Reason{})
		}
		c := st.PeerCertificates[0]
		unverified := ""
		if e.Insecure {
			unverified = " (NOT verified: --insecure)"
		}
		return step("tls", true, wording.New("check.tls.ok", "version", tls.VersionName(st.Version),
			"names", strings.Join(append([]string{c.Subject.CommonName}, c.DNSNames...), " "),
			"until", c.NotAfter.Format("2006-01-02"), "unverified", unverified), wording.Reason{})
	}
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var certErr *tls.CertificateVerificationError
	var invErr x509.CertificateInvalidError
	switch {
	case errors.As(err, &hostErr):
		return step("tls", false, wording.New("check.tls.name", "addr", e.Addr(), "host", e.Host, "err", err.Error()), wording.New("check.hint.certname"))
	case errors.As(err, &invErr):
		return step("tls", false, wording.New("check.tls.invalid", "addr", e.Addr(), "err", err.Error()), wording.New("check.hint.expired"))
	case errors.As(err, &authErr), errors.As(err, &certErr):
		return step("tls", false, wording.New("check.tls.untrusted", "addr", e.Addr(), "err", err.Error()), wording.New("check.hint.untrusted"))
	case strings.Contains(err.Error(), "first record does not look like a TLS handshake") || errors.As(err, new(tls.RecordHeaderError)):
		return step("tls", false, wording.New("check.tls.plainport", "addr", e.Addr()), wording.New("check.hint.tlsport"))
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return step("tls", false, wording.New("check.tls.timeout", "addr", e.Addr(), "timeout", StepTimeout.String()), wording.New("check.hint.tlstimeout"))
	}
	return step("tls", false, wording.New("check.tls.fail", "addr", e.Addr(), "err", err.Error()), wording.Reason{})
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
func loginHint(e mail.Endpoint, reason string) wording.Reason {
	switch {
	case e.Scheme == "ews":
		// The EWS source's reasons already name the fix.
		return wording.New("check.hint.ews")
	case strings.Contains(reason, "disabled") || strings.Contains(reason, "not enabled") || strings.Contains(reason, "未开启") || strings.Contains(reason, "not open"):
		return wording.New("check.hint.disabled")
	case strings.Contains(reason, "locked") || strings.Contains(reason, "frozen") || strings.Contains(reason, "冻结") || strings.Contains(reason, "suspended"):
		return wording.New("check.hint.locked")
	case strings.Contains(reason, "no permission") || strings.Contains(reason, "may not act"):
		return wording.New("check.hint.delegate")
	case e.Hint != "":
		return wording.Plain(e.Hint)
	}
	return wording.New("check.hint.login")
}
