// Package graphtest is a Microsoft Graph and Entra ID emulator for tests, so
// that the Graph source is driven through the real azidentity and
// msgraph-sdk-go clients with no Microsoft endpoint in reach: one HTTPS
// (HTTP/2) server issues app-only tokens to one app (OpenID metadata and the
// v2.0 token endpoint) and serves seeded mailboxes as Graph does: users by
// domain (advanced query rules included), mail folders one level at a time
// with hidden and search folders, messages paged in received order, message
// delta with next and delta links and @removed entries, and each message's
// MIME from $value. Faults can be injected: a mailbox answering 403 or 404,
// and storms of 429 and 503 with Retry-After. It counts what it served and
// checks that clients keep to Retry-After and to 4 requests per mailbox.
//
// It is as strict as Graph where Graph is strict: a mailbox is addressed by
// its id or userPrincipalName (not its mail address); an expired delta or
// skip token is a 400 syncStateNotFound (or 410, see SyncStateStatus); $value
// has no HEAD and, by default, no Content-Length; a fifth concurrent request
// to one mailbox is answered 429 with a Retry-After of seconds, and so is a
// mailbox over its budget of requests (10,000 per 10 minutes). Sizes and the
// last verb executed (replied, forwarded) come as extended properties when
// asked for with $expand.
package graphtest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
)

// Message is one seeded message.
type Message struct {
	// ID is set by the server when empty.
	ID         string
	MIME       []byte
	Received   time.Time
	Read       bool
	Draft      bool
	Flagged    bool
	Categories []string
	// Status, when set, answers the message's $value with this error (an
	// item Exchange cannot turn into MIME).
	Status int
	// Size is what the store says the item weighs (PidTagMessageSize),
	// which is not the MIME length; 0 reports the MIME length.
	Size int64
	// Verb is the last verb executed on it (PidTagLastVerbExecuted): 102
	// replied, 103 replied to all, 104 forwarded; 0 none.
	Verb int

	seq int64 // last change, for delta
}

// Folder is one seeded mail folder.
type Folder struct {
	Name string
	// WellKnown is Graph's well-known name (inbox, sentitems, drafts,
	// deleteditems, junkemail, archive) or "".
	WellKnown string
	Hidden    bool
	// Search makes it a search folder (listed as #microsoft.graph.mailSearchFolder).
	Search   bool
	Messages []*Message
	Children []*Folder
	// ID is set by the server.
	ID string

	parent  *Folder
	removed []tombstone
}

type tombstone struct {
	id  string
	seq int64
}

// Mailbox is one user of the directory and their mailbox.
type Mailbox struct {
	// Mail is the primary address; "" for a user without one.
	Mail        string
	UPN         string // defaults to Mail
	DisplayName string
	Disabled    bool
	Folders     []*Folder
	// Status, when 403 or 404, answers every mail request for the mailbox
	// (no permission; no mailbox or no Exchange licence).
	Status int
	// ID is set by the server.
	ID string
	// ThrottleOnValue, when set, throttles this mailbox alone from its
	// first $value request on: for this long every request for it is
	// answered 429 with a Retry-After to match.
	ThrottleOnValue time.Duration
	// Archive gives the mailbox an online (in-place) archive, which
	// Graph's mail API does not reach; beta's exchangeSettings names it.
	Archive bool

	throttledUntil time.Time
}

// ThrottledUntil is when the mailbox's ThrottleOnValue window ends (zero
// before it began).
func (s *Server) ThrottledUntil(mailbox string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mailbox(mailbox).throttledUntil
}

// Stats is what the server served.
type Stats struct {
	// Tokens issued.
	Tokens int
	// Requests by kind: users, folder, folders, messages, delta-initial,
	// delta-page, delta-link, value.
	Requests map[string]int
	// Throttled answers (429 or 503) given.
	Throttled int
	// MaxInFlight is the most requests served at once, per mailbox.
	MaxInFlight map[string]int
	// Early counts requests that arrived while their mailbox had been told
	// to wait (later than a grace period after the first 429 of a pause).
	Early int
	// MutableIDs counts Graph requests without Prefer: IdType="ImmutableId"
	// (their ids would change when a message moves).
	MutableIDs int
	// Refused counts requests answered 429 for being a mailbox's fifth at
	// once; OverBudget those answered 429 for its request budget.
	Refused, OverBudget int
	// ByMailbox counts Graph requests per mailbox id, each request of a
	// $batch on its own (as Graph counts them against a mailbox's limits).
	ByMailbox map[string]int
	// Batched counts the requests that came inside a $batch; the batches
	// themselves are Requests["batch"]. HTTP requests to mailboxes are
	// the sum of ByMailbox - Batched + Requests["batch"].
	Batched int
}

