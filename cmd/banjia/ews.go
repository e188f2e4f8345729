package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources/ews"
)

// ewsFlags are the settings of an Exchange Web Services source that its URL
// does not carry well (a backslash has no place in a URL's user).
func ewsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ews-version", Usage: "EWS source: the Exchange version asked for (" + strings.Join(ews.Versions, ", ") + "; default " + ews.DefaultVersion + ")"},
		&cli.StringFlag{Name: "ews-domain", Usage: "EWS source: the Windows domain of the login, which is then DOMAIN\\name"},
		&cli.StringFlag{Name: "ews-auth", Usage: "EWS source: ntlm or basic (default: what the server offers, NTLM first)"},
	}
}

// applyEWSFlags writes the --ews-* flags into an ews:// endpoint and refuses
// them for any other.
func applyEWSFlags(c *cli.Context, e *mail.Endpoint) error {
	set := false
	for _, f := range []string{"ews-version", "ews-domain", "ews-auth"} {
		set = set || c.IsSet(f)
	}
	if !set {
		return nil
	}
	if e.Scheme != "ews" {
		return fmt.Errorf("--ews-version, --ews-domain and --ews-auth are for an EWS source (ews://mail.example.com or https://mail.example.com/EWS/Exchange.asmx), not %s://", e.Scheme)
	}
	if v := c.String("ews-version"); v != "" {
		if !slices.Contains(ews.Versions, v) {
			return fmt.Errorf("--ews-version %q: want one of %s", v, strings.Join(ews.Versions, ", "))
		}
		e.Version = v
	}
	if d := c.String("ews-domain"); d != "" {
		if strings.ContainsAny(d, `\@/ `) {
			return fmt.Errorf("--ews-domain %q: give the domain's short (NetBIOS) name, e.g. CONTOSO", d)
		}
		e.Domain = d
	}
	switch a := strings.ToLower(c.String("ews-auth")); a {
	case "":
	case "ntlm", "basic":
		e.Auth = a
	default:
		return fmt.Errorf("--ews-auth %q: want ntlm or basic", a)
	}
	return nil
}
