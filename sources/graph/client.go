package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/wording"
)

// Tunables; tests shorten some of them.
var (
	// MaxConcurrent caps the requests in flight per mailbox, over every
	// session of this process (Graph throttles per app and mailbox, and
	// allows 4 concurrent requests per mailbox).
	MaxConcurrent = 4
	// MaxAttempts bounds the tries of one request answered 429 or 503.
	MaxAttempts = 8
	// MaxRetryWait is the longest Retry-After obeyed in place; a longer one
	// is handed to the engine, which pauses the account for that long.
	MaxRetryWait = 2 * time.Minute
	// IOTimeout bounds the wait for response headers and for each read of a
	// body: a stalled stream fails instead of hanging, however large the
	// message (kiota's own client would cut every request at 100 s).
	IOTimeout = 2 * time.Minute
	// VerifiedFor is how long a mailbox found readable by one session
	// is taken as readable by the next ones without asking again: a
	// permission taken away meanwhile fails their first request instead.
	VerifiedFor = 10 * time.Minute
)

// cloudConf is where a Graph host gets its tokens.
type cloudConf struct {
	host      string // Graph host[:port]
	authority string // Entra ID authority host URL
	scope     string
	// discovery: Microsoft's clouds answer instance discovery; anything
	// else (an emulator, a private proxy) would only fail it.
	discovery bool
	// noDelta: the cloud has no message delta (Office 365 operated by
	// 21Vianet): folders are listed in full every time.
	noDelta bool
}

func cloudOf(e mail.Endpoint) cloudConf {
	host := strings.ToLower(e.Host)
	if host == "" {
		host = "graph.microsoft.com"
	}
	hostport := host
	if e.Port != 0 && e.Port != 443 {
		hostport = net.JoinHostPort(host, strconv.Itoa(e.Port))
	}
	c := cloudConf{host: hostport, scope: "https://graph.microsoft.com/.default", discovery: true}
	switch host {
	case "graph.microsoft.com":
		c.authority = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	case "graph.microsoft.us", "dod-graph.microsoft.us":
		c.authority, c.scope = cloud.AzureGovernment.ActiveDirectoryAuthorityHost, "https://"+host+"/.default"
	case "microsoftgraph.chinacloudapi.cn": // Office 365 operated by 21Vianet (世纪互联)
		c.authority, c.scope = cloud.AzureChina.ActiveDirectoryAuthorityHost, "https://"+host+"/.default"
		c.noDelta = true
	default:
		// Any other host serves its own token endpoint: the tests' emulator,
		// or a proxy in front of both Graph and Entra ID.
		c.authority, c.discovery = "https://"+hostport+"/", false
	}
	return c
}

func (c cloudConf) baseURL() string { return "https://" + c.host + "/v1.0" }

// Process-wide pieces shared by every session: one transport per TLS
// setting (connection reuse), one credential per app (its token cache), one
// limiter per mailbox (the concurrency cap and the server's pauses hold
// across the engine's parallel sessions).
var shared = struct {
	mu         sync.Mutex
	transports map[string]*http.Transport
	creds      map[string]*azidentity.ClientSecretCredential
	limiters   map[string]*limiter
}{transports: map[string]*http.Transport{}, creds: map[string]*azidentity.ClientSecretCredential{}, limiters: map[string]*limiter{}}

func tlsKey(e mail.Endpoint) string {
	h := sha256.Sum256(e.RootCAs)
	return fmt.Sprintf("%t|%x", e.Insecure, h[:8])
}

func transportFor(e mail.Endpoint) (*http.Transport, error) {
	key := tlsKey(e)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if t := shared.transports[key]; t != nil {
		return t, nil
	}
	cfg, err := e.TLSConfig()
	if err != nil {
		return nil, fault.New(fault.Account, "bad CA certificate", err)
	}
	// One transport serves Graph and the login host: each request names its own server.
	cfg.ServerName = ""
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       cfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: IOTimeout,
		// A connection silent for 30 s is pinged and dropped if the ping
		// goes unanswered: a dead peer fails requests instead of hanging them.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	shared.transports[key] = t
	return t, nil
}

func credentialFor(e mail.Endpoint, c cloudConf, t *http.Transport) (*azidentity.ClientSecretCredential, error) {
	secret := sha256.Sum256([]byte(e.Password))
	key := strings.Join([]string{c.authority, e.Tenant, e.User, hex.EncodeToString(secret[:]), tlsKey(e)}, "|")
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if cred := shared.creds[key]; cred != nil {
		return cred, nil
	}
	cred, err := azidentity.NewClientSecretCredential(e.Tenant, e.User, e.Password, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: c.authority},
			Transport: &http.Client{Transport: t},
		},
		DisableInstanceDiscovery: !c.discovery,
	})
	if err != nil {
		return nil, fault.New(fault.Account, fmt.Sprintf("cannot use tenant %q and client id %q: %v", e.Tenant, e.User, err), nil)
	}
	shared.creds[key] = cred
	return cred, nil
}