// Server is a running emulator.
type Server struct {
	Tenant, ClientID, Secret string
	// Certificates are the app's registered certificates: a client
	// assertion signed with one's key stands for the secret (assertion.go).
	Certificates []*x509.Certificate
	// CA is the PEM of the server's certificate, for Endpoint.RootCAs.
	CA []byte
	// Host and Port are where it listens (127.0.0.1).
	Host string
	Port int
	// PageSize caps every page, whatever the client asks for.
	PageSize int
	// NoContentLength makes $value answers streamed without a length; New
	// sets it, as Graph does not promise one.
	NoContentLength bool
	// SyncStateStatus answers an expired delta or skip token: 400 (code
	// syncStateNotFound, the default) or 410 (code resyncRequired).
	SyncStateStatus int
	// MaxConcurrent requests per mailbox are served at once; more are
	// answered 429 with Retry-After ConcurrencyRetry.
	MaxConcurrent    int
	ConcurrencyRetry time.Duration
	// Budget requests per mailbox are served per BudgetWindow; more are
	// answered 429 with a Retry-After until the window ends.
	Budget       int
	BudgetWindow time.Duration
	// NoDelta answers message delta with 400, as Office 365 operated by
	// 21Vianet does.
	NoDelta bool
	// Latency is how long each mailbox request takes before it is
	// answered, in flight all the while.
	Latency time.Duration

	srv *httptest.Server

	mu         sync.Mutex
	boxes      []*Mailbox
	tokens     map[string]bool
	seq        int64
	nextID     int
	stats      Stats
	inFlight   map[string]map[context.Context]bool
	storm      int
	generation int
	throttle   map[string]*throttleState
	budgets    map[string]*budget
}

type budget struct {
	start time.Time
	n     int
}

type throttleState struct {
	count        int
	since, until time.Time
	n            int
}

// New starts an emulator that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		Tenant:   "contoso-tenant",
		ClientID: "11111111-2222-3333-4444-555555555555",
		Secret:   "emulator-secret-" + randHex(8),
		PageSize: 50,
		// Graph's own limits for Outlook resources.
		NoContentLength:  true,
		SyncStateStatus:  http.StatusBadRequest,
		MaxConcurrent:    4,
		ConcurrencyRetry: 2 * time.Second,
		Budget:           10000,
		BudgetWindow:     10 * time.Minute,
		budgets:          map[string]*budget{},
		tokens:           map[string]bool{},
		inFlight:         map[string]map[context.Context]bool{},
		throttle:         map[string]*throttleState{},
		stats:            Stats{Requests: map[string]int{}, MaxInFlight: map[string]int{}, ByMailbox: map[string]int{}},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = true
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.CA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	u, _ := url.Parse(s.srv.URL)
	s.Host = u.Hostname()
	s.Port, _ = strconv.Atoi(u.Port())
	return s
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Endpoint is the Graph source endpoint reading mailbox as the emulator's app.
func (s *Server) Endpoint(mailbox string) mail.Endpoint {
	return mail.Endpoint{Scheme: "graph", Host: s.Host, Port: s.Port, User: s.ClientID, Password: s.Secret,
		Tenant: s.Tenant, AuthzID: mailbox, RootCAs: s.CA}
}

// AddMailbox seeds a mailbox; its folders, messages and ids are filled in.
func (s *Server) AddMailbox(m *Mailbox) *Mailbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.UPN == "" {
		m.UPN = m.Mail
	}
	if m.ID == "" {
		m.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", len(s.boxes)+1, len(s.boxes)+1)
	}
	var walk func(parent *Folder, fs []*Folder)
	walk = func(parent *Folder, fs []*Folder) {
		for _, f := range fs {
			f.parent = parent
			if f.ID == "" {
				f.ID = s.newID("AQMkAD")
			}
			for _, msg := range f.Messages {
				s.initMessage(msg)
			}
			walk(f, f.Children)
		}
	}
	walk(nil, m.Folders)
	s.boxes = append(s.boxes, m)
	return m
}

func (s *Server) initMessage(m *Message) {
	if m.ID == "" {
		m.ID = s.newID("AAMkAG")
	}
	s.seq++
	m.seq = s.seq
}

// newID makes ids shaped like Graph's: base64url with padding, so that
// clients must escape them in paths.
func (s *Server) newID(prefix string) string {
	s.nextID++
	raw := make([]byte, 31)
	rand.Read(raw)
	return prefix + base64.URLEncoding.EncodeToString(append(raw, byte(s.nextID), byte(s.nextID>>8)))
}

