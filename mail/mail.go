// Package mail is the floor every other package stands on: where a mail
// server is and who logs in (Endpoint, Delegation), and what a mailbox is
// made of (Folder, Message, Body). Sources, sinks and the state file speak
// these words; none of them imports another for it.
package mail

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Special-use attributes (RFC 6154) as sources report them.
const (
	SpecialNone    = ""
	SpecialSent    = `\Sent`
	SpecialDrafts  = `\Drafts`
	SpecialTrash   = `\Trash`
	SpecialJunk    = `\Junk`
	SpecialArchive = `\Archive`
	SpecialAll     = `\All`
	SpecialFlagged = `\Flagged`
)

// Folder is one folder of a source mailbox.
type Folder struct {
	// Name is the full UTF-8 name as the source spells it, with Delim between levels.
	Name string
	// Delim is the hierarchy delimiter; 0 when the source has no hierarchy.
	Delim rune
	// Prefix is the personal namespace's prefix that Name begins with
	// (RFC 2342: "INBOX." on Courier), which is not a level of the folder's
	// own: "INBOX.Sent" there is "Sent" anywhere else.
	Prefix string
	// Unsubscribed says the member unsubscribed the folder (IMAP LSUB);
	// sources without subscriptions leave it false.
	Unsubscribed bool
	// SpecialUse is one of the Special* constants.
	SpecialUse string
	// Validity changes when the source renumbers the folder's keys
	// (IMAP UIDVALIDITY); a change means every checkpoint of the folder is void.
	Validity uint64
	// Messages is the number of messages the source reports, when it knows.
	Messages uint32
	// UIDNext is the next key the source will assign, when it knows; it lets a
	// re-run skip a folder whose messages are all copied without listing them.
	UIDNext uint32
	// System, when set, says why the source takes the folder for one of its
	// server's system folders rather than mail (Exchange's Outbox, Sync
	// Issues): a job leaves it behind unless told to keep system folders.
	System string `json:",omitempty"`
}

// Message is the metadata of one source message, known before its body is read.
type Message struct {
	// UID is the message's numeric key within the folder's Validity; ascending
	// in arrival order. Sources without numeric keys leave it 0 and set Key.
	UID uint32
	// Key is the stable string key of sources without numeric ones (POP3 UIDL,
	// Graph ids).
	Key string
	// Size is the exact size in bytes of the body the source will stream.
	Size int64
	// Flags are IMAP flags: system flags (\Seen ...) and keywords.
	Flags []string
	// Date is the INTERNALDATE (arrival time).
	Date time.Time
	// ID identifies the same message across folders (Gmail labels): the
	// Message-ID and size; empty when unknown. Filled by Identifier.
	ID string `json:",omitempty"`
}

// Body is one message body being streamed. Read it to the end (or not at all);
// Size is exact.
type Body struct {
	Message
	io.Reader
}

// Endpoint says where and as whom to connect. It is shared by sources and
// sinks since both speak to mail servers the same way.
type Endpoint struct {
	// Scheme is "imaps" (implicit TLS), "imap" (STARTTLS required) or
	// "imap+plain" (no TLS: only when asked for).
	Scheme string
	Host   string
	Port   int
	// User and Password log in. Password never appears in String().
	User     string
	Password string `json:"-"`
	// AuthzID, when set, asks to act as this user while authenticating as
	// User (SASL PLAIN authorization identity; Dovecot master users).
	AuthzID string
	// Auth is "plain" (SASL PLAIN), "login" (LOGIN command) or "" (best offered).
	Auth string
	// Insecure skips TLS certificate verification.
	Insecure bool
	// Delegated says User is a migration admin acting for the member (see
	// Delegation), so a refused login is the admin's permission problem.
	Delegated bool `json:",omitempty"`
	// App, for Auth "xoauth2", is the application whose token logs in.
	App *App `json:",omitempty"`
	// Hint is what to tell a person when login fails (from a provider preset).
	Hint string `json:",omitempty"`
	// Tenant is the Entra ID tenant (id or primary domain) of app-only
	// sources (Microsoft Graph): User is then the app's client id, Password
	// its client secret and AuthzID the mailbox read.
	Tenant string `json:",omitempty"`
	// RootCAs, if set, replaces the system roots (PEM); used by tests and
	// private CAs. Kept with the job, since it is public.
	RootCAs []byte `json:",omitempty"`
	// Path is the URL path of sources spoken over HTTPS (EWS:
	// /EWS/Exchange.asmx when empty).
	Path string `json:",omitempty"`
	// Version is the protocol version asked for (EWS RequestServerVersion,
	// Exchange2010_SP2 when empty).
	Version string `json:",omitempty"`
	// Domain is the Windows (NetBIOS) domain of NTLM logins given as a bare
	// name: EWS then logs in as DOMAIN\name.
	Domain string `json:",omitempty"`
}

