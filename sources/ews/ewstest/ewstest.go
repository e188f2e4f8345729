// Package ewstest is an Exchange Web Services emulator for tests, strict
// where Exchange 2010 SP2 is strict: SOAP 1.1 with EWS's own namespaces, the
// RequestServerVersion header, NTLMv2 (or Basic) enforced by an IIS-like
// front end that binds NTLM to the connection, FindFolder, GetFolder,
// FindItem paged with IndexedPageItemView and refused above the throttling
// policy's EWSFindCountLimit, GetItem with MIME content, ErrorServerBusy with
// BackOffMilliseconds (and a count of clients that came back too early), and
// ExchangeImpersonation allowed only to accounts with the
// ApplicationImpersonation role. With an Issuer it also plays Exchange
// Online's app-only access: a bearer token the issuer gave (and has not
// expired) is accepted only with ExchangeImpersonation and an
// X-AnchorMailbox header naming the same mailbox.
package ewstest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
)

// Namespaces of EWS.
const (
	NSSoap     = "http://schemas.xmlsoap.org/soap/envelope/"
	NSTypes    = "http://schemas.microsoft.com/exchange/services/2006/types"
	NSMessages = "http://schemas.microsoft.com/exchange/services/2006/messages"
	NSErrors   = "http://schemas.microsoft.com/exchange/services/2006/errors"
)

// Path is where EWS listens on every Exchange server.
const Path = "/EWS/Exchange.asmx"

// Message is one item. A nil MIME is an item Exchange cannot convert to
// MIME (GetItem answers ErrorMimeContentConversionFailed).
type Message struct {
	ID       string
	MIME     []byte
	Received time.Time
	Read     bool
	Draft    bool
	Flagged  bool
	// LastVerb is PR_LAST_VERB_EXECUTED: 102 replied, 103 replied to all, 104 forwarded.
	LastVerb   int
	Categories []string
	// Class is the item class, IPM.Note by default.
	Class string

	created, seq int64 // sequence numbers of its creation and last change
}

// Folder is one folder under the mailbox's root (msgfolderroot).
type Folder struct {
	Name string
	// WellKnown is the distinguished folder id (inbox, sentitems, ...).
	WellKnown string
	// Class is the folder class, IPF.Note by default (IPF.Appointment,
	// IPF.Contact, IPF.Task, IPF.StickyNote are not mail).
	Class    string
	Search   bool
	Messages []*Message
	Children []*Folder
	ID       string

	gone []tombstone
}

// Mailbox is one mailbox, by its primary SMTP address.
type Mailbox struct {
	SMTP    string
	Folders []*Folder
	rootID  string
}

// Account is an Active Directory account that may log in.
type Account struct {
	// Name is the sAMAccountName; UPN the user principal name (name@domain).
	Name, UPN, Password string
	// Mailbox is the account's own mailbox, if any.
	Mailbox string
	// Impersonate says the account holds the ApplicationImpersonation role.
	Impersonate bool
	// FullAccess lists the mailboxes the account may open as a delegate
	// (Add-MailboxPermission -AccessRights FullAccess).
	FullAccess []string
}

// Stats counts what clients did.
type Stats struct {
	Requests map[string]int
	// Handshakes counts NTLM logins completed; Basic counts Basic logins.
	Handshakes, Basic int
	// Busy counts ErrorServerBusy answers; Early the requests that came
	// back before the back-off they were given.
	Busy, Early int
	// Versions counts the RequestServerVersion values seen.
	Versions map[string]int
	// MaxInFlight is the most requests of one account in flight at once;
	// OverConcurrency counts those refused for it.
	MaxInFlight, OverConcurrency int
	// PagesRefused counts pages refused as above FindCountLimit.
	PagesRefused int
	// Impersonated counts requests made through ExchangeImpersonation;
	// Delegated the folders named in another's mailbox (FullAccess).
	Impersonated, Delegated int
	// MaxBatch is the largest GetItem batch; MIMEItems counts the items
	// whose MIME content was sent.
	MaxBatch, MIMEItems int
	// Bearer counts requests authenticated by an application's token;
	// Expired the tokens refused with 401 (unknown or expired);
	// NoAnchor the app-only requests refused for a missing or wrong
	// X-AnchorMailbox or a missing ExchangeImpersonation.
	Bearer, Expired, NoAnchor int
}

// Issuer says which bearer tokens are good: those an OAuth authority
// issued and that have not expired (graphtest's Entra ID does).
type Issuer interface {
	Valid(token string) bool
}