// Deliver adds messages to the folder at path ("Inbox/Projects") of mailbox.
func (s *Server) Deliver(mailbox, path string, msgs ...*Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.folderByPath(s.mailbox(mailbox), path)
	if f == nil {
		panic("graphtest: no folder " + path + " in " + mailbox)
	}
	for _, m := range msgs {
		s.initMessage(m)
		f.Messages = append(f.Messages, m)
	}
}

// Update changes a message in place (flags, categories), as a user would.
func (s *Server) Update(mailbox, id string, change func(*Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.message(s.mailbox(mailbox), id)
	change(m)
	s.seq++
	m.seq = s.seq
}

// Delete removes a message.
func (s *Server) Delete(mailbox, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, m := s.message(s.mailbox(mailbox), id)
	for i, x := range f.Messages {
		if x == m {
			f.Messages = append(f.Messages[:i], f.Messages[i+1:]...)
			break
		}
	}
	s.seq++
	f.removed = append(f.removed, tombstone{id: id, seq: s.seq})
}

// Valid says whether token is one this Entra ID issued and has not expired
// (ExpireTokens), so that other emulators (Exchange Online's EWS in
// ewstest) accept the same app's tokens.
func (s *Server) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[token]
}

// ExpireTokens makes every token issued so far invalid, as when tokens
// expire or are revoked before the client's cache expects: Graph then
// answers 401 InvalidAuthenticationToken.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
}

// SetStatus makes the mailbox answer every request with status (403 or
// 404), as when its licence or the app's access is taken away mid-run; 0
// restores it.
func (s *Server) SetStatus(mailbox string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mailbox(mailbox).Status = status
}

// Storm makes every mailbox throttled after each `every` requests: for the
// next second all its requests are answered 429 or 503 (alternately) with
// Retry-After. 0 ends the storm.
func (s *Server) Storm(every int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storm = every
}

// Stats is a copy of what the server counted.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Requests, out.MaxInFlight, out.ByMailbox = map[string]int{}, map[string]int{}, map[string]int{}
	for k, v := range s.stats.Requests {
		out.Requests[k] = v
	}
	for k, v := range s.stats.ByMailbox {
		out.ByMailbox[k] = v
	}
	for k, v := range s.stats.MaxInFlight {
		out.MaxInFlight[k] = v
	}
	return out
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{Requests: map[string]int{}, MaxInFlight: map[string]int{}, ByMailbox: map[string]int{}}
}

// addressed finds the mailbox of a Graph path as Graph does: by id or
// userPrincipalName only.
func (s *Server) addressed(key string) *Mailbox {
	for _, m := range s.boxes {
		if strings.EqualFold(m.ID, key) || strings.EqualFold(m.UPN, key) {
			return m
		}
	}
	return nil
}

// mailbox finds a mailbox for the test's own calls, by any of its names.
func (s *Server) mailbox(key string) *Mailbox {
	for _, m := range s.boxes {
		if strings.EqualFold(m.ID, key) || (m.Mail != "" && strings.EqualFold(m.Mail, key)) || strings.EqualFold(m.UPN, key) {
			return m
		}
	}
	return nil
}

func (s *Server) folderByPath(m *Mailbox, path string) *Folder {
	if m == nil {
		return nil
	}
	fs := m.Folders
	var f *Folder
	for _, part := range strings.Split(path, "/") {
		f = nil
		for _, c := range fs {
			if c.Name == part {
				f = c
			}
		}
		if f == nil {
			return nil
		}
		fs = f.Children
	}
	return f
}

func (s *Server) folder(m *Mailbox, key string) *Folder {
	var found *Folder
	var walk func(fs []*Folder)
	walk = func(fs []*Folder) {
		for _, f := range fs {
			if f.ID == key || (f.WellKnown != "" && strings.EqualFold(f.WellKnown, key)) {
				found = f
			}
			walk(f.Children)
		}
	}
	walk(m.Folders)
	return found
}

