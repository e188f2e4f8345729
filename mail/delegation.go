package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Delegated logins (无感搬家): one migration admin opens every member's
// mailbox, so members give no password. Which form works depends on the
// old server:
//
//   - DelegateAuthzID: SASL PLAIN with authorization identity = member and
//     authentication identity = admin (Exchange 2010-2019 with FullAccess,
//     Dovecot master users, Zimbra).
//   - DelegateTemplate: LOGIN with a user name built from a template, such as
//     `DOMAIN\admin\{alias}` (Exchange on-premises) or `{user}*{admin}`
//     (Dovecot's master user separator).
//   - DelegateXOAUTH2: an app-only OAuth token (client credentials) and
//     XOAUTH2 as the member (Exchange Online, which refuses passwords over
//     IMAP).
const (
	DelegateAuthzID  = "authzid"
	DelegateTemplate = "template"
	DelegateXOAUTH2  = "xoauth2"
)

// Delegation says how the admin of a delegated job logs in as each member.
type Delegation struct {
	Method string
	// Template, for DelegateTemplate: {user} is the member's address,
	// {alias} its local part, {domain} its domain, {admin} the admin.
	Template string `json:",omitempty"`
	// App is the registered application, for DelegateXOAUTH2.
	App *App `json:",omitempty"`
}

// App is an application registered with an OAuth authority (Entra ID) that
// gets app-only tokens with its client secret.
type App struct {
	Tenant   string
	ClientID string
	// Authority replaces https://login.microsoftonline.com/ (national
	// clouds; tests).
	Authority string `json:",omitempty"`
	// Scope defaults to the resource of the IMAP or EWS host's cloud
	// (Exchange Online's https://outlook.office365.com/.default,
	// partner.outlook.cn's for 21Vianet, outlook.office365.us's for GCC
	// High).
	Scope string `json:",omitempty"`
}

// Check reports a delegation that cannot work, before any login is tried.
func (d *Delegation) Check() error {
	switch d.Method {
	case DelegateAuthzID:
	case DelegateTemplate:
		if !strings.Contains(d.Template, "{user}") && !strings.Contains(d.Template, "{alias}") {
			return fmt.Errorf("login template %q names no member: use {user} or {alias}, e.g. {user}*{admin} or DOMAIN\\admin\\{alias}", d.Template)
		}
	case DelegateXOAUTH2:
		if d.App == nil || d.App.Tenant == "" || d.App.ClientID == "" {
			return errors.New("XOAUTH2 delegation needs the tenant id and the application (client) id")
		}
	default:
		return fmt.Errorf("unknown delegated login %q: want authzid, template or xoauth2", d.Method)
	}
	return nil
}

// DelegationRequest is what an admin gives for a delegated job, on the
// command line or in the dashboard's form.
type DelegationRequest struct {
	Admin    string // the migration admin's login on the old server (not for xoauth2 or Graph)
	Method   string // authzid (the default), template or xoauth2
	Template string // for template
	// Tenant, ClientID and Authority name the application, for xoauth2.
	Tenant, ClientID, Authority string
}