// Server is the emulator.
type Server struct {
	// Domain is the NetBIOS domain of the accounts (CONTOSO).
	Domain string
	// Auth is "ntlm" (the default), "basic" or "both".
	Auth string
	// FindCountLimit is the throttling policy's EWSFindCountLimit: a page
	// bigger than it is refused.
	FindCountLimit int
	// BusyEvery, when > 0, answers every BusyEvery-th request of an
	// account with ErrorServerBusy and a back-off of BackOff.
	BusyEvery int
	BackOff   time.Duration
	// MaxConcurrency is the throttling policy's EWSMaxConcurrency: the
	// requests of one account in flight at once; one more is answered
	// ErrorServerBusy. Latency holds every request that long.
	MaxConcurrency int
	Latency        time.Duration

	// Issuer, when set, makes the server accept app-only bearer tokens, as
	// Exchange Online does, beside the logins of Auth.
	Issuer Issuer
	// AppScope, when set, is the management scope of the application's
	// RBAC for Applications role assignment: the mailboxes its tokens may
	// impersonate (all when nil, as with full_access_as_app).
	AppScope []string

	// OnRequest, when set, is called before each EWS request is
	// authenticated, with how many came before it: a test acts at a
	// point of the run the server decides (a token revoked mid-copy)
	// rather than at a moment a poll guesses.
	OnRequest func(n int)

	// EWSPath is where EWS listens (Path by default); Autodiscover
	// (/autodiscover/autodiscover.xml) tells clients.
	EWSPath string

	CA   []byte
	Host string
	Port int

	srv       *httptest.Server
	mu        sync.Mutex
	requests  int // EWS requests seen (OnRequest)
	accounts  []*Account
	mailboxes map[string]*Mailbox
	folders   map[string]*Folder
	parent    map[string]string // folder id -> parent folder id
	owner     map[string]*Mailbox
	items     map[string]*Folder // item id -> folder
	count     map[string]int     // account -> requests
	until     map[string]time.Time
	inFlight  map[string]int
	seq       int64
	stats     Stats
}

type connKey struct{}

// conn is what IIS remembers of one TCP connection: NTLM authenticates the
// connection, not the request.
type conn struct {
	mu        sync.Mutex
	challenge *[8]byte
	user      *Account
}

// New starts an emulator that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{Domain: "CONTOSO", FindCountLimit: 1000, BackOff: 200 * time.Millisecond,
		mailboxes: map[string]*Mailbox{}, folders: map[string]*Folder{}, parent: map[string]string{},
		owner: map[string]*Mailbox{}, items: map[string]*Folder{}, count: map[string]int{}, until: map[string]time.Time{}, inFlight: map[string]int{}, MaxConcurrency: 27}
	s.ResetStats()
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// NTLM needs HTTP/1.1: it authenticates a connection.
	s.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &conn{})
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.CA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	u, _ := url.Parse(s.srv.URL)
	s.Host = u.Hostname()
	s.Port, _ = strconv.Atoi(u.Port())
	return s
}

// URL is the EWS URL.
func (s *Server) URL() string { return s.srv.URL + s.ewsPath() }

func (s *Server) ewsPath() string {
	if s.EWSPath != "" {
		return s.EWSPath
	}
	return Path
}

// Endpoint is an EWS source endpoint logging in as login; with mailbox set
// it opens that mailbox through ExchangeImpersonation.
func (s *Server) Endpoint(login, password, mailbox string) mail.Endpoint {
	return mail.Endpoint{Scheme: "ews", Host: s.Host, Port: s.Port, User: login, Password: password,
		AuthzID: mailbox, RootCAs: s.CA}
}

// AddAccount adds an account that may log in.
func (s *Server) AddAccount(a *Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts = append(s.accounts, a)
}

// AddMailbox seeds a mailbox; ids are filled in.
func (s *Server) AddMailbox(m *Mailbox) *Mailbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.rootID = newID("AQMk")
	s.mailboxes[strings.ToLower(m.SMTP)] = m
	s.owner[m.rootID] = m
	var walk func(parent string, fs []*Folder)
	walk = func(parent string, fs []*Folder) {
		for _, f := range fs {
			if f.ID == "" {
				f.ID = newID("AQMk")
			}
			s.folders[f.ID], s.parent[f.ID], s.owner[f.ID] = f, parent, m
			for _, msg := range f.Messages {
				s.initItem(f, msg)
			}
			walk(f.ID, f.Children)
		}
	}
	walk(m.rootID, m.Folders)
	return m
}

func (s *Server) initItem(f *Folder, m *Message) {
	if m.ID == "" {
		m.ID = newID("AAMk")
	}
	if m.Class == "" {
		m.Class = "IPM.Note"
	}
	s.items[m.ID] = f
	s.touch(m, true)
}

// Deliver adds messages to the folder at the "/"-separated path of mailbox.
func (s *Server) Deliver(mailbox, path string, msgs ...*Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mailboxes[strings.ToLower(mailbox)]
	fs := m.Folders
	var f *Folder
	for _, name := range strings.Split(path, "/") {
		f = nil
		for _, c := range fs {
			if c.Name == name {
				f = c
			}
		}
		if f == nil {
			panic("ewstest: no folder " + path)
		}
		fs = f.Children
	}
	for _, msg := range msgs {
		s.initItem(f, msg)
		f.Messages = append(f.Messages, msg)
	}
}

// Stats is a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests, st.Versions = map[string]int{}, map[string]int{}
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	for k, v := range s.stats.Versions {
		st.Versions[k] = v
	}
	return st
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{Requests: map[string]int{}, Versions: map[string]int{}}
}

func newID(prefix string) string {
	b := make([]byte, 30)
	rand.Read(b)
	return prefix + base64.StdEncoding.EncodeToString(b)
}