func (s *Server) message(m *Mailbox, id string) (*Folder, *Message) {
	var ff *Folder
	var fm *Message
	var walk func(fs []*Folder)
	walk = func(fs []*Folder) {
		for _, f := range fs {
			for _, x := range f.Messages {
				if x.ID == id {
					ff, fm = f, x
				}
			}
			walk(f.Children)
		}
	}
	if m != nil {
		walk(m.Folders)
	}
	return ff, fm
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- HTTP ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	segs := segments(r.URL.EscapedPath())
	switch {
	case len(segs) == 4 && segs[1] == "v2.0" && segs[2] == ".well-known" && segs[3] == "openid-configuration":
		s.openID(w, r, segs[0])
	case len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token":
		s.token(w, r, segs[0])
	case len(segs) == 2 && segs[0] == "v1.0" && segs[1] == "$batch":
		s.batch(w, r)
	case len(segs) >= 2 && segs[0] == "v1.0":
		s.graph(w, r, segs[1:], false)
	case len(segs) >= 2 && segs[0] == "beta":
		s.graph(w, r, segs[1:], true)
	default:
		writeError(w, http.StatusNotFound, "UnknownPath", "no such path "+r.URL.Path)
	}
}

// segments splits an escaped path and turns OData key syntax
// (users('x')/mailFolders('y'), as Graph writes its links) into plain segments.
func segments(escaped string) []string {
	var out []string
	for _, p := range strings.Split(strings.Trim(escaped, "/"), "/") {
		p, _ = url.PathUnescape(p)
		if i := strings.Index(p, "('"); i > 0 && strings.HasSuffix(p, "')") {
			out = append(out, p[:i], p[i+2:len(p)-2])
			continue
		}
		out = append(out, p)
	}
	return out
}

func (s *Server) openID(w http.ResponseWriter, r *http.Request, tenant string) {
	base := "https://" + r.Host + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                base + "/v2.0",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"tenant_region_scope":                   "AS",
	})
}

// token is the v2.0 token endpoint for the client credentials grant, with
// Entra ID's error codes for a wrong tenant, app or secret.
func (s *Server) token(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	switch {
	case tenant != s.Tenant:
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", tenant))
	case r.PostForm.Get("grant_type") != "client_credentials":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
	case r.PostForm.Get("client_id") != s.ClientID:
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", r.PostForm.Get("client_id"), tenant))
	case r.PostForm.Get("client_assertion") != "" && s.assertionRefused(w, r, tenant):
	case r.PostForm.Get("client_assertion") == "" && r.PostForm.Get("client_secret") != s.Secret:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", fmt.Sprintf("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.ClientID))
	case !hasDefaultScope(r.PostForm.Get("scope")):
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
	default:
		tok := "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0." + randHex(24)
		s.mu.Lock()
		s.tokens[tok] = true
		s.stats.Tokens++
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	}
}

// hasDefaultScope: client credentials ask for a resource's /.default (MSAL
// adds openid, profile and offline_access beside it).
func hasDefaultScope(scopes string) bool {
	for _, s := range strings.Fields(scopes) {
		if strings.HasSuffix(s, "/.default") {
			return true
		}
	}
	return false
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc, "error_codes": []int{}, "timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z"), "trace_id": randHex(16), "correlation_id": randHex(16)})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "request-id": randHex(16)}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// stormGrace is how late a request may arrive after the first throttled
// answer of a pause and still count as sent before the client heard of it.
const stormGrace = 300 * time.Millisecond