// TLSConfig is the TLS configuration for the endpoint: verification on
// unless the admin said otherwise, RootCAs replacing the system roots.
func (e Endpoint) TLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: e.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: e.Insecure}
	if len(e.RootCAs) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(e.RootCAs) {
			return nil, fmt.Errorf("no certificate found in the given CA PEM")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Addr is host:port.
func (e Endpoint) Addr() string { return fmt.Sprintf("%s:%d", e.Host, e.Port) }

// String is the endpoint as a URL without any secret.
func (e Endpoint) String() string {
	u := url.URL{Scheme: e.Scheme, Host: e.Addr()}
	if e.User != "" {
		u.User = url.User(e.User)
	}
	return u.String()
}

// DefaultPorts by scheme.
var DefaultPorts = map[string]int{"imaps": 993, "imap": 143, "imap+plain": 143, "pop3s": 995, "pop3": 110, "pop3+plain": 110, "graph": 443, "ews": 443}

// ewsPath is where Exchange serves EWS.
const ewsPath = "/EWS/Exchange.asmx"

// ParseEndpoint reads a URL such as imaps://user@host:993. A password in the
// URL is refused so that it cannot end up in shell history or process lists.
func ParseEndpoint(raw string) (Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %v", redactURL(raw), err)
	}
	if u.Scheme == "" || u.Host == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: want a URL like imaps://user@mail.example.com:993", redactURL(raw))
	}
	e := Endpoint{Scheme: strings.ToLower(u.Scheme), Host: u.Hostname()}
	if e.Scheme == "https" {
		// An EWS URL as Exchange's admins write it.
		if !strings.EqualFold(strings.TrimSuffix(u.Path, "/"), ewsPath) {
			return Endpoint{}, fmt.Errorf("endpoint %q: an https URL must be Exchange's EWS URL, e.g. https://mail.example.com%s", redactURL(raw), ewsPath)
		}
		e.Scheme = "ews"
	}
	if e.Scheme == "ews" && u.Path != "" && u.Path != "/" && !strings.EqualFold(u.Path, ewsPath) {
		e.Path = u.Path
	}
	if e.Host == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: no host name", redactURL(raw))
	}
	def, ok := DefaultPorts[e.Scheme]
	if !ok {
		return Endpoint{}, fmt.Errorf("endpoint %q: unknown scheme %q (known: %s)", redactURL(raw), u.Scheme, strings.Join(knownSchemes(), ", "))
	}
	e.Port = def
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n <= 0 || n > 65535 {
			return Endpoint{}, fmt.Errorf("endpoint %q: bad port %q", redactURL(raw), p)
		}
		e.Port = n
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return Endpoint{}, fmt.Errorf("endpoint %q: do not put the password in the URL; use a password file, an environment variable or the prompt", redactURL(raw))
		}
		e.User = u.User.Username()
	}
	q := u.Query()
	e.Auth = strings.ToLower(q.Get("auth"))
	switch e.Auth {
	case "", "plain", "login":
	case "ntlm", "basic":
		if e.Scheme != "ews" {
			return Endpoint{}, fmt.Errorf("endpoint %q: auth=%q is for EWS (ews://)", redactURL(raw), e.Auth)
		}
	default:
		return Endpoint{}, fmt.Errorf("endpoint %q: auth=%q: want plain or login", redactURL(raw), e.Auth)
	}
	e.AuthzID = q.Get("authzid")
	e.Tenant = q.Get("tenant")
	if e.Scheme == "ews" {
		e.Version, e.Domain = q.Get("version"), q.Get("domain")
		switch e.Auth {
		case "plain", "login":
			return Endpoint{}, fmt.Errorf("endpoint %q: auth=%q: EWS takes auth=ntlm or auth=basic", redactURL(raw), e.Auth)
		}
	}
	if v := q.Get("insecure"); v == "1" || v == "true" {
		e.Insecure = true
	}
	return e, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.Index(raw, "@"); i >= 0 {
			if j := strings.Index(raw, "://"); j >= 0 && j < i {
				return raw[:j+3] + "***" + raw[i:]
			}
		}
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return u.String()
}

func knownSchemes() []string {
	var out []string
	for s := range DefaultPorts {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// ErrValidityChanged says a folder's keys were renumbered since it was listed
// (IMAP UIDVALIDITY changed): the folder must be listed again.
var ErrValidityChanged = errors.New("the folder was renumbered (UIDVALIDITY changed) since it was listed")

// MessageError is returned by Fetch when one message cannot be read at all
// (too large for the source to hand over, say): the session is still fine
// and the engine fails that message alone and fetches the rest.
type MessageError struct {
	Message Message
	Err     error
}

func (e *MessageError) Error() string { return e.Err.Error() }
func (e *MessageError) Unwrap() error { return e.Err }