// ---- the IIS front end ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.EqualFold(r.URL.Path, AutodiscoverPath) && r.Method == http.MethodPost {
		if acct := s.authenticate(w, r); acct != nil {
			s.autodiscover(w, r)
		}
		return
	}
	if r.URL.Path != s.ewsPath() {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "EWS takes POST", http.StatusMethodNotAllowed)
		return
	}
	if s.OnRequest != nil {
		s.mu.Lock()
		n := s.requests
		s.requests++
		s.mu.Unlock()
		s.OnRequest(n)
	}
	acct := s.authenticate(w, r)
	if acct == nil {
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		s.fault(w, "ErrorInvalidRequest", "Content-Type must be text/xml for SOAP 1.1, not "+ct, nil)
		return
	}
	s.mu.Lock()
	s.inFlight[acct.Name]++
	n := s.inFlight[acct.Name]
	s.stats.MaxInFlight = max(s.stats.MaxInFlight, n)
	over := s.MaxConcurrency > 0 && n > s.MaxConcurrency
	if over {
		s.stats.OverConcurrency++
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight[acct.Name]--
		s.mu.Unlock()
	}()
	if over {
		io.Copy(io.Discard, r.Body)
		s.fault(w, "ErrorServerBusy", "The server cannot service this request right now. Try again later.",
			map[string]string{"BackOffMilliseconds": "100"})
		return
	}
	time.Sleep(s.Latency)
	var env request
	if err := xml.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&env); err != nil {
		s.fault(w, "ErrorSchemaValidation", "The request failed schema validation: "+err.Error(), nil)
		return
	}
	if acct == appAccount && !s.anchored(w, r, &env) {
		return
	}
	s.soap(w, acct, &env)
}

