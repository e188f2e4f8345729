package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources/ews"
	"github.com/banjia-mail/banjia/sources/presets"
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
	return ews.Settings{Version: c.String("ews-version"), Domain: c.String("ews-domain"), Auth: c.String("ews-auth")}.Apply(e)
}

// ewsColumn is a preset's EWS server in banjia providers' table.
func ewsColumn(p presets.Provider) string {
	if p.EWS.Port == 0 {
		return "-"
	}
	host := p.EWS.Host
	if host == "" {
		host = "(your host)"
	}
	out := fmt.Sprintf("%s:%d %s", host, p.EWS.Port, p.EWSVersion)
	if p.EWSOAuth {
		out += " app-only OAuth"
	}
	return out
}
