package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/mail"
)

// checkAppFlags let banjia check walk Exchange Online's app-only EWS as a
// delegated job would: the application's token, then one member's mailbox.
func checkAppFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "admin-login", Usage: "xoauth2: check an EWS source as a delegated job with an app-only token (Exchange Online) would open it"},
		&cli.StringFlag{Name: "tenant", Usage: "xoauth2: the Entra ID tenant id"},
		&cli.StringFlag{Name: "client-id", Usage: "xoauth2: the application (client) id; its secret comes from --from-admin-pass-file or BANJIA_FROM_ADMIN_PASSWORD"},
		&cli.StringFlag{Name: "authority", Usage: "xoauth2: authority host other than https://login.microsoftonline.com/ (national clouds)"},
		&cli.StringFlag{Name: "member", Usage: "xoauth2: the member whose mailbox the application opens (default: the user of --from)"},
	}
	return append(flags, passFlags("from-admin", "application's (client secret or certificate PEM)", "BANJIA_FROM_ADMIN_PASSWORD")...)
}

// appSource turns src into the endpoint a delegated app-only job opens for
// one member, with the application's secret; ok is false when the check is
// not of app-only EWS.
func appSource(c *cli.Context, src mail.Endpoint) (e mail.Endpoint, ok bool, err error) {
	method := c.String("admin-login")
	if method == "" {
		for _, f := range []string{"tenant", "client-id", "authority", "member"} {
			if c.IsSet(f) {
				return src, false, fmt.Errorf("--%s is for --admin-login xoauth2", f)
			}
		}
		return src, false, nil
	}
	if method != mail.DelegateXOAUTH2 {
		return src, false, fmt.Errorf("banjia check takes --admin-login xoauth2 only (app-only EWS); check an admin's login with its own --from")
	}
	if src.Scheme != "ews" {
		return src, false, errors.New("--admin-login xoauth2 checks an EWS source: --provider exchange-online-ews, or --from ews://outlook.office365.com")
	}
	member := c.String("member")
	if member == "" {
		member = src.User
	}
	if member == "" {
		return src, false, errors.New("which member's mailbox should the application open? give --member (an address in the tenant)")
	}
	d, err := mail.Delegate(&src, mail.DelegationRequest{Method: method, Tenant: c.String("tenant"), ClientID: c.String("client-id"), Authority: c.String("authority")})
	if err != nil {
		return src, false, err
	}
	secret, err := password(c, "from-admin", d.SecretName(src))
	if err != nil {
		return src, false, err
	}
	return d.For(src, member, secret), true, nil
}