// Delegate checks a request against the source it is for and returns the
// delegation, with the admin written into src where the old server logs
// the admin in by name. SecretName says what the secret that goes with it
// is called.
func Delegate(src *Endpoint, r DelegationRequest) (*Delegation, error) {
	if src.Scheme == "graph" {
		// The app (its client id is the URL's user, its secret the admin
		// password) reads each member's mailbox.
		if src.User == "" || src.Tenant == "" {
			return nil, errors.New("a Graph source names the app and the tenant: graph://CLIENT-ID@graph.microsoft.com?tenant=TENANT")
		}
		return &Delegation{Method: DelegateAuthzID}, nil
	}
	if r.Method == "" {
		r.Method = DelegateAuthzID
	}
	if src.Scheme == "ews" && r.Method == DelegateTemplate {
		// EWS names the member in the ExchangeImpersonation header (or, as a
		// FullAccess delegate, in the folder ids): there is no login to build.
		return nil, errors.New("an EWS source opens each mailbox through ExchangeImpersonation: use --admin-login authzid (the migration admin's NTLM or Basic login) or xoauth2 (an app-only token, Exchange Online)")
	}
	d := &Delegation{Method: r.Method, Template: r.Template}
	if d.Method == DelegateXOAUTH2 {
		d.App = &App{Tenant: strings.TrimSpace(r.Tenant), ClientID: strings.TrimSpace(r.ClientID), Authority: strings.TrimSpace(r.Authority)}
		if src.Scheme != "imaps" && src.Scheme != "imap" && src.Scheme != "ews" {
			return nil, errors.New("xoauth2 sends a bearer token over IMAP or EWS: use imaps://outlook.office365.com:993 or ews://outlook.office365.com")
		}
		// The token is the application's: no admin logs in.
		src.User = ""
	} else {
		if strings.TrimSpace(r.Admin) == "" {
			return nil, errors.New("a delegated job needs the migration admin's login on the old server")
		}
		src.User = strings.TrimSpace(r.Admin)
	}
	if err := d.Check(); err != nil {
		return nil, err
	}
	return d, nil
}

// SecretName is what the secret of a delegation is, for prompts and errors.
func (d *Delegation) SecretName(src Endpoint) string {
	if src.Scheme == "graph" || d.Method == DelegateXOAUTH2 {
		return "application's (client secret)"
	}
	return "migration admin's"
}

// For is the endpoint that opens member's mailbox through the admin: admin
// is e's User, adminSecret the admin's password (or the app's client secret).
func (d *Delegation) For(e Endpoint, member, adminSecret string) Endpoint {
	admin := e.User
	e.Password = adminSecret
	e.Delegated = true
	if e.Scheme == "ews" {
		// The admin logs in (NTLM or Basic, as the endpoint says) and names
		// the member in the ExchangeImpersonation header, or as a FullAccess
		// delegate when impersonation is refused. With an app-only token
		// (Exchange Online) the application is who logs in, and
		// impersonation is the only way in.
		e.AuthzID = member
		if d.Method == DelegateXOAUTH2 {
			e.Auth, e.User = "xoauth2", ""
			app := *d.App
			e.App = &app
		}
		return e
	}
	switch d.Method {
	case DelegateAuthzID:
		e.Auth, e.AuthzID = "plain", member
	case DelegateTemplate:
		alias, domain, _ := strings.Cut(member, "@")
		e.Auth, e.AuthzID = "login", ""
		e.User = strings.NewReplacer("{user}", member, "{alias}", alias, "{domain}", domain, "{admin}", admin).Replace(d.Template)
	case DelegateXOAUTH2:
		e.Auth, e.User, e.AuthzID = "xoauth2", member, ""
		app := *d.App
		e.App = &app
	}
	return e
}

// TokenSource gets an app-only access token for e.App with e.Password as
// the client secret.
type TokenSource func(ctx context.Context, e Endpoint) (string, error)

var (
	tokenMu     sync.RWMutex
	tokenSource TokenSource
)

// RegisterTokenSource installs the OAuth client (package sources/exchange
// does, so that the IMAP source needs no OAuth library).
func RegisterTokenSource(ts TokenSource) {
	tokenMu.Lock()
	tokenSource = ts
	tokenMu.Unlock()
}

// Token gets an access token for an XOAUTH2 endpoint.
func Token(ctx context.Context, e Endpoint) (string, error) {
	tokenMu.RLock()
	ts := tokenSource
	tokenMu.RUnlock()
	if ts == nil {
		return "", errors.New("no OAuth client is built in (import sources/exchange)")
	}
	if e.App == nil {
		return "", errors.New("XOAUTH2 login without an application (tenant and client id)")
	}
	return ts(ctx, e)
}
