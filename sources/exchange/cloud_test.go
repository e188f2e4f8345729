package exchange_test

import (
	"context"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources/exchange"
)

// TestNationalCloudScope: an XOAUTH2 token is asked for the resource of the
// IMAP host's cloud: partner.outlook.cn's for 21Vianet, outlook.office365.us's
// for GCC High, not always outlook.office365.com's.
func TestNationalCloudScope(t *testing.T) {
	for _, c := range []struct{ host, scope string }{
		{"partner.outlook.cn", "https://partner.outlook.cn/.default"},
		{"outlook.office365.us", "https://outlook.office365.us/.default"},
		{"outlook.office365.com", "https://outlook.office365.com/.default"},
	} {
		t.Run(c.host, func(t *testing.T) {
			id := newEntra(t, "tenant-"+c.host, "app-1", "s3cret")
			id.scope = c.scope
			e := mail.Endpoint{Scheme: "imaps", Host: c.host, Port: 993, Password: "s3cret",
				App: &mail.App{Tenant: id.tenant, ClientID: id.clientID, Authority: id.Authority()}}
			tok, err := exchange.Token(context.Background(), e)
			if err != nil || !id.valid(tok) {
				t.Fatalf("token for %s: %v", c.host, err)
			}
			// The same app asked for another cloud's resource is refused.
			other := e
			other.Host = "outlook.office365.com"
			if c.host == other.Host {
				other.Host = "partner.outlook.cn"
			}
			if _, err := exchange.Token(context.Background(), other); err == nil || !strings.Contains(err.Error(), "AADSTS70011") {
				t.Fatalf("token for the wrong cloud's resource: %v", err)
			}
		})
	}
	if c := exchange.CloudOf("PARTNER.outlook.cn"); c.Name != "china" || !strings.Contains(c.Authority, "chinacloudapi.cn") {
		t.Fatalf("21Vianet: %+v", c)
	}
	if c := exchange.CloudOf("outlook.office365.us"); c.Name != "usgov" || !strings.Contains(c.Authority, "microsoftonline.us") {
		t.Fatalf("GCC High: %+v", c)
	}
}
