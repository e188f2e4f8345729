package mail

import (
	"strings"
	"testing"
)

func TestParseEWSEndpoint(t *testing.T) {
	for _, c := range []struct {
		raw                         string
		host, path, version, domain string
		port                        int
		auth                        string
	}{
		{raw: "ews://mail.contoso.com", host: "mail.contoso.com", port: 443},
		{raw: "ews://migadmin@mail.contoso.com:8443?version=Exchange2013&domain=CONTOSO&auth=ntlm", host: "mail.contoso.com", port: 8443, version: "Exchange2013", domain: "CONTOSO", auth: "ntlm"},
		{raw: "https://mail.contoso.com/EWS/Exchange.asmx", host: "mail.contoso.com", port: 443},
		{raw: "https://mail.contoso.com/ews/exchange.asmx?auth=basic", host: "mail.contoso.com", port: 443, auth: "basic"},
		{raw: "ews://mail.contoso.com/mail/EWS/Exchange.asmx", host: "mail.contoso.com", port: 443, path: "/mail/EWS/Exchange.asmx"},
	} {
		e, err := ParseEndpoint(c.raw)
		if err != nil {
			t.Fatalf("%s: %v", c.raw, err)
		}
		if e.Scheme != "ews" || e.Host != c.host || e.Port != c.port || e.Path != c.path || e.Version != c.version || e.Domain != c.domain || e.Auth != c.auth {
			t.Errorf("%s: %+v", c.raw, e)
		}
	}
	for raw, want := range map[string]string{
		"https://mail.contoso.com/owa":              "must be Exchange's EWS URL",
		"ews://mail.contoso.com?auth=plain":         "EWS takes auth=ntlm or auth=basic",
		"imaps://mail.contoso.com?auth=ntlm":        "is for EWS",
		"ews://admin:secret@mail.contoso.com":       "do not put the password in the URL",
		"https://admin:secret@mail.contoso.com/owa": "must be Exchange's EWS URL",
	} {
		_, err := ParseEndpoint(raw)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}
