// Package exchange opens Exchange mailboxes through a migration admin over
// IMAP (无感搬家: members give no password). The logins themselves are
// sources.Delegation's forms, spoken by the IMAP source; this package adds
// what only Exchange Online needs: app-only OAuth tokens from Entra ID
// (client credentials) for XOAUTH2, through azidentity, so that the IMAP
// source itself depends on no OAuth library.
package exchange

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
)

// Scope is Exchange Online's resource for IMAP.AccessAsApp tokens in
// Microsoft's global cloud; national clouds have their own (see Cloud).
const Scope = "https://outlook.office365.com/.default"

// Cloud is one of Microsoft's clouds as an IMAP or EWS client sees it.
type Cloud struct {
	Name string
	// IMAP is Exchange Online's IMAP host there, which serves EWS too
	// (https://IMAP/EWS/Exchange.asmx).
	IMAP string
	// Scope is the resource an app-only IMAP or EWS token is asked for.
	Scope string
	// Authority is Entra ID's login host there.
	Authority string
}

// Clouds are Microsoft's clouds with Exchange Online IMAP, by IMAP host.
var Clouds = []Cloud{
	{Name: "global", IMAP: "outlook.office365.com", Scope: Scope, Authority: cloud.AzurePublic.ActiveDirectoryAuthorityHost},
	// Office 365 operated by 21Vianet (世纪互联).
	{Name: "china", IMAP: "partner.outlook.cn", Scope: "https://partner.outlook.cn/.default", Authority: cloud.AzureChina.ActiveDirectoryAuthorityHost},
	// US Government GCC High; DoD.
	{Name: "usgov", IMAP: "outlook.office365.us", Scope: "https://outlook.office365.us/.default", Authority: cloud.AzureGovernment.ActiveDirectoryAuthorityHost},
	{Name: "usgov-dod", IMAP: "webmail.apps.mil", Scope: "https://webmail.apps.mil/.default", Authority: cloud.AzureGovernment.ActiveDirectoryAuthorityHost},
}

// CloudOf is the cloud whose IMAP (or EWS) host is host; any other host (a proxy, a
// test server) is taken as the global cloud's.
func CloudOf(host string) Cloud {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, c := range Clouds {
		if host == c.IMAP {
			return c
		}
	}
	return Clouds[0]
}

// HTTPClient, when set, carries the token requests (a private CA, a proxy;
// tests point it at an emulator's certificate).
var HTTPClient *http.Client

func init() { mail.RegisterTokenSource(Token) }

var (
	mu    sync.Mutex
	creds = map[[32]byte]*appCredential{}
)

// Token gets an app-only token for e.App, with e.Password as the client
// secret (or the PEM of a certificate and its private key). Credentials
// are kept per application so azidentity's cache spares a token request
// per connection, and so does a refusal: the accounts of a job with a
// wrong secret fail with one token request, not one each.
func Token(ctx context.Context, e mail.Endpoint) (string, error) {
	app := e.App
	cred, scope, err := credentialFor(e)
	if err != nil {
		return "", err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return "", cred.refused(tokenError(app, err))
	}
	return tok.Token, nil
}

// credentialFor is the endpoint's application credential and the scope
// to ask: the IMAP (or EWS) host says which cloud, its token resource and
// login host. A refusal remembered for the credential is returned at once.
func credentialFor(e mail.Endpoint) (*appCredential, string, error) {
	app := e.App
	if app == nil {
		return nil, "", errors.New("no application given")
	}
	cl := CloudOf(e.Host)
	cred, err := credential(app, cl, e.Password)
	if err != nil {
		return nil, "", err
	}
	if err := cred.refusal(); err != nil {
		return nil, "", err
	}
	scope := app.Scope
	if scope == "" {
		scope = cl.Scope
	}
	return cred, scope, nil
}

// FreshToken is a token issued after refused, which the server no longer
// takes though the credential's cache still holds it (it expired early or
// was revoked). A claims request skips azidentity's cache; a renewal that
// another request made meanwhile is taken as it is, so many requests refused
// at once cost one token request.
func FreshToken(ctx context.Context, e mail.Endpoint, refused string) (string, error) {
	app := e.App
	cred, scope, err := credentialFor(e)
	if err != nil {
		return "", err
	}
	renewMu.Lock()
	defer renewMu.Unlock()
	if tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}}); err == nil && tok.Token != refused {
		return tok.Token, nil
	}
	claims := fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, time.Now().Unix())
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, Claims: claims})
	if err != nil {
		return "", cred.refused(tokenError(app, err))
	}
	return tok.Token, nil
}

// renewMu keeps renewals one at a time, so that requests refused together
// find the token the first of them got.
var renewMu sync.Mutex

