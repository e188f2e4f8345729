package ews

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/wording"
)

// Namespaces of EWS requests and answers.
const (
	nsSoap     = "http://schemas.xmlsoap.org/soap/envelope/"
	nsTypes    = "http://schemas.microsoft.com/exchange/services/2006/types"
	nsMessages = "http://schemas.microsoft.com/exchange/services/2006/messages"
	nsErrors   = "http://schemas.microsoft.com/exchange/services/2006/errors"
)

// DefaultVersion is the RequestServerVersion asked for when the endpoint
// names none: every Exchange from 2010 SP2 to 2019 (and Exchange Online)
// serves it, and it has all this source uses.
const DefaultVersion = "Exchange2010_SP2"

// Versions a request may name.
var Versions = []string{"Exchange2007_SP1", "Exchange2010", "Exchange2010_SP1", "Exchange2010_SP2", "Exchange2013", "Exchange2013_SP1", "Exchange2016"}

// MaxBackOff is the longest ErrorServerBusy back-off waited out inside one
// call; a longer one goes back to the engine as a retry after that time.
var MaxBackOff = 30 * time.Second

// MaxConcurrent bounds the requests in flight at once for one login on
// one server, across every session of the process: Exchange's default
// throttling policy refuses more than 27 per user (EWSMaxConcurrency), and
// a delegated job sends every mailbox's requests as the one admin.
var MaxConcurrent = 10

var (
	slotsMu sync.Mutex
	slots   = map[string]chan struct{}{}
)

// slot is the semaphore of one login on one server.
func (c *client) slot() chan struct{} {
	key := strings.ToLower(c.url + "|" + c.user)
	slotsMu.Lock()
	defer slotsMu.Unlock()
	ch := slots[key]
	if ch == nil || cap(ch) != MaxConcurrent {
		ch = make(chan struct{}, max(1, MaxConcurrent))
		slots[key] = ch
	}
	return ch
}

// busyRetries bounds how often one call waits out ErrorServerBusy.
const busyRetries = 8

// client speaks SOAP to one EWS URL as one login.
type client struct {
	url         string
	base        string // https://host[:port], for Autodiscover
	host        string
	user        string
	password    string
	version     string
	impersonate string // primary SMTP address of the mailbox, through ExchangeImpersonation
	delegate    string // or of the mailbox opened through FullAccess
	tr          *http.Transport
	http        *http.Client
	// app, for Exchange Online's app-only access, sends the application's
	// bearer token in place of a login (user is then its client id).
	app *appToken
}

func newClient(e mail.Endpoint) (*client, error) {
	bearer := e.Auth == "xoauth2"
	if bearer {
		if err := checkApp(e); err != nil {
			return nil, err
		}
	} else if e.User == "" || e.Password == "" {
		return nil, fault.New(fault.Account, "an EWS source needs a login (name, DOMAIN\\name or address) and its password", nil)
	}
	version := e.Version
	if version == "" {
		version = DefaultVersion
	}
	known := false
	for _, v := range Versions {
		known = known || v == version
	}
	if !known {
		return nil, fault.New(fault.Account, fmt.Sprintf("unknown Exchange version %q: want one of %s", version, strings.Join(Versions, ", ")), nil)
	}
	cfg, err := e.TLSConfig()
	if err != nil {
		return nil, fault.New(fault.Account, "the CA certificates given for the Exchange server", err)
	}
	// NTLM authenticates a connection, which HTTP/2 does not keep to one
	// request stream: IIS answers EWS over HTTP/1.1 only.
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}, ResponseHeaderTimeout: 5 * time.Minute}
	var rt http.RoundTripper = ntlmssp.Negotiator{RoundTripper: tr, AllowBasicAuth: e.Auth != "ntlm"}
	switch e.Auth {
	case "basic":
		rt = basicOnly{tr}
	case "xoauth2":
		rt = tr
	}
	path := e.Path
	if path == "" {
		path = "/EWS/Exchange.asmx"
	}
	host := e.Host
	if e.Port != 443 {
		host = e.Addr()
	}
	user := e.User
	if bearer {
		user = e.App.ClientID
	}
	if e.Domain != "" && !bearer && !strings.Contains(user, `\`) {
		name, _, _ := strings.Cut(user, "@")
		user = e.Domain + `\` + name
	}
	// Go checks the certificate against the URL's host, which Autodiscover
	// may change.
	cfg.ServerName = ""
	c := &client{url: "https://" + host + path, base: "https://" + host, host: e.Host, user: user, password: e.Password, version: version,
		impersonate: e.AuthzID, tr: tr,
		http: &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if bearer {
		c.app = &appToken{e: e}
	}
	return c, nil
}

// basicOnly sends Basic credentials with every request, for servers where
// NTLM is off (or a proxy in front cannot pass it).
type basicOnly struct{ rt http.RoundTripper }

func (b basicOnly) RoundTrip(r *http.Request) (*http.Response, error) { return b.rt.RoundTrip(r) }

func (c *client) close() { c.tr.CloseIdleConnections() }

// envelope wraps an operation's body with the headers EWS wants.
func (c *client) envelope(body string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>`)
	fmt.Fprintf(&b, `<soap:Envelope xmlns:soap="%s" xmlns:t="%s" xmlns:m="%s"><soap:Header>`, nsSoap, nsTypes, nsMessages)
	fmt.Fprintf(&b, `<t:RequestServerVersion Version="%s"/>`, c.version)
	if c.impersonate != "" {
		fmt.Fprintf(&b, `<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>%s</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`, esc(c.impersonate))
	}
	b.WriteString(`</soap:Header><soap:Body>`)
	b.WriteString(body)
	b.WriteString(`</soap:Body></soap:Envelope>`)
	return b.Bytes()
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// soapFault is a request-wide error: HTTP 500 with the response code in the detail.
type soapFault struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
	Detail struct {
		ResponseCode string    `xml:"http://schemas.microsoft.com/exchange/services/2006/errors ResponseCode"`
		Message      string    `xml:"http://schemas.microsoft.com/exchange/services/2006/errors Message"`
		MessageXML   *valueSet `xml:"http://schemas.microsoft.com/exchange/services/2006/types MessageXml"`
	} `xml:"detail"`
}