func limiterFor(key string) *limiter {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	l := shared.limiters[key]
	if l == nil {
		l = &limiter{slots: make(chan struct{}, MaxConcurrent), whole: make(chan struct{}, 1)}
		shared.limiters[key] = l
	}
	return l
}

// limiter holds the requests to one mailbox to MaxConcurrent at a time and
// holds all of them back while the server has asked for a pause.
type limiter struct {
	slots chan struct{}
	// whole is held by a request taking every slot (a $batch), so that
	// two of them never each hold part of the slots waiting for the rest.
	whole chan struct{}
	mu    sync.Mutex
	until time.Time
}

// verifications: when a session of an app (its credential) last found a
// mailbox (its limiter) readable.
var verifications = struct {
	sync.Mutex
	at map[verification]time.Time
}{at: map[verification]time.Time{}}

type verification struct {
	cred *azidentity.ClientSecretCredential
	lim  *limiter
}

func (c *client) verified() {
	verifications.Lock()
	defer verifications.Unlock()
	verifications.at[verification{c.cred, c.lim}] = time.Now()
}

func (c *client) verifiedWithin(d time.Duration) bool {
	verifications.Lock()
	defer verifications.Unlock()
	at, ok := verifications.at[verification{c.cred, c.lim}]
	return ok && time.Since(at) < d
}

func (l *limiter) paused() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Until(l.until)
}

func (l *limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := time.Now().Add(d); t.After(l.until) {
		l.until = t
	}
}

func (l *limiter) acquire(ctx context.Context) error {
	for {
		if d := l.paused(); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		// A pause may have been asked for while we waited for the slot.
		if l.paused() > 0 {
			<-l.slots
			continue
		}
		return nil
	}
}

func (l *limiter) release() { <-l.slots }