func (s *Server) graph(w http.ResponseWriter, r *http.Request, segs []string, beta bool) {
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	valid := strings.HasPrefix(auth, "Bearer ") && s.tokens[strings.TrimPrefix(auth, "Bearer ")]
	s.mu.Unlock()
	if !valid {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return
	}
	if !strings.Contains(r.Header.Get("Prefer"), `IdType="ImmutableId"`) {
		s.mu.Lock()
		s.stats.MutableIDs++
		s.mu.Unlock()
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "ErrorInvalidRequest", "The emulator is read-only.")
		return
	}
	if !strings.EqualFold(segs[0], "users") {
		writeError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+segs[0]+"'.")
		return
	}
	if len(segs) == 1 {
		s.users(w, r)
		return
	}
	key := segs[1]
	s.mu.Lock()
	box := s.addressed(key)
	boxKey := strings.ToLower(key)
	if box != nil {
		boxKey = box.ID
	}
	s.stats.ByMailbox[boxKey]++
	// In flight: requests whose handler runs and whose client still waits.
	// A client that closes a body early resets the stream, which cancels the
	// request's context before the server reads the client's next request.
	ctx := r.Context()
	live := 1
	for c := range s.inFlight[boxKey] {
		if c.Err() == nil {
			live++
		}
	}
	if s.inFlight[boxKey] == nil {
		s.inFlight[boxKey] = map[context.Context]bool{}
	}
	s.inFlight[boxKey][ctx] = true
	if live > s.stats.MaxInFlight[boxKey] {
		s.stats.MaxInFlight[boxKey] = live
	}
	status, retry := s.throttled(boxKey)
	if status == 0 && box != nil && box.ThrottleOnValue > 0 {
		now := time.Now()
		if box.throttledUntil.IsZero() && strings.EqualFold(segs[len(segs)-1], "$value") {
			box.throttledUntil = now.Add(box.ThrottleOnValue)
		}
		if now.Before(box.throttledUntil) {
			s.stats.Throttled++
			status, retry = http.StatusTooManyRequests, strconv.Itoa(int((box.throttledUntil.Sub(now)+time.Second-1)/time.Second))
		}
	}
	if status == 0 {
		status, retry = s.limited(boxKey, live)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inFlight[boxKey], ctx)
		s.mu.Unlock()
	}()
	if status == 0 && s.Latency > 0 {
		time.Sleep(s.Latency)
	}
	if status != 0 {
		w.Header().Set("Retry-After", retry)
		writeError(w, status, map[int]string{429: "ApplicationThrottled", 503: "ServiceUnavailable"}[status], "Application is over its MailboxConcurrency limit.")
		return
	}
	if box == nil || box.Status == http.StatusNotFound {
		writeError(w, http.StatusNotFound, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", key))
		return
	}
	if box.Status == http.StatusForbidden {
		writeError(w, http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
		return
	}
	rest := segs[2:]
	lower := make([]string, len(rest))
	for i, p := range rest {
		lower[i] = strings.ToLower(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if beta {
		// Only mailbox discovery (exchangeSettings) is served from beta.
		if len(rest) == 2 && lower[0] == "settings" && lower[1] == "exchange" {
			s.count("settings")
			out := map[string]any{"@odata.context": "https://" + r.Host + "/beta/$metadata#users('" + box.ID + "')/settings/exchange/$entity",
				"primaryMailboxId": "MBX:" + box.ID}
			if box.Archive {
				out["inPlaceArchiveMailboxId"] = "MBX:archive-" + box.ID
			}
			writeJSON(w, http.StatusOK, out)
		} else {
			writeError(w, http.StatusBadRequest, "BadRequest", "unsupported beta path")
		}
		return
	}
	switch {
	case len(rest) == 1 && lower[0] == "mailfolders":
		s.count("folders")
		s.listFolders(w, r, box.Folders)
	case len(rest) == 2 && lower[0] == "mailfolders":
		s.count("folder")
		if f := s.folder(box, rest[1]); f != nil {
			writeJSON(w, http.StatusOK, s.folderJSON(f))
		} else {
			writeError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		}
	case len(rest) >= 3 && lower[0] == "mailfolders":
		f := s.folder(box, rest[1])
		if f == nil {
			writeError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		switch {
		case len(rest) == 3 && lower[2] == "childfolders":
			s.count("folders")
			s.listFolders(w, r, f.Children)
		case len(rest) == 3 && lower[2] == "messages":
			s.count("messages")
			s.listMessages(w, r, f)
		case len(rest) == 4 && lower[2] == "messages" && (lower[3] == "delta" || lower[3] == "delta()"):
			s.delta(w, r, box, f)
		case len(rest) == 5 && lower[2] == "messages" && lower[4] == "$value":
			s.value(w, box, rest[3])
		default:
			writeError(w, http.StatusBadRequest, "BadRequest", "unsupported path")
		}
	case len(rest) == 3 && lower[0] == "messages" && lower[2] == "$value":
		s.value(w, box, rest[1])
	default:
		writeError(w, http.StatusBadRequest, "BadRequest", "unsupported path")
	}
}

func (s *Server) count(kind string) { s.stats.Requests[kind]++ }

// limited answers a request beyond the mailbox's concurrency or budget
// with 429 and the seconds to wait; called locked.
func (s *Server) limited(box string, live int) (int, string) {
	if s.MaxConcurrent > 0 && live > s.MaxConcurrent {
		s.stats.Refused++
		return http.StatusTooManyRequests, strconv.Itoa(max(int(s.ConcurrencyRetry/time.Second), 1))
	}
	if s.Budget <= 0 {
		return 0, ""
	}
	b := s.budgets[box]
	now := time.Now()
	if b == nil || now.Sub(b.start) >= s.BudgetWindow {
		b = &budget{start: now}
		s.budgets[box] = b
	}
	b.n++
	if b.n <= s.Budget {
		return 0, ""
	}
	s.stats.OverBudget++
	wait := b.start.Add(s.BudgetWindow).Sub(now)
	return http.StatusTooManyRequests, strconv.Itoa(max(int((wait+time.Second-1)/time.Second), 1))
}

// throttled decides whether a storm answers this request; called locked.
func (s *Server) throttled(box string) (int, string) {
	st := s.throttle[box]
	if st == nil {
		st = &throttleState{}
		s.throttle[box] = st
	}
	now := time.Now()
	if now.Before(st.until) {
		if now.Sub(st.since) > stormGrace {
			s.stats.Early++
		}
	} else {
		if s.storm == 0 {
			return 0, ""
		}
		st.count++
		if st.count%s.storm != 0 {
			return 0, ""
		}
		st.since, st.until = now, now.Add(time.Second)
	}
	s.stats.Throttled++
	st.n++
	status := http.StatusTooManyRequests
	if st.n%2 == 0 {
		status = http.StatusServiceUnavailable
	}
	secs := int((st.until.Sub(now) + time.Second - 1) / time.Second)
	return status, strconv.Itoa(max(secs, 1))
}

// page cuts items by $top (or Prefer: odata.maxpagesize), PageSize at most,
// from the offset in $skip.
func (s *Server) page(r *http.Request, n int) (from, to int, next string) {
	q := r.URL.Query()
	size := s.PageSize
	if t, err := strconv.Atoi(q.Get("$top")); err == nil && t > 0 && t < size {
		size = t
	}
	size = maxPageSize(r, size)
	from, _ = strconv.Atoi(q.Get("$skip"))
	from = min(max(from, 0), n)
	to = min(from+size, n)
	if to < n {
		q.Set("$skip", strconv.Itoa(to))
		q.Set("$top", strconv.Itoa(size))
		u := *r.URL
		u.Scheme, u.Host, u.RawQuery = "https", r.Host, q.Encode()
		next = u.String()
	}
	return from, to, next
}

var preferPageSize = regexp.MustCompile(`odata\.maxpagesize=(\d+)`)

// maxPageSize lowers size to the client's Prefer: odata.maxpagesize.
func maxPageSize(r *http.Request, size int) int {
	if m := preferPageSize.FindStringSubmatch(r.Header.Get("Prefer")); m != nil {
		if t, _ := strconv.Atoi(m[1]); t > 0 && t < size {
			return t
		}
	}
	return size
}

var (
	endsWithMail = regexp.MustCompile(`(?i)^endswith\(mail,\s*'([^']*)'\)$`)
	mailEquals   = regexp.MustCompile(`(?i)^mail eq '([^']*)'$`)
)

func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := q.Get("$filter")
	var suffix, exact string
	if m := mailEquals.FindStringSubmatch(filter); m != nil {
		exact, filter = strings.ToLower(m[1]), ""
	}
	if filter != "" {
		m := endsWithMail.FindStringSubmatch(filter)
		if m == nil {
			writeError(w, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property 'mail' of resource 'User'.")
			return
		}
		if q.Get("$count") != "true" || !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") {
			writeError(w, http.StatusBadRequest, "Request_UnsupportedQuery", "Operator 'endsWith' is not supported because the required parameters might be missing. Try adding $count with a value of true and ConsistencyLevel header with a value of eventual.")
			return
		}
		suffix = strings.ToLower(m[1])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count("users")
	var all []map[string]any
	for _, b := range s.boxes {
		if suffix != "" && (b.Mail == "" || !strings.HasSuffix(strings.ToLower(b.Mail), suffix)) {
			continue
		}
		if exact != "" && !strings.EqualFold(b.Mail, exact) {
			continue
		}
		u := map[string]any{"id": b.ID, "userPrincipalName": b.UPN, "displayName": b.DisplayName, "accountEnabled": !b.Disabled}
		if b.Mail != "" {
			u["mail"] = b.Mail
		} else {
			u["mail"] = nil
		}
		all = append(all, u)
	}
	from, to, next := s.page(r, len(all))
	out := map[string]any{"@odata.context": "https://" + r.Host + "/v1.0/$metadata#users", "value": nonNil(all[from:to])}
	if q.Get("$count") == "true" {
		out["@odata.count"] = len(all)
	}
	if next != "" {
		out["@odata.nextLink"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

func nonNil(v []map[string]any) []map[string]any {
	if v == nil {
		return []map[string]any{}
	}
	return v
}

func (s *Server) folderJSON(f *Folder) map[string]any {
	out := map[string]any{"id": f.ID, "displayName": f.Name, "childFolderCount": len(f.Children),
		"totalItemCount": len(f.Messages), "unreadItemCount": unread(f), "isHidden": f.Hidden, "sizeInBytes": 0}
	if f.parent != nil {
		out["parentFolderId"] = f.parent.ID
	} else {
		out["parentFolderId"] = "AQMkADmsgfolderroot"
	}
	if f.Search {
		out["@odata.type"] = "#microsoft.graph.mailSearchFolder"
		out["isSupported"] = true
	}
	return out
}

func unread(f *Folder) int {
	n := 0
	for _, m := range f.Messages {
		if !m.Read {
			n++
		}
	}
	return n
}

func (s *Server) listFolders(w http.ResponseWriter, r *http.Request, fs []*Folder) {
	hidden := strings.EqualFold(r.URL.Query().Get("includeHiddenFolders"), "true")
	var all []map[string]any
	for _, f := range fs {
		if f.Hidden && !hidden {
			continue
		}
		all = append(all, s.folderJSON(f))
	}
	from, to, next := s.page(r, len(all))
	out := map[string]any{"@odata.context": "https://" + r.Host + "/v1.0/$metadata#mailFolders", "value": nonNil(all[from:to])}
	if next != "" {
		out["@odata.nextLink"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// Extended properties a client may ask for with $expand.
const (
	propSize = "Integer 0xe08"  // PidTagMessageSize
	propVerb = "Integer 0x1081" // PidTagLastVerbExecuted
)

// expanded names the extended properties asked for in $expand, as a short
// string that delta tokens carry ("s" size, "v" verb).
func expanded(expand string) string {
	e := strings.ToLower(expand)
	if !strings.Contains(e, "singlevalueextendedproperties") {
		return ""
	}
	out := ""
	if strings.Contains(e, "0x0e08") || strings.Contains(e, "0xe08") {
		out += "s"
	}
	if strings.Contains(e, "0x1081") {
		out += "v"
	}
	return out
}

func messageJSON(m *Message, props string) map[string]any {
	status := "notFlagged"
	if m.Flagged {
		status = "flagged"
	}
	cats := m.Categories
	if cats == nil {
		cats = []string{}
	}
	out := map[string]any{
		"@odata.etag":      fmt.Sprintf(`W/"CQAAABYAAAD%d"`, m.seq),
		"id":               m.ID,
		"createdDateTime":  m.Received.UTC().Format(time.RFC3339),
		"receivedDateTime": m.Received.UTC().Format(time.RFC3339),
		"isRead":           m.Read,
		"isDraft":          m.Draft,
		"flag":             map[string]any{"flagStatus": status},
		"categories":       cats,
	}
	if props == "" {
		return out
	}
	// Graph lists only the asked-for properties the item has.
	ext := []map[string]any{}
	if strings.Contains(props, "s") {
		size := m.Size
		if size == 0 {
			size = int64(len(m.MIME))
		}
		ext = append(ext, map[string]any{"id": propSize, "value": strconv.FormatInt(size, 10)})
	}
	if strings.Contains(props, "v") && m.Verb != 0 {
		ext = append(ext, map[string]any{"id": propVerb, "value": strconv.Itoa(m.Verb)})
	}
	out["singleValueExtendedProperties"] = ext
	return out
}

// listMessages orders as Graph does: newest first unless asked for
// "receivedDateTime asc".
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, f *Folder) {
	msgs := append([]*Message(nil), f.Messages...)
	asc := strings.EqualFold(strings.TrimSpace(r.URL.Query().Get("$orderby")), "receivedDateTime asc")
	sort.SliceStable(msgs, func(i, j int) bool {
		if asc {
			return msgs[i].Received.Before(msgs[j].Received)
		}
		return msgs[i].Received.After(msgs[j].Received)
	})
	from, to, next := s.page(r, len(msgs))
	var vals []map[string]any
	props := expanded(r.URL.Query().Get("$expand"))
	for _, m := range msgs[from:to] {
		vals = append(vals, messageJSON(m, props))
	}
	out := map[string]any{"@odata.context": "https://" + r.Host + "/v1.0/$metadata#users('x')/mailFolders('y')/messages", "value": nonNil(vals)}
	if next != "" {
		out["@odata.nextLink"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// delta serves message delta. A sync runs from a base (-1 for the initial
// one) up to the change counter when it began; pages carry
// $skiptoken=base.upto.offset, the last page a $deltatoken=upto.
func (s *Server) delta(w http.ResponseWriter, r *http.Request, box *Mailbox, f *Folder) {
	q := r.URL.Query()
	base, upto, offset := int64(-1), s.seq, 0
	kind := "delta-initial"
	bad := false
	// A sync keeps the $select and $expand of its first request: its
	// tokens carry them, as Graph's do.
	props := expanded(q.Get("$expand"))
	if t := q.Get("$skiptoken"); t != "" {
		kind = "delta-page"
		tok, p, _ := strings.Cut(s.decodeToken(t), "|")
		props = p
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			bad = true
		} else {
			var e1, e2, e3 error
			base, e1 = strconv.ParseInt(parts[0], 10, 64)
			upto, e2 = strconv.ParseInt(parts[1], 10, 64)
			offset, e3 = strconv.Atoi(parts[2])
			bad = e1 != nil || e2 != nil || e3 != nil
		}
	} else if t := q.Get("$deltatoken"); t != "" {
		kind = "delta-link"
		tok, p, _ := strings.Cut(s.decodeToken(t), "|")
		props = p
		var err error
		base, err = strconv.ParseInt(tok, 10, 64)
		bad = err != nil || base > s.seq
	}
	s.count(kind)
	if s.NoDelta {
		writeError(w, http.StatusBadRequest, "ErrorInvalidRequest", "Delta query is not supported for this resource.")
		return
	}
	if bad {
		if s.SyncStateStatus == http.StatusGone {
			writeError(w, http.StatusGone, "resyncRequired", "The sync state is no longer valid: resynchronize from the start.")
		} else {
			writeError(w, http.StatusBadRequest, "syncStateNotFound", "The sync state generation is not found.")
		}
		return
	}
	type item struct {
		seq int64
		v   map[string]any
	}
	var items []item
	for _, m := range f.Messages {
		if m.seq > base && m.seq <= upto {
			items = append(items, item{m.seq, messageJSON(m, props)})
		}
	}
	if base >= 0 {
		for _, t := range f.removed {
			if t.seq > base && t.seq <= upto {
				items = append(items, item{t.seq, map[string]any{"@odata.type": "#microsoft.graph.message", "id": t.id, "@removed": map[string]any{"reason": "deleted"}}})
			}
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
	size := maxPageSize(r, s.PageSize)
	offset = min(offset, len(items))
	end := min(offset+size, len(items))
	var vals []map[string]any
	for _, it := range items[offset:end] {
		vals = append(vals, it.v)
	}
	link := fmt.Sprintf("https://%s/v1.0/users('%s')/mailFolders('%s')/messages/delta()", r.Host, box.ID, f.ID)
	out := map[string]any{"@odata.context": "https://" + r.Host + "/v1.0/$metadata#Collection(message)", "value": nonNil(vals)}
	if end < len(items) {
		out["@odata.nextLink"] = link + "?$skiptoken=" + s.encodeToken(fmt.Sprintf("%d.%d.%d|%s", base, upto, end, props))
	} else {
		out["@odata.deltaLink"] = link + "?$deltatoken=" + s.encodeToken(fmt.Sprintf("%d|%s", upto, props))
	}
	writeJSON(w, http.StatusOK, out)
}

// ForgetSyncState makes every delta and skip token given so far invalid
// (see SyncStateStatus), as Graph does when its sync state expires.
func (s *Server) ForgetSyncState() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation++
}

func (s *Server) encodeToken(t string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("g%d:%s", s.generation, t)))
}

func (s *Server) decodeToken(t string) string {
	b, err := base64.RawURLEncoding.DecodeString(t)
	prefix := fmt.Sprintf("g%d:", s.generation)
	if err != nil || !strings.HasPrefix(string(b), prefix) {
		return ""
	}
	return string(b[len(prefix):])
}

// value serves a message's MIME; called locked, unlocks to stream.
func (s *Server) value(w http.ResponseWriter, box *Mailbox, id string) {
	s.count("value")
	_, m := s.message(box, id)
	switch {
	case m == nil && !strings.HasPrefix(id, "AAMk"):
		writeError(w, http.StatusBadRequest, "ErrorInvalidIdMalformed", "Id is malformed.")
		return
	case m == nil:
		writeError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	case m.Status != 0:
		writeError(w, m.Status, "ErrorMimeContentConversionFailed", "The MIME content of the item could not be produced.")
		return
	}
	body, noLength := m.MIME, s.NoContentLength
	s.mu.Unlock()
	defer s.mu.Lock()
	w.Header().Set("Content-Type", "text/plain")
	if noLength {
		// Flushing before the end leaves the length unknown: a chunked
		// (HTTP/1.1) or length-less (HTTP/2) stream.
		half := len(body) / 2
		w.Write(body[:half])
		w.(http.Flusher).Flush()
		w.Write(body[half:])
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}
