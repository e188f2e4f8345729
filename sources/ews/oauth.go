package ews

import (
	"context"
	"fmt"
	"strings"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources/exchange"
)

// appToken is Exchange Online's app-only access (Auth "xoauth2"): an Entra
// ID application's client-credentials token in place of a login, asked for
// the resource of the EWS host's cloud (outlook.office365.com,
// partner.outlook.cn for 21Vianet, outlook.office365.us for GCC High). The
// tokens come from package exchange, as the IMAP source's XOAUTH2 ones do.
//
// Exchange Online takes such a token only with ExchangeImpersonation naming
// the mailbox and X-AnchorMailbox routing the request to it; the client
// sends both for every request (the endpoint's AuthzID).
type appToken struct {
	e mail.Endpoint
}

// checkApp refuses an app-only endpoint that cannot work, before any
// token is asked for.
func checkApp(e mail.Endpoint) error {
	switch {
	case e.App == nil || strings.TrimSpace(e.App.Tenant) == "" || strings.TrimSpace(e.App.ClientID) == "":
		return fault.New(fault.Account, "app-only EWS needs the Entra ID tenant and the application (client) id", nil)
	case e.Password == "":
		return fault.New(fault.Account, fmt.Sprintf("app-only EWS needs the client secret of application %s", e.App.ClientID), nil)
	case e.AuthzID == "":
		return fault.New(fault.Account, "an app-only token opens a mailbox only through ExchangeImpersonation: name the mailbox (a delegated job does, for each member)", nil)
	}
	return nil
}

// get is the application's token, from azidentity's cache while it lasts.
func (a *appToken) get(ctx context.Context) (string, error) {
	tok, err := exchange.Token(ctx, a.e)
	if err != nil {
		return "", a.refused(err)
	}
	return tok, nil
}

// fresh is a token other than refused, which Exchange no longer takes
// (expired before the cache expected, or revoked).
func (a *appToken) fresh(ctx context.Context, refused string) (string, error) {
	tok, err := exchange.FreshToken(ctx, a.e, refused)
	if err != nil {
		return "", a.refused(err)
	}
	return tok, nil
}

// refused classifies a failed token request: what Entra ID refused (wrong
// secret or certificate, unknown application or tenant) fails the account
// with what to fix; anything else (the authority out of reach) is tried
// again. The secret is cut out of whatever the OAuth library said.
func (a *appToken) refused(err error) error {
	msg := err.Error()
	if a.e.Password != "" {
		msg = strings.ReplaceAll(msg, a.e.Password, "***")
	}
	reason := fmt.Sprintf("cannot get an access token for application %s in tenant %s: %s", a.e.App.ClientID, a.e.App.Tenant, msg)
	if fault.Classify(err) == fault.Account {
		return fault.Refused(fault.BadCredentials, reason, nil)
	}
	return fault.RetryAfter(0, reason, nil)
}

// tokenRefusedReason is what a person reads when Exchange refuses a token
// Entra ID has just issued: the application lacks the right, not the secret.
func (c *client) tokenRefusedReason() string {
	return fmt.Sprintf("Exchange at %s refused the access token of application %s: the tenant's admin must grant it EWS access "+
		"(the application permission full_access_as_app of Office 365 Exchange Online with admin consent, or an RBAC for Applications "+
		"role assignment of \"Application EWS.AccessAsApp\" whose management scope holds the mailboxes)", c.host, c.user)
}