// acquireAll takes every slot: the mailbox's whole allowance, for a
// request that Graph runs as several at once.
func (l *limiter) acquireAll(ctx context.Context) error {
	select {
	case l.whole <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	for held := 0; held < cap(l.slots); held++ {
		if err := l.acquire(ctx); err != nil {
			for ; held > 0; held-- {
				l.release()
			}
			<-l.whole
			return err
		}
	}
	return nil
}

func (l *limiter) releaseAll() {
	for range cap(l.slots) {
		l.release()
	}
	<-l.whole
}

// take and give hold one slot, or every slot for a request marked whole.
func (l *limiter) take(ctx context.Context) error {
	if whole, _ := ctx.Value(wholeMailboxKey{}).(bool); whole {
		return l.acquireAll(ctx)
	}
	return l.acquire(ctx)
}

func (l *limiter) giveFunc(ctx context.Context) func() {
	if whole, _ := ctx.Value(wholeMailboxKey{}).(bool); whole {
		return l.releaseAll
	}
	return l.release
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacedTransport sends requests for one mailbox through its limiter, asks
// for immutable ids, and obeys 429 and 503 answers: it waits as long as
// Retry-After says (or backs off when it says nothing) and tries again, up
// to MaxAttempts. The slot is held until the response body is closed.
type pacedTransport struct {
	base http.RoundTripper
	lim  *limiter
	// fresh gets a token past the credential's cache, for a request whose
	// cached token Graph no longer takes (expired early, revoked).
	fresh func(ctx context.Context, refused string) (string, error)
}

func (t *pacedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	// Immutable ids stay the same when a message moves between folders, so
	// a checkpoint keyed by id survives a user tidying up mid-migration.
	prefer := `IdType="ImmutableId"`
	if p := req.Header.Get("Prefer"); p != "" {
		prefer = p + ", " + prefer
	}
	req.Header.Set("Prefer", prefer)
	retryable := req.Method == http.MethodGet || req.Method == http.MethodHead
	renewed := false
	give := t.lim.giveFunc(req.Context())
	for attempt := 1; ; attempt++ {
		if err := t.lim.take(req.Context()); err != nil {
			return nil, err
		}
		resp, err := t.base.RoundTrip(req)
		if err != nil {
			give()
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && retryable && !renewed && t.fresh != nil && req.Header.Get("Authorization") != "" {
			// Once per request: a token refused again is the app's problem.
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			give()
			tok, err := t.fresh(req.Context(), strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			renewed = true
			continue
		}
		if throttled(resp.StatusCode) && retryable && attempt < MaxAttempts {
			if wait := retryAfter(resp.Header, attempt); wait <= MaxRetryWait {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				t.lim.pause(wait)
				give()
				continue
			}
		}
		resp.Body = &releasingBody{ReadCloser: resp.Body, release: give}
		return resp, nil
	}
}

func throttled(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// retryAfter is the server's Retry-After (seconds or a date), else an
// exponential backoff from one second.
func retryAfter(h http.Header, attempt int) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(time.Until(t), 0)
		}
	}
	return min(time.Second<<min(attempt-1, 5), 30*time.Second)
}

// releasingBody gives the limiter's slot back once, at the end of the body
// or when it is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// client is one mailbox (or the directory) of one tenant, as one app.
type client struct {
	e       mail.Endpoint
	cloud   cloudConf
	cred    *azidentity.ClientSecretCredential
	http    *http.Client // paced; no overall timeout, see IOTimeout
	lim     *limiter
	adapter *msgraphcore.GraphRequestAdapterBase
}

var registerJSON sync.Once

// newClient prepares the credential and the SDK for e; mailbox names the
// limiter (the member mailbox, or "" for directory calls).
func newClient(e mail.Endpoint, mailbox string) (*client, error) {
	switch {
	case e.Tenant == "":
		return nil, fault.New(fault.Account, "no tenant: give the Entra ID tenant id or primary domain (tenant=...)", nil)
	case e.User == "":
		return nil, fault.New(fault.Account, "no client id: give the app registration's application (client) id as the user", nil)
	case e.Password == "":
		return nil, fault.New(fault.Account, "no client secret for the app registration", nil)
	}
	c := &client{e: e, cloud: cloudOf(e)}
	t, err := transportFor(e)
	if err != nil {
		return nil, err
	}
	if c.cred, err = credentialFor(e, c.cloud, t); err != nil {
		return nil, err
	}
	lim := limiterFor(strings.ToLower(strings.Join([]string{c.cloud.host, e.Tenant, mailbox}, "|")))
	c.lim = lim
	c.http = &http.Client{Transport: &pacedTransport{base: t, lim: lim, fresh: c.freshToken}}
	registerJSON.Do(func() {
		abstractions.RegisterDefaultDeserializer(func() absser.ParseNodeFactory { return jsonserialization.NewJsonParseNodeFactory() })
		abstractions.RegisterDefaultSerializer(func() absser.SerializationWriterFactory { return jsonserialization.NewJsonSerializationWriterFactory() })
	})
	// kiota attaches tokens only to https URLs of the hosts listed here.
	hostname, _, err := net.SplitHostPort(c.cloud.host)
	if err != nil {
		hostname = c.cloud.host
	}
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(c.cred, []string{c.cloud.scope}, []string{hostname})
	if err != nil {
		return nil, fault.New(fault.Account, "Graph authentication setup", err)
	}
	// The SDK goes through the same paced transport (kiota's own retry
	// handler would not share our per-mailbox pauses); the one kiota
	// middleware kept turns %24select back into $select as Graph documents it.
	sdkHTTP := &http.Client{Transport: khttp.NewCustomTransportWithParentTransport(c.http.Transport, khttp.NewParametersNameDecodingHandler())}
	c.adapter, err = msgraphcore.NewGraphRequestAdapterBaseWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		auth, msgraphcore.GraphClientOptions{GraphServiceLibraryVersion: "banjia"}, nil, nil, sdkHTTP)
	if err != nil {
		return nil, fault.New(fault.Account, "Graph client setup", err)
	}
	c.adapter.SetBaseUrl(c.cloud.baseURL())
	return c, nil
}

func (c *client) users() *users.UsersRequestBuilder {
	return users.NewUsersRequestBuilderInternal(map[string]string{"baseurl": c.cloud.baseURL()}, c.adapter)
}

// renewals keeps concurrent refusals of one app's token to one renewal:
// per credential, the tokens of its last renewal and when it was.
var renewals = struct {
	sync.Mutex
	last map[*azidentity.ClientSecretCredential]renewal
}{last: map[*azidentity.ClientSecretCredential]renewal{}}

type renewal struct {
	at     time.Time
	tokens []string
}

// freshToken is a token Entra ID issued after refused, which Graph refused: the
// credential's caches (with and without continuous access evaluation, as
// the SDK asks for one and our own requests the other) are bypassed with a
// claims request, once for all the requests refused at the same time.
func (c *client) freshToken(ctx context.Context, refused string) (string, error) {
	renewals.Lock()
	defer renewals.Unlock()
	if r := renewals.last[c.cred]; len(r.tokens) > 0 && !slices.Contains(r.tokens, refused) && time.Since(r.at) < time.Minute {
		// Renewed since this request took its token.
		return r.tokens[len(r.tokens)-1], nil
	}
	claims := fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, time.Now().Unix())
	r := renewal{at: time.Now()}
	for _, cae := range []bool{true, false} {
		tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.cloud.scope}, Claims: claims, EnableCAE: cae})
		if err != nil {
			return "", err
		}
		r.tokens = append(r.tokens, tok.Token)
	}
	renewals.last[c.cred] = r
	return r.tokens[len(r.tokens)-1], nil
}