type valueSet struct {
	Values []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:",chardata"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/types Value"`
}

func (v *valueSet) get(name string) string {
	if v == nil {
		return ""
	}
	for _, x := range v.Values {
		if x.Name == name {
			return x.Value
		}
	}
	return ""
}

// responseError is an EWS response code other than NoError.
type responseError struct {
	Code, Text string
	BackOff    time.Duration
}

func (e *responseError) Error() string {
	if e.Text == "" {
		return e.Code
	}
	return e.Code + ": " + e.Text
}

func codeOf(err error) string {
	var re *responseError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// call sends one operation and decodes the element inside the SOAP body
// into out, waiting out ErrorServerBusy as Exchange asks.
func (c *client) call(ctx context.Context, op, body string, out any) error {
	return c.exchange(ctx, op, body, func(r io.Reader) error { return decodeEnvelope(r, out) })
}

// exchange sends one operation and hands the answer's body to read,
// waiting out ErrorServerBusy as Exchange asks.
func (c *client) exchange(ctx context.Context, op, body string, read func(io.Reader) error) error {
	payload := c.envelope(body)
	for attempt := 0; ; attempt++ {
		slot := c.slot()
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := c.post(ctx, op, payload, read)
		<-slot
		var re *responseError
		if !errors.As(err, &re) || re.Code != "ErrorServerBusy" {
			return err
		}
		wait := re.BackOff
		if wait <= 0 {
			wait = time.Second
		}
		if wait > MaxBackOff || attempt >= busyRetries {
			return fault.RetryAfterCoded(wait, wording.New("ews.busy", "code", fmt.Sprintf("ErrorServerBusy, back off %v", wait.Round(time.Millisecond))), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *client) post(ctx context.Context, op string, payload []byte, read func(io.Reader) error) error {
	var token string
	if c.app != nil {
		var err error
		if token, err = c.app.get(ctx); err != nil {
			return err
		}
	}
	resp, err := c.send(ctx, op, payload, token)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized && c.app != nil {
		// Once per request: a token Exchange refuses as soon as Entra ID
		// issued it is the application's permission problem.
		drain(resp)
		if token, err = c.app.fresh(ctx, token); err != nil {
			return err
		}
		if resp, err = c.send(ctx, op, payload, token); err != nil {
			return err
		}
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK, http.StatusInternalServerError:
	case http.StatusUnauthorized:
		if c.app != nil {
			return fault.New(fault.Account, c.tokenRefusedReason(), nil)
		}
		how := "NTLM"
		if _, isBasic := c.http.Transport.(basicOnly); isBasic {
			how = "Basic"
		}
		return fault.RefusedCoded(fault.BadCredentials, wording.New("ews.login.refused", "host", c.host, "user", c.user, "how", how), nil)
	case http.StatusForbidden:
		return fault.Coded(fault.Account, wording.New("ews.forbidden", "host", c.host, "user", c.user), nil)
	case http.StatusNotFound:
		return fault.New(fault.Account, fmt.Sprintf("no EWS at %s (HTTP 404): give the EWS URL, usually https://mail.example.com/EWS/Exchange.asmx", c.url), errNoEWS)
	case http.StatusFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return fault.New(fault.Account, fmt.Sprintf("%s redirects to %s: give that address as the EWS URL", c.url, resp.Header.Get("Location")), nil)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		wait := time.Duration(0)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			wait = time.Duration(s) * time.Second
		}
		return fault.RetryAfterCoded(wait, wording.New("ews.unavailable", "host", c.host, "status", strconv.Itoa(resp.StatusCode)), nil)
	default:
		return fmt.Errorf("EWS %s at %s: HTTP %s", op, c.host, resp.Status)
	}
	return read(resp.Body)
}

// send posts one operation with the login, or with token when the
// application's.
func (c *client) send(ctx context.Context, op string, payload []byte, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"http://schemas.microsoft.com/exchange/services/2006/messages/`+op+`"`)
	req.Header.Set("User-Agent", "banjia")
	if c.impersonate != "" {
		// Exchange 2013 and later route an impersonated request to the
		// member's mailbox server by this header; Exchange Online refuses
		// an app-only request without it.
		req.Header.Set("X-AnchorMailbox", c.impersonate)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(err)
	}
	return resp, nil
}

// drain reads an answer to the end, or the connection, and with it the
// NTLM login, is lost.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// decodeEnvelope reads the first element inside soap:Body into out, or a fault.
func decodeEnvelope(r io.Reader, out any) error {
	d := xml.NewDecoder(r)
	inBody := false
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return errors.New("EWS answer without a SOAP body")
			}
			return fmt.Errorf("reading the EWS answer: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Space == nsSoap && se.Name.Local == "Body" {
			inBody = true
			continue
		}
		if !inBody {
			if se.Name.Space == nsSoap && se.Name.Local == "Envelope" {
				continue
			}
			if err := d.Skip(); err != nil {
				return err
			}
			continue
		}
		if se.Name.Space == nsSoap && se.Name.Local == "Fault" {
			var f soapFault
			if err := d.DecodeElement(&f, &se); err != nil {
				return fmt.Errorf("reading an EWS fault: %w", err)
			}
			code := f.Detail.ResponseCode
			if code == "" {
				code = f.Code[strings.LastIndex(f.Code, ":")+1:]
			}
			text := f.Detail.Message
			if text == "" {
				text = f.String
			}
			re := &responseError{Code: code, Text: text}
			if ms, err := strconv.Atoi(f.Detail.MessageXML.get("BackOffMilliseconds")); err == nil {
				re.BackOff = time.Duration(ms) * time.Millisecond
			}
			return re
		}
		if err := d.DecodeElement(out, &se); err != nil {
			return fmt.Errorf("reading the EWS answer: %w", err)
		}
		return nil
	}
}

func (c *client) transportError(err error) error {
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ue), errors.As(err, &ve) && errors.As(ve.Err, &ue):
		return fault.New(fault.Account, fmt.Sprintf("the certificate of %s is not signed by a trusted authority (a self-signed Exchange certificate?): give its CA with --source-ca, or --insecure to skip the check", c.host), err)
	case errors.As(err, &he):
		return fault.New(fault.Account, fmt.Sprintf("the certificate of %s is for another name: use the name on the certificate in the EWS URL", c.host), err)
	case errors.As(err, &ce):
		return fault.New(fault.Account, fmt.Sprintf("the certificate of %s is not valid (expired?)", c.host), err)
	}
	return err
}

// err is the answer's own error, nil on success.
func (m *answer) err() error {
	if m.Class == "Success" || m.Code == "NoError" {
		return nil
	}
	re := &responseError{Code: m.Code, Text: m.Text}
	if ms, err := strconv.Atoi(m.XML.get("BackOffMilliseconds")); err == nil {
		re.BackOff = time.Duration(ms) * time.Millisecond
	}
	return re
}

// member is the mailbox opened for another, "" for one's own.
func (c *client) member() string {
	if c.impersonate != "" {
		return c.impersonate
	}
	return c.delegate
}

// classify turns an EWS error into one a person can act on.
func (c *client) classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	code := codeOf(err)
	admin := c.user
	switch code {
	case "ErrorImpersonateUserDenied", "ErrorImpersonationDenied":
		if c.app != nil {
			return fault.Coded(fault.Account, wording.New("ews.app.denied", "app", admin, "member", c.member()), err)
		}
		return fault.Coded(fault.Account, wording.New("ews.impersonation", "admin", admin, "member", c.member()), err)
	case "ErrorNonExistentMailbox", "ErrorMailboxNotFound", "ErrorInvalidSmtpAddress", "ErrorNoPublicFolderReplicaAvailable":
		who := c.member()
		if who == "" {
			who = c.user
		}
		return fault.Coded(fault.Account, wording.New("ews.nomailbox", "member", who, "host", c.host), err)
	case "ErrorAccessDenied":
		if c.app != nil {
			return fault.Coded(fault.Account, wording.New("ews.app.denied", "app", admin, "member", c.member()), err)
		}
		if c.delegate != "" {
			return fault.Coded(fault.Account, wording.New("ews.fullaccess.lost", "admin", admin, "member", c.delegate), err)
		}
		return fault.New(fault.Account, fmt.Sprintf("Exchange refused %s access to the mailbox (%s)", admin, code), err)
	case "ErrorMailboxMoveInProgress", "ErrorAccountDisabled":
		return fault.New(fault.Account, fmt.Sprintf("Exchange refused %s access to the mailbox (%s)", admin, code), err)
	case "ErrorInvalidServerVersion", "ErrorIncorrectSchemaVersion":
		return fault.New(fault.Account, fmt.Sprintf("Exchange at %s does not serve version %s: give the server's version with --ews-version", c.host, c.version), err)
	case "ErrorServerBusy", "ErrorTooManyObjectsOpened", "ErrorInternalServerTransientError", "ErrorMailboxStoreUnavailable", "ErrorConnectionFailed":
		return fault.RetryAfterCoded(0, wording.New("ews.busy", "code", code), err)
	}
	return fmt.Errorf("EWS %s: %w", op, err)
}
