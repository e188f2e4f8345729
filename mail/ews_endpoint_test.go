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

// TestDelegateEWS: an EWS delegated job is the admin's login
// (impersonation or FullAccess) or an Entra ID application's app-only token
// (Exchange Online); a login template has nothing to build over EWS.
func TestDelegateEWS(t *testing.T) {
	src := Endpoint{Scheme: "ews", Host: "outlook.office365.com", Port: 443, User: "someone"}
	d, err := Delegate(&src, DelegationRequest{Method: DelegateXOAUTH2, Tenant: " contoso.onmicrosoft.com ", ClientID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	if src.User != "" || d.App.Tenant != "contoso.onmicrosoft.com" {
		t.Fatalf("app-only: user %q, app %+v", src.User, d.App)
	}
	e := d.For(src, "ann@contoso.com", "client-secret")
	if e.Auth != "xoauth2" || e.AuthzID != "ann@contoso.com" || e.User != "" || e.App == nil || e.App.ClientID != "app-1" || e.Password != "client-secret" {
		t.Fatalf("app-only endpoint: %+v", e)
	}
	if d.SecretName(src) != "application's (client secret)" {
		t.Fatalf("secret name %q", d.SecretName(src))
	}
	if _, err := Delegate(&src, DelegationRequest{Method: DelegateXOAUTH2, ClientID: "app-1"}); err == nil || !strings.Contains(err.Error(), "tenant id") {
		t.Fatalf("no tenant: %v", err)
	}
	if _, err := Delegate(&src, DelegationRequest{Method: DelegateTemplate, Admin: "a", Template: "{user}"}); err == nil || !strings.Contains(err.Error(), "use --admin-login authzid") {
		t.Fatalf("template over EWS: %v", err)
	}
	onprem := Endpoint{Scheme: "ews", Host: "mail.contoso.com", Port: 443}
	d, err = Delegate(&onprem, DelegationRequest{Admin: "migadmin"})
	if err != nil || onprem.User != "migadmin" {
		t.Fatalf("admin login: %v %+v", err, onprem)
	}
	if e := d.For(onprem, "ann@contoso.com", "pw"); e.Auth != "" || e.User != "migadmin" || e.AuthzID != "ann@contoso.com" {
		t.Fatalf("admin endpoint: %+v", e)
	}
}
