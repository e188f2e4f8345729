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
		{raw: "x", provider: "qq", protocol: "smtp", wantErr: "want imap or pop3"},
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
		if p.IMAP.Port != 993 || p.POP3.Port != 995 {
			t.Errorf("%s: IMAP %d, POP3 %d: TLS ports are 993 and 995", name, p.IMAP.Port, p.POP3.Port)
		}
		if p.Hint == "" {
			t.Errorf("%s has no hint", name)
		}
	}
}