// credential is the application's: a client secret, or a certificate when
// the secret is a PEM holding the certificate and its private key.
func credential(app *mail.App, cl Cloud, secret string) (*appCredential, error) {
	key := sha256.Sum256([]byte(app.Authority + "\x00" + cl.Authority + "\x00" + app.Tenant + "\x00" + app.ClientID + "\x00" + secret))
	mu.Lock()
	defer mu.Unlock()
	if c, ok := creds[key]; ok {
		return c, nil
	}
	var opts azcore.ClientOptions
	discovery := false
	if cl.Authority != cloud.AzurePublic.ActiveDirectoryAuthorityHost {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: cl.Authority}
	}
	if app.Authority != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: app.Authority}
		// A private authority cannot answer Microsoft's instance discovery.
		discovery = true
	}
	if HTTPClient != nil {
		opts.Transport = HTTPClient
	}
	var c azcore.TokenCredential
	var err error
	if IsCertificate(secret) {
		certs, pk, perr := azidentity.ParseCertificates([]byte(secret), nil)
		if perr != nil {
			// The parser's words only: never the PEM's.
			return nil, fault.New(fault.Account, fmt.Sprintf("the certificate of application %s: give the PEM of its certificate with the unencrypted private key (%s)", app.ClientID, lastLine(perr.Error())), nil)
		}
		c, err = azidentity.NewClientCertificateCredential(app.Tenant, app.ClientID, certs, pk,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: discovery})
	} else {
		c, err = azidentity.NewClientSecretCredential(app.Tenant, app.ClientID, secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: discovery})
	}
	if err != nil {
		return nil, fault.New(fault.Account, fmt.Sprintf("application %s in tenant %s: %v", app.ClientID, app.Tenant, err), nil)
	}
	creds[key] = &appCredential{TokenCredential: c}
	return creds[key], nil
}

// RefusalMemory is how long Entra ID's refusal of a credential (a wrong
// secret or certificate, an unknown application or tenant) is answered
// without asking again. A fixed secret is another credential, asked at once.
var RefusalMemory = time.Minute

// appCredential is an application's credential and its last refusal.
type appCredential struct {
	azcore.TokenCredential
	mu       sync.Mutex
	lastNo   error
	lastNoAt time.Time
}

// refusal is the refusal still remembered, nil if none.
func (c *appCredential) refusal() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastNo != nil && time.Since(c.lastNoAt) < RefusalMemory {
		return c.lastNo
	}
	return nil
}

// refused remembers err when it is a refusal of the credential, and
// returns it.
func (c *appCredential) refused(err error) error {
	if fault.RefusalOf(err) == fault.BadCredentials {
		c.mu.Lock()
		c.lastNo, c.lastNoAt = err, time.Now()
		c.mu.Unlock()
	}
	return err
}

// IsCertificate says the application's secret is a certificate with its
// private key (PEM) rather than a client secret.
func IsCertificate(secret string) bool {
	return strings.Contains(secret, "-----BEGIN ")
}

// tokenError turns Entra ID's answers into what the admin must fix. The
// AADSTS codes are Microsoft's documented ones; azidentity's own message is a
// multi-line dump, so only the AADSTS sentence of it is kept.
func tokenError(app *mail.App, err error) error {
	msg := err.Error()
	refused := func(format string, args ...any) error {
		// Entra ID said no: asking again will not help.
		return fault.Refused(fault.BadCredentials, fmt.Sprintf(format, args...), nil)
	}
	switch {
	case strings.Contains(msg, "AADSTS7000215"), strings.Contains(msg, "AADSTS7000222"):
		return refused("the client secret of application %s is wrong or has expired: create a new one", app.ClientID)
	case strings.Contains(msg, "AADSTS700027"), strings.Contains(msg, "AADSTS700024"):
		return refused("the certificate of application %s is not one registered for it, or has expired: upload its public part under Certificates & secrets", app.ClientID)
	case strings.Contains(msg, "AADSTS700016"):
		return refused("application %s is not registered in tenant %s", app.ClientID, app.Tenant)
	case strings.Contains(msg, "AADSTS90002"):
		return refused("tenant %s does not exist", app.Tenant)
	}
	if m := aadsts.FindString(msg); m != "" {
		// Some of Entra ID's other answers pass (AADSTS90033, a transient
		// error): not remembered as the credential's refusal.
		return fault.New(fault.Account, fmt.Sprintf("token request for application %s refused: %s", app.ClientID, m), nil)
	}
	return fmt.Errorf("token request for application %s failed: %s", app.ClientID, lastLine(msg))
}

var aadsts = regexp.MustCompile(`AADSTS\d+:[^"\r\n]*`)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