// authenticate runs the NTLM or Basic exchange; nil means it answered.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) *Account {
	c := r.Context().Value(connKey{}).(*conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	h := r.Header.Get("Authorization")
	ntlmOK, basicOK := s.Auth != "basic", s.Auth == "basic" || s.Auth == "both"
	deny := func() *Account {
		io.Copy(io.Discard, r.Body)
		if ntlmOK {
			w.Header().Add("WWW-Authenticate", "Negotiate")
			w.Header().Add("WWW-Authenticate", "NTLM")
		}
		if basicOK {
			w.Header().Add("WWW-Authenticate", `Basic realm="`+s.Host+`"`)
		}
		if s.Issuer != nil {
			w.Header().Add("WWW-Authenticate", "Bearer")
		}
		w.WriteHeader(http.StatusUnauthorized)
		return nil
	}
	scheme, token, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer") && s.Issuer != nil:
		if !s.Issuer.Valid(token) {
			io.Copy(io.Discard, r.Body)
			s.mu.Lock()
			s.stats.Expired++
			s.mu.Unlock()
			// As Exchange Online answers an expired or foreign token.
			w.Header().Set("WWW-Authenticate", `Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", error="invalid_token"`)
			w.Header().Set("x-ms-diagnostics", `2000001;reason="The token has expired or is not valid.";error_category="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		}
		s.mu.Lock()
		s.stats.Bearer++
		s.mu.Unlock()
		return appAccount
	case h == "":
		if c.user != nil {
			return c.user
		}
		return deny()
	case strings.EqualFold(scheme, "Basic") && basicOK:
		raw, err := base64.StdEncoding.DecodeString(token)
		if err != nil {
			return deny()
		}
		name, pass, _ := strings.Cut(string(raw), ":")
		a := s.account(name)
		if a == nil || a.Password != pass {
			return deny()
		}
		s.mu.Lock()
		s.stats.Basic++
		s.mu.Unlock()
		return a
	case (strings.EqualFold(scheme, "NTLM") || strings.EqualFold(scheme, "Negotiate")) && ntlmOK:
		msg, err := base64.StdEncoding.DecodeString(token)
		if err != nil {
			return deny()
		}
		switch messageType(msg) {
		case 1:
			io.Copy(io.Discard, r.Body)
			ch, server := challenge(s.Domain)
			c.challenge, c.user = &server, nil
			w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(ch))
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		case 3:
			server := c.challenge
			c.challenge = nil
			if server == nil {
				return deny() // an AUTHENTICATE on a connection that was never challenged
			}
			am, err := parseAuthenticate(msg)
			if err != nil {
				return deny()
			}
			name := am.User
			if am.Domain != "" {
				if !strings.EqualFold(am.Domain, s.Domain) {
					return deny()
				}
				name = am.Domain + `\` + am.User
			}
			a := s.account(name)
			if a == nil || !am.verify(a.Password, *server) {
				return deny()
			}
			c.user = a
			s.mu.Lock()
			s.stats.Handshakes++
			s.mu.Unlock()
			return a
		}
	}
	return deny()
}

// appAccount is who an app-only token acts as: an application holding
// full_access_as_app, which opens any mailbox through impersonation and
// none without it.
var appAccount = &Account{Name: "application", Impersonate: true}

// anchored checks what Exchange Online wants of an app-only request: the
// ExchangeImpersonation header, and X-AnchorMailbox naming the same mailbox
// (it routes the request to the mailbox's server before the SOAP is read).
func (s *Server) anchored(w http.ResponseWriter, r *http.Request, env *request) bool {
	anchor := r.Header.Get("X-AnchorMailbox")
	var code, text string
	switch imp := env.Header.Impersonation; {
	case imp == nil:
		code, text = "ErrorInvalidExchangeImpersonationHeaderData", "ExchangeImpersonation SOAP header must be present for this type of OAuth token."
	case anchor == "":
		code, text = "ErrorMissingEmailAddress", "The X-AnchorMailbox header is required for an app-only token."
	case !strings.EqualFold(anchor, imp.SID.SMTP):
		code, text = "ErrorInvalidRequest", "The X-AnchorMailbox header does not name the impersonated mailbox."
	default:
		return true
	}
	s.mu.Lock()
	s.stats.NoAnchor++
	s.mu.Unlock()
	s.fault(w, code, text, nil)
	return false
}

// account finds an account by DOMAIN\name, UPN or bare name.
func (s *Server) account(login string) *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, n, ok := strings.Cut(login, `\`); ok {
		if !strings.EqualFold(d, s.Domain) {
			return nil
		}
		login = n
	}
	for _, a := range s.accounts {
		if strings.EqualFold(a.Name, login) || (a.UPN != "" && strings.EqualFold(a.UPN, login)) {
			return a
		}
	}
	return nil
}

// ---- SOAP ----

type request struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Header  struct {
		Version *struct {
			Version string `xml:"Version,attr"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types RequestServerVersion"`
		Impersonation *struct {
			SID struct {
				SMTP string `xml:"http://schemas.microsoft.com/exchange/services/2006/types PrimarySmtpAddress"`
			} `xml:"http://schemas.microsoft.com/exchange/services/2006/types ConnectingSID"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types ExchangeImpersonation"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
	Body struct {
		FindFolder *findFolder      `xml:"http://schemas.microsoft.com/exchange/services/2006/messages FindFolder"`
		GetFolder  *getFolder       `xml:"http://schemas.microsoft.com/exchange/services/2006/messages GetFolder"`
		FindItem   *findItem        `xml:"http://schemas.microsoft.com/exchange/services/2006/messages FindItem"`
		GetItem    *getItem         `xml:"http://schemas.microsoft.com/exchange/services/2006/messages GetItem"`
		Sync       *syncFolderItems `xml:"http://schemas.microsoft.com/exchange/services/2006/messages SyncFolderItems"`
		Other      []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

type shape struct {
	BaseShape   string `xml:"http://schemas.microsoft.com/exchange/services/2006/types BaseShape"`
	IncludeMIME bool   `xml:"http://schemas.microsoft.com/exchange/services/2006/types IncludeMimeContent"`
	Additional  struct {
		Fields []struct {
			URI string `xml:"FieldURI,attr"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types FieldURI"`
		Extended []struct {
			Tag  string `xml:"PropertyTag,attr"`
			Type string `xml:"PropertyType,attr"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types ExtendedFieldURI"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/types AdditionalProperties"`
}

func (sh shape) has(uri string) bool {
	for _, f := range sh.Additional.Fields {
		if f.URI == uri {
			return true
		}
	}
	return false
}

func (sh shape) hasExtended(tag string) bool {
	for _, f := range sh.Additional.Extended {
		if n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(f.Tag), "0x"), 16, 32); err == nil && fmt.Sprintf("0x%04x", n) == tag && f.Type == "Integer" {
			return true
		}
	}
	return false
}

type view struct {
	Max       *int   `xml:"MaxEntriesReturned,attr"`
	Offset    int    `xml:"Offset,attr"`
	BasePoint string `xml:"BasePoint,attr"`
}

type folderIDs struct {
	Distinguished []struct {
		ID      string `xml:"Id,attr"`
		Mailbox *struct {
			Email string `xml:"http://schemas.microsoft.com/exchange/services/2006/types EmailAddress"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types Mailbox"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/types DistinguishedFolderId"`
	IDs []struct {
		ID string `xml:"Id,attr"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/types FolderId"`
}

type findFolder struct {
	Traversal string     `xml:"Traversal,attr"`
	Shape     *shape     `xml:"http://schemas.microsoft.com/exchange/services/2006/messages FolderShape"`
	View      *view      `xml:"http://schemas.microsoft.com/exchange/services/2006/messages IndexedPageFolderView"`
	Parents   *folderIDs `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ParentFolderIds"`
}

type getFolder struct {
	Shape *shape     `xml:"http://schemas.microsoft.com/exchange/services/2006/messages FolderShape"`
	IDs   *folderIDs `xml:"http://schemas.microsoft.com/exchange/services/2006/messages FolderIds"`
}

type findItem struct {
	Traversal string `xml:"Traversal,attr"`
	Shape     *shape `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ItemShape"`
	View      *view  `xml:"http://schemas.microsoft.com/exchange/services/2006/messages IndexedPageItemView"`
	Sort      *struct {
		Order []struct {
			Order string `xml:"Order,attr"`
			Field struct {
				URI string `xml:"FieldURI,attr"`
			} `xml:"http://schemas.microsoft.com/exchange/services/2006/types FieldURI"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types FieldOrder"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/messages SortOrder"`
	Parents *folderIDs `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ParentFolderIds"`
}

type getItem struct {
	Shape *shape `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ItemShape"`
	IDs   *struct {
		IDs []struct {
			ID string `xml:"Id,attr"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types ItemId"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ItemIds"`
}

// Versions this server (Exchange 2010 SP2) understands.
var versions = map[string]bool{"Exchange2007": true, "Exchange2007_SP1": true, "Exchange2010": true, "Exchange2010_SP1": true, "Exchange2010_SP2": true}

func (s *Server) soap(w http.ResponseWriter, acct *Account, env *request) {
	op := "unknown"
	switch b := env.Body; {
	case b.FindFolder != nil:
		op = "FindFolder"
	case b.GetFolder != nil:
		op = "GetFolder"
	case b.FindItem != nil:
		op = "FindItem"
	case b.GetItem != nil:
		op = "GetItem"
	case b.Sync != nil:
		op = "SyncFolderItems"
	}
	s.mu.Lock()
	s.stats.Requests[op]++
	if env.Header.Version != nil {
		s.stats.Versions[env.Header.Version.Version]++
	}
	s.mu.Unlock()
	if op == "unknown" {
		name := "nothing"
		if len(env.Body.Other) > 0 {
			name = "{" + env.Body.Other[0].XMLName.Space + "}" + env.Body.Other[0].XMLName.Local
		}
		s.fault(w, "ErrorInvalidRequest", "The request is invalid: this server does not serve "+name, nil)
		return
	}
	if env.Header.Version == nil {
		s.fault(w, "ErrorSchemaValidation", "The request failed schema validation: the RequestServerVersion header is missing.", nil)
		return
	}
	if !versions[env.Header.Version.Version] {
		s.fault(w, "ErrorInvalidServerVersion", "The specified server version is invalid.", nil)
		return
	}
	if wait, busy := s.throttle(acct); busy {
		s.fault(w, "ErrorServerBusy", "The server cannot service this request right now. Try again later.",
			map[string]string{"BackOffMilliseconds": strconv.FormatInt(wait.Milliseconds(), 10)})
		return
	}
	acc := &access{acct: acct}
	if imp := env.Header.Impersonation; imp != nil {
		if acct == appAccount && s.AppScope != nil && !slices.ContainsFunc(s.AppScope, func(m string) bool { return strings.EqualFold(m, imp.SID.SMTP) }) {
			s.fault(w, "ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user.", nil)
			return
		}
		if !acct.Impersonate {
			s.fault(w, "ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user.", nil)
			return
		}
		s.mu.Lock()
		s.stats.Impersonated++
		acc.principal, acc.impersonating = s.mailboxes[strings.ToLower(imp.SID.SMTP)], true
		s.mu.Unlock()
		if acc.principal == nil {
			s.fault(w, "ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.", nil)
			return
		}
	} else {
		s.mu.Lock()
		acc.principal = s.mailboxes[strings.ToLower(acct.Mailbox)]
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var body string
	switch b := env.Body; op {
	case "FindFolder":
		body = s.findFolder(acc, b.FindFolder)
	case "GetFolder":
		body = s.getFolder(acc, b.GetFolder)
	case "FindItem":
		body = s.findItem(acc, b.FindItem)
	case "GetItem":
		body = s.getItem(acc, b.GetItem)
	case "SyncFolderItems":
		body = s.syncFolderItems(acc, b.Sync)
	}
	if strings.HasPrefix(body, "fault:") {
		code, text, _ := strings.Cut(strings.TrimPrefix(body, "fault:"), ":")
		s.fault(w, code, text, nil)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="%s"><s:Header><h:ServerVersionInfo MajorVersion="14" MinorVersion="2" MajorBuildNumber="247" MinorBuildNumber="5" Version="Exchange2010_SP2" xmlns:h="%s" xmlns="%s" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">%s</s:Body></s:Envelope>`,
		NSSoap, NSTypes, NSTypes, body)
}

// throttle counts a request of acct and says whether it must wait.
func (s *Server) throttle(acct *Account) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if u := s.until[acct.Name]; now.Before(u) {
		s.stats.Early++
		s.stats.Busy++
		return u.Sub(now), true
	}
	s.count[acct.Name]++
	if s.BusyEvery > 0 && s.count[acct.Name]%s.BusyEvery == 0 {
		s.until[acct.Name] = now.Add(s.BackOff)
		s.stats.Busy++
		return s.BackOff, true
	}
	return 0, false
}

// fault answers as Exchange does for request-wide errors: HTTP 500 and a
// SOAP fault whose detail carries the response code and MessageXml.
func (s *Server) fault(w http.ResponseWriter, code, text string, values map[string]string) {
	var mx strings.Builder
	if len(values) > 0 {
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		mx.WriteString(`<t:MessageXml xmlns:t="` + NSTypes + `">`)
		for _, k := range keys {
			fmt.Fprintf(&mx, `<t:Value Name="%s">%s</t:Value>`, esc(k), esc(values[k]))
		}
		mx.WriteString(`</t:MessageXml>`)
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="%s"><s:Body><s:Fault><faultcode xmlns:a="%s">a:%s</faultcode><faultstring xml:lang="en-US">%s</faultstring><detail><e:ResponseCode xmlns:e="%s">%s</e:ResponseCode><e:Message xmlns:e="%s">%s</e:Message>%s</detail></s:Fault></s:Body></s:Envelope>`,
		NSSoap, NSTypes, code, esc(text), NSErrors, code, NSErrors, esc(text), mx.String())
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func errorMessage(op, code, text string) string {
	return fmt.Sprintf(`<m:%sResponseMessage ResponseClass="Error"><m:MessageText>%s</m:MessageText><m:ResponseCode>%s</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:%sResponseMessage>`, op, esc(text), code, op)
}

func wrap(op, inner string) string {
	return fmt.Sprintf(`<m:%sResponse xmlns:m="%s" xmlns:t="%s"><m:ResponseMessages>%s</m:ResponseMessages></m:%sResponse>`, op, NSMessages, NSTypes, inner, op)
}

var distinguished = map[string]bool{"msgfolderroot": true, "root": true, "inbox": true, "sentitems": true, "drafts": true,
	"deleteditems": true, "junkemail": true, "outbox": true, "calendar": true, "contacts": true, "tasks": true, "notes": true, "journal": true}

// access is who a request acts as: the account logged in, and the mailbox
// it works in (its own, or the one it impersonates).
type access struct {
	acct          *Account
	principal     *Mailbox
	impersonating bool
}

// may says whether the request may open mb: its own (or impersonated)
// mailbox, or one the account has FullAccess to.
func (a *access) may(mb *Mailbox) bool {
	if mb == a.principal {
		return true
	}
	if a.impersonating {
		return false
	}
	for _, m := range a.acct.FullAccess {
		if strings.EqualFold(m, mb.SMTP) {
			return true
		}
	}
	return false
}

// resolve finds a folder id and its mailbox: "" and a response code when it cannot.
func (s *Server) resolve(acc *access, ids *folderIDs) (id string, mb *Mailbox, code string) {
	if ids == nil || len(ids.Distinguished)+len(ids.IDs) != 1 {
		return "", nil, "ErrorInvalidRequest"
	}
	for _, d := range ids.Distinguished {
		if !distinguished[d.ID] {
			return "", nil, "ErrorSchemaValidation"
		}
		mb = acc.principal
		if d.Mailbox != nil {
			s.stats.Delegated++
			if mb = s.mailboxes[strings.ToLower(d.Mailbox.Email)]; mb == nil {
				return "", nil, "ErrorNonExistentMailbox"
			}
			if !acc.may(mb) {
				return "", nil, "ErrorAccessDenied"
			}
		}
		if mb == nil {
			return "", nil, "ErrorNonExistentMailbox"
		}
		if d.ID == "msgfolderroot" || d.ID == "root" {
			return mb.rootID, mb, ""
		}
		for fid, f := range s.folders {
			if s.owner[fid] == mb && f.WellKnown == d.ID {
				return fid, mb, ""
			}
		}
		return "", nil, "ErrorFolderNotFound"
	}
	fid := ids.IDs[0].ID
	mb = s.owner[fid]
	if mb == nil {
		if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(fid, "AQMk")); err != nil {
			return "", nil, "ErrorInvalidIdMalformed"
		}
		return "", nil, "ErrorFolderNotFound"
	}
	if !acc.may(mb) {
		return "", nil, "ErrorAccessDenied"
	}
	return fid, mb, ""
}

func (s *Server) folderXML(id string, sh *shape) string {
	f := s.folders[id]
	el := "Folder"
	switch {
	case f.Search:
		el = "SearchFolder"
	case f.Class == "IPF.Appointment":
		el = "CalendarFolder"
	case f.Class == "IPF.Contact":
		el = "ContactsFolder"
	case f.Class == "IPF.Task":
		el = "TasksFolder"
	}
	class := f.Class
	if class == "" {
		class = "IPF.Note"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<t:%s><t:FolderId Id="%s" ChangeKey="AQAAABYAAAA"/>`, el, id)
	all := sh.BaseShape == "AllProperties"
	if all || sh.has("folder:ParentFolderId") {
		fmt.Fprintf(&b, `<t:ParentFolderId Id="%s" ChangeKey="AQAAAA=="/>`, s.parent[id])
	}
	if all || sh.has("folder:FolderClass") {
		fmt.Fprintf(&b, `<t:FolderClass>%s</t:FolderClass>`, esc(class))
	}
	if sh.BaseShape != "IdOnly" || sh.has("folder:DisplayName") {
		fmt.Fprintf(&b, `<t:DisplayName>%s</t:DisplayName>`, esc(f.Name))
	}
	if sh.BaseShape != "IdOnly" || sh.has("folder:TotalCount") {
		fmt.Fprintf(&b, `<t:TotalCount>%d</t:TotalCount>`, len(f.Messages))
	}
	if sh.BaseShape != "IdOnly" || sh.has("folder:ChildFolderCount") {
		fmt.Fprintf(&b, `<t:ChildFolderCount>%d</t:ChildFolderCount>`, len(f.Children))
	}
	fmt.Fprintf(&b, `</t:%s>`, el)
	return b.String()
}

func validShape(sh *shape) bool {
	return sh != nil && (sh.BaseShape == "IdOnly" || sh.BaseShape == "Default" || sh.BaseShape == "AllProperties")
}

func (s *Server) findFolder(acc *access, r *findFolder) string {
	if !validShape(r.Shape) || (r.Traversal != "Deep" && r.Traversal != "Shallow") || r.Parents == nil {
		return "fault:ErrorSchemaValidation:The request failed schema validation: FindFolder needs Traversal, FolderShape and ParentFolderIds."
	}
	parent, mb, code := s.resolve(acc, r.Parents)
	if code != "" {
		return wrap("FindFolder", errorMessage("FindFolder", code, "The folder could not be found."))
	}
	var all []string
	var walk func(fs []*Folder)
	walk = func(fs []*Folder) {
		for _, f := range fs {
			all = append(all, f.ID)
			if r.Traversal == "Deep" {
				walk(f.Children)
			}
		}
	}
	if parent == mb.rootID {
		walk(mb.Folders)
	} else {
		walk(s.folders[parent].Children)
	}
	page, offset, last, code := s.page(len(all), r.View)
	if code != "" {
		return wrap("FindFolder", errorMessage("FindFolder", code, "The FindFolder request exceeded the maximum number of entries allowed by the throttling policy."))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<m:FindFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder IndexedPagingOffset="%d" TotalItemsInView="%d" IncludesLastItemInRange="%t"><t:Folders>`, offset+len(page(all)), len(all), last)
	for _, id := range page(all) {
		b.WriteString(s.folderXML(id, r.Shape))
	}
	b.WriteString(`</t:Folders></m:RootFolder></m:FindFolderResponseMessage>`)
	return wrap("FindFolder", b.String())
}

// page cuts a listing of n entries by an indexed view.
func (s *Server) page(n int, v *view) (cut func([]string) []string, offset int, last bool, code string) {
	max := n
	if v != nil {
		if v.Max != nil {
			max = *v.Max
		}
		offset = v.Offset
		if v.BasePoint != "" && v.BasePoint != "Beginning" {
			offset = n - offset - max
		}
	}
	if s.FindCountLimit > 0 && max > s.FindCountLimit {
		s.stats.PagesRefused++
		return nil, 0, false, "ErrorExceededFindCountLimit"
	}
	if v == nil && s.FindCountLimit > 0 && n > s.FindCountLimit {
		// Without a paged view Exchange would return at most the limit.
		max = s.FindCountLimit
	}
	offset = min(max0(offset), n)
	end := min(offset+max, n)
	return func(all []string) []string { return all[offset:end] }, offset, end == n, ""
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

func (s *Server) getFolder(acc *access, r *getFolder) string {
	if !validShape(r.Shape) || r.IDs == nil {
		return "fault:ErrorSchemaValidation:The request failed schema validation: GetFolder needs FolderShape and FolderIds."
	}
	var b strings.Builder
	one := func(ids folderIDs) {
		id, mb, code := s.resolve(acc, &ids)
		if code == "ErrorSchemaValidation" {
			b.Reset()
			b.WriteString("fault:ErrorSchemaValidation:The request failed schema validation: unknown distinguished folder id.")
			return
		}
		if code != "" {
			b.WriteString(errorMessage("GetFolder", code, "The specified folder could not be found in the store."))
			return
		}
		b.WriteString(`<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders>`)
		if id == mb.rootID {
			fmt.Fprintf(&b, `<t:Folder><t:FolderId Id="%s" ChangeKey="AQAAABYAAAA"/></t:Folder>`, id)
		} else {
			b.WriteString(s.folderXML(id, r.Shape))
		}
		b.WriteString(`</m:Folders></m:GetFolderResponseMessage>`)
	}
	for _, d := range r.IDs.Distinguished {
		var ids folderIDs
		ids.Distinguished = append(ids.Distinguished, d)
		if one(ids); strings.HasPrefix(b.String(), "fault:") {
			return b.String()
		}
	}
	for _, d := range r.IDs.IDs {
		var ids folderIDs
		ids.IDs = append(ids.IDs, d)
		one(ids)
	}
	return wrap("GetFolder", b.String())
}

// itemElement is the element an item class is returned as.
func itemElement(class string) string {
	switch {
	case strings.HasPrefix(class, "IPM.Schedule.Meeting.Request"):
		return "MeetingRequest"
	case strings.HasPrefix(class, "IPM.Note"), strings.HasPrefix(class, "REPORT."):
		return "Message"
	}
	return "Item"
}

func (s *Server) findItem(acc *access, r *findItem) string {
	if !validShape(r.Shape) || r.Traversal != "Shallow" || r.Parents == nil {
		return "fault:ErrorSchemaValidation:The request failed schema validation: FindItem needs Traversal=\"Shallow\", ItemShape and ParentFolderIds."
	}
	if r.Shape.IncludeMIME || r.Shape.has("item:MimeContent") || r.Shape.has("item:Body") {
		return wrap("FindItem", errorMessage("FindItem", "ErrorInvalidPropertyRequest", "This property was requested, but it isn't supported."))
	}
	fid, mb, code := s.resolve(acc, r.Parents)
	if code != "" || fid == mb.rootID {
		if code == "" {
			code = "ErrorFolderNotFound"
		}
		return wrap("FindItem", errorMessage("FindItem", code, "The folder could not be found."))
	}
	msgs := append([]*Message(nil), s.folders[fid].Messages...)
	if r.Sort != nil {
		for _, o := range r.Sort.Order {
			if o.Field.URI != "item:DateTimeReceived" {
				return wrap("FindItem", errorMessage("FindItem", "ErrorInvalidPropertyRequest", "Sorting by "+o.Field.URI+" is not supported by this emulator."))
			}
			desc := o.Order == "Descending"
			sort.SliceStable(msgs, func(i, j int) bool {
				if desc {
					return msgs[j].Received.Before(msgs[i].Received)
				}
				return msgs[i].Received.Before(msgs[j].Received)
			})
		}
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	page, offset, last, code := s.page(len(ids), r.View)
	if code != "" {
		return wrap("FindItem", errorMessage("FindItem", code, "The FindItem request exceeded the maximum number of entries allowed by the throttling policy (EWSFindCountLimit)."))
	}
	byID := map[string]*Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	sh := r.Shape
	var b strings.Builder
	fmt.Fprintf(&b, `<m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder IndexedPagingOffset="%d" TotalItemsInView="%d" IncludesLastItemInRange="%t"><t:Items>`, offset+len(page(ids)), len(ids), last)
	for _, id := range page(ids) {
		b.WriteString(s.itemXML(byID[id], sh))
	}
	b.WriteString(`</t:Items></m:RootFolder></m:FindItemResponseMessage>`)
	return wrap("FindItem", b.String())
}

// itemXML is an item with the properties the shape asks for.
func (s *Server) itemXML(m *Message, sh *shape) string {
	var b strings.Builder
	el := itemElement(m.Class)
	fmt.Fprintf(&b, `<t:%s><t:ItemId Id="%s" ChangeKey="CQAAABYAAAA"/>`, el, m.ID)
	if sh.has("item:ItemClass") {
		fmt.Fprintf(&b, `<t:ItemClass>%s</t:ItemClass>`, esc(m.Class))
	}
	if sh.has("item:Size") {
		// The store's size, not the MIME's: no client may take it for one.
		fmt.Fprintf(&b, `<t:Size>%d</t:Size>`, len(m.MIME)+731)
	}
	if sh.has("item:Categories") && len(m.Categories) > 0 {
		b.WriteString(`<t:Categories>`)
		for _, c := range m.Categories {
			fmt.Fprintf(&b, `<t:String>%s</t:String>`, esc(c))
		}
		b.WriteString(`</t:Categories>`)
	}
	if sh.has("item:DateTimeReceived") {
		fmt.Fprintf(&b, `<t:DateTimeReceived>%s</t:DateTimeReceived>`, m.Received.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if sh.has("item:IsDraft") {
		fmt.Fprintf(&b, `<t:IsDraft>%t</t:IsDraft>`, m.Draft)
	}
	if sh.hasExtended("0x1081") && m.LastVerb != 0 {
		fmt.Fprintf(&b, `<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x1081" PropertyType="Integer"/><t:Value>%d</t:Value></t:ExtendedProperty>`, m.LastVerb)
	}
	if sh.hasExtended("0x1090") && m.Flagged {
		b.WriteString(`<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/><t:Value>2</t:Value></t:ExtendedProperty>`)
	}
	if sh.has("message:IsRead") && el != "Item" {
		fmt.Fprintf(&b, `<t:IsRead>%t</t:IsRead>`, m.Read)
	}
	fmt.Fprintf(&b, `</t:%s>`, el)
	return b.String()
}

func (s *Server) getItem(acc *access, r *getItem) string {
	if !validShape(r.Shape) || r.IDs == nil || len(r.IDs.IDs) == 0 {
		return "fault:ErrorSchemaValidation:The request failed schema validation: GetItem needs ItemShape and ItemIds."
	}
	s.stats.MaxBatch = max(s.stats.MaxBatch, len(r.IDs.IDs))
	var b strings.Builder
	for _, ref := range r.IDs.IDs {
		f := s.items[ref.ID]
		var m *Message
		if f != nil && !acc.may(s.owner[f.ID]) {
			b.WriteString(errorMessage("GetItem", "ErrorAccessDenied", "Access is denied. Check credentials and try again."))
			continue
		}
		if f != nil {
			for _, c := range f.Messages {
				if c.ID == ref.ID {
					m = c
				}
			}
		}
		if m == nil {
			code := "ErrorItemNotFound"
			if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ref.ID, "AAMk")); err != nil || !strings.HasPrefix(ref.ID, "AAMk") {
				code = "ErrorInvalidIdMalformed"
			}
			b.WriteString(errorMessage("GetItem", code, "The specified object was not found in the store."))
			continue
		}
		if r.Shape.IncludeMIME && m.MIME == nil {
			b.WriteString(errorMessage("GetItem", "ErrorMimeContentConversionFailed", "Unable to convert the item to MIME content."))
			continue
		}
		el := itemElement(m.Class)
		fmt.Fprintf(&b, `<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:%s>`, el)
		if r.Shape.IncludeMIME {
			s.stats.MIMEItems++
			fmt.Fprintf(&b, `<t:MimeContent CharacterSet="UTF-8">%s</t:MimeContent>`, base64.StdEncoding.EncodeToString(m.MIME))
		}
		fmt.Fprintf(&b, `<t:ItemId Id="%s" ChangeKey="CQAAABYAAAA"/></t:%s></m:Items></m:GetItemResponseMessage>`, m.ID, el)
	}
	return wrap("GetItem", b.String())
}
