package ews

import (
	"fmt"
	"slices"
	"strings"

	"github.com/banjia-mail/banjia/mail"
)

// Settings are what an EWS source needs beyond its URL, as the seed's
// EXCHANGE form asks for them (EWS domain, Exchange version) and the CLI's
// --ews-* flags give them: one place checks them for both.
type Settings struct {
	// Version is the RequestServerVersion (DefaultVersion when empty).
	Version string
	// Domain is the Windows (NetBIOS) domain of a login given as a bare
	// name, which then logs in as DOMAIN\name.
	Domain string
	// Auth is ntlm or basic; empty: what the server offers, NTLM first.
	Auth string
}

// IsZero says no setting is given.
func (s Settings) IsZero() bool {
	return strings.TrimSpace(s.Version+s.Domain+s.Auth) == ""
}

// Apply checks s and writes it into e, an ews:// endpoint; what is empty
// leaves e as it is.
func (s Settings) Apply(e *mail.Endpoint) error {
	if s.IsZero() {
		return nil
	}
	if e.Scheme != "ews" {
		return fmt.Errorf("the EWS version, domain and login method are for an EWS source (ews://mail.example.com or https://mail.example.com/EWS/Exchange.asmx), not %s://", e.Scheme)
	}
	if v := strings.TrimSpace(s.Version); v != "" {
		if !slices.Contains(Versions, v) {
			return fmt.Errorf("Exchange version %q: want one of %s", v, strings.Join(Versions, ", "))
		}
		e.Version = v
	}
	if d := strings.TrimSpace(s.Domain); d != "" {
		if strings.ContainsAny(d, `\@/ `) {
			return fmt.Errorf("EWS domain %q: give the domain's short (NetBIOS) name, e.g. CONTOSO", d)
		}
		e.Domain = d
	}
	switch a := strings.ToLower(strings.TrimSpace(s.Auth)); a {
	case "":
	case "ntlm", "basic":
		e.Auth = a
	default:
		return fmt.Errorf("EWS login method %q: want ntlm or basic", a)
	}
	return nil
}