// get sends a GET of our own (not through the SDK) with the app's token.
func (c *client) get(ctx context.Context, url string, hdr http.Header) (*http.Response, error) {
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.cloud.scope}})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	return c.http.Do(req)
}

// apiError is Graph's error body, and the status it came with.
type apiError struct {
	Status     int
	Code, Text string
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	if e.Code == "" && e.Text == "" {
		return fmt.Sprintf("Graph answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("Graph answered %d %s: %s", e.Status, e.Code, e.Text)
}

// responseError reads a failed response of our own requests.
func responseError(resp *http.Response) *apiError {
	defer resp.Body.Close()
	e := &apiError{Status: resp.StatusCode}
	if throttled(resp.StatusCode) {
		e.RetryAfter = retryAfter(resp.Header, 1)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body) == nil {
		e.Code, e.Text = body.Error.Code, body.Error.Message
	}
	return e
}

// asAPIError finds the status of an SDK or own-request error.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		ae = &apiError{Status: oe.ResponseStatusCode, Text: oe.Message}
		if me := oe.GetErrorEscaped(); me != nil {
			if me.GetCode() != nil {
				ae.Code = *me.GetCode()
			}
			if me.GetMessage() != nil {
				ae.Text = *me.GetMessage()
			}
		}
		if throttled(ae.Status) {
			ae.RetryAfter = time.Second
			if h := oe.ResponseHeaders; h != nil {
				if v := h.Get("Retry-After"); len(v) > 0 {
					ae.RetryAfter = retryAfter(http.Header{"Retry-After": v}, 1)
				}
			}
		}
		return ae
	}
	var kiotaErr *abstractions.ApiError
	if errors.As(err, &kiotaErr) {
		return &apiError{Status: kiotaErr.ResponseStatusCode, Text: kiotaErr.Message}
	}
	return nil
}

// classify turns an error of op on mailbox into one the engine can act on
// and a person can read.
func (c *client) classify(op, mailbox string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) || errors.Is(err, context.Canceled) {
		return err
	}
	var authErr *azidentity.AuthenticationFailedError
	if errors.As(err, &authErr) {
		return fault.Coded(fault.Account, wording.New("graph.credentials", "tenant", c.e.Tenant, "code", aadCode(authErr)), err)
	}
	if ae := asAPIError(err); ae != nil {
		switch {
		case ae.Status == http.StatusUnauthorized:
			return fault.New(fault.Account, fmt.Sprintf("Graph refused the app's token for %s: check that the app registration belongs to tenant %q", op, c.e.Tenant), ae)
		case ae.Status == http.StatusForbidden && mailbox == "":
			return fault.Coded(fault.Account, wording.New("graph.users.denied"), ae)
		case ae.Status == http.StatusForbidden:
			return fault.Coded(fault.Account, wording.New("graph.mail.denied", "member", mailbox), ae)
		case ae.Status == http.StatusNotFound && mailbox != "":
			return fault.Coded(fault.Account, wording.New("graph.nomailbox", "member", mailbox, "tenant", c.e.Tenant), ae)
		case throttled(ae.Status):
			return fault.RetryAfterCoded(ae.RetryAfter, wording.New("graph.throttled", "op", op), ae)
		case ae.Status >= 500:
			return fault.New(fault.Retry, fmt.Sprintf("Graph failed %s", op), ae)
		}
		return fault.New(fault.Account, fmt.Sprintf("Graph refused %s", op), ae)
	}
	if fault.IsTransient(err) {
		return fault.New(fault.Retry, fmt.Sprintf("connection to %s lost during %s", c.cloud.host, op), err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fault.New(fault.Account, fmt.Sprintf("cannot resolve host %q", dnsErr.Name), err)
	}
	if strings.Contains(err.Error(), "certificate") {
		return fault.New(fault.Account, fmt.Sprintf("the TLS certificate of %s is not trusted", c.cloud.host), err)
	}
	return fault.New(fault.Retry, fmt.Sprintf("Graph %s failed", op), err)
}

// aadCode picks the AADSTS code out of a token error, the part a person
// can look up (AADSTS7000215: wrong secret; AADSTS700016: no such app in
// the tenant; AADSTS90002: no such tenant).
func aadCode(err error) string {
	s := err.Error()
	i := strings.Index(s, "AADSTS")
	if i < 0 {
		return ""
	}
	j := i + len("AADSTS")
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	return " (" + s[i:j] + ")"
}
