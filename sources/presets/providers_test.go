package presets

import (
	"strings"
	"testing"
)

func TestProviders(t *testing.T) {
	cases := []struct {
		raw, provider, protocol string
		want                    string
		hint                    string
		wantErr                 string
	}{
		{raw: "alice@qq.com", provider: "qq", want: "imaps://alice%40qq.com@imap.qq.com:993", hint: "authorization code"},
		{raw: "alice@qq.com", provider: "qq", protocol: "pop3", want: "pop3s://alice%40qq.com@pop.qq.com:995"},
		{raw: "bob@163.com", provider: "163", want: "imaps://bob%40163.com@imap.163.com:993"},
		{raw: "carol@corp.example", provider: "exmail", want: "imaps://carol%40corp.example@imap.exmail.qq.com:993"},
		{raw: "dave@corp.example", provider: "exmail-overseas", want: "imaps://dave%40corp.example@hwimap.exmail.qq.com:993"},
		{raw: "imaps://erin@mail.corp.example", provider: "exchange", want: "imaps://erin@mail.corp.example:993"},
		{raw: "frank@corp.example", provider: "exchange", wantErr: "has no fixed server"},
		{raw: "x", provider: "nope", wantErr: "unknown provider"},
		{raw: "x", provider: "qq", protocol: "smtp", wantErr: "want imap, pop3 or ews"},
		{raw: "imaps://gina@imap.gmail.com", want: "imaps://gina@imap.gmail.com:993"},
	}
	for _, c := range cases {
		t.Run(c.provider+" "+c.raw, func(t *testing.T) {
			e, err := ResolveEndpoint(c.raw, c.provider, c.protocol)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.String() != c.want {
				t.Fatalf("%s, want %s", e, c.want)
			}
			if c.hint != "" && !strings.Contains(e.Hint, c.hint) {
				t.Fatalf("hint %q", e.Hint)
			}
		})
	}
	for name, p := range Providers {
		if p.EWS.Port != 0 && p.IMAP.Port == 0 && p.POP3.Port == 0 {
			if p.EWS.Port != 443 || p.EWSVersion == "" {
				t.Errorf("%s: EWS port %d, version %q", name, p.EWS.Port, p.EWSVersion)
			}
		} else if p.IMAP.Port != 993 || p.POP3.Port != 995 {
			t.Errorf("%s: IMAP %d, POP3 %d: TLS ports are 993 and 995", name, p.IMAP.Port, p.POP3.Port)
		}
		if p.Hint == "" {
			t.Errorf("%s has no hint", name)
		}
	}
}

// TestEWSPresets: the seed's EXCHANGE协议邮箱 as presets: the admin's EWS
// address (a URL, or just the host) with the version the seed suggests
// (2010), and Exchange Online's EWS host; neither has IMAP to offer.
func TestEWSPresets(t *testing.T) {
	for _, c := range []struct {
		raw, provider, protocol string
		want, version, path     string
		wantErr                 string
	}{
		{raw: "https://mail.contoso.com/EWS/Exchange.asmx", provider: "exchange-ews", want: "ews://mail.contoso.com:443", version: "Exchange2010_SP2"},
		{raw: "https://mail.contoso.com/ews/exchange.asmx?version=Exchange2013", provider: "exchange-ews", want: "ews://mail.contoso.com:443", version: "Exchange2013"},
		{raw: "ews://mail.contoso.com:8443/mail/EWS/Exchange.asmx", provider: "exchange-ews", want: "ews://mail.contoso.com:8443", version: "Exchange2010_SP2", path: "/mail/EWS/Exchange.asmx"},
		{raw: "ann", provider: "exchange-ews", wantErr: "give the EWS address"},
		{raw: "imaps://mail.contoso.com", provider: "exchange-ews", wantErr: "has no IMAP preset"},
		{raw: "", provider: "exchange-online-ews", want: "ews://outlook.office365.com:443", version: "Exchange2010_SP2"},
		{raw: "ews://partner.outlook.cn", provider: "exchange-online-ews", want: "ews://partner.outlook.cn:443", version: "Exchange2010_SP2"},
		{raw: "", provider: "exchange-online-ews", protocol: "pop3", wantErr: "has no POP3 preset"},
	} {
		e, err := ResolveEndpoint(c.raw, c.provider, c.protocol)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s %q: err %v, want %q", c.provider, c.raw, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", c.provider, c.raw, err)
			continue
		}
		if e.String() != c.want || e.Version != c.version || e.Path != c.path || e.Hint == "" {
			t.Errorf("%s %q: %s version %q path %q hint %q", c.provider, c.raw, e, e.Version, e.Path, e.Hint)
		}
	}
	if p := Providers["exchange-online-ews"]; !p.EWSOAuth || !strings.Contains(p.Hint, "full_access_as_app") {
		t.Errorf("exchange-online-ews: %+v", p)
	}
}
