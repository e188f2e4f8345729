package mail

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		in      string
		want    Endpoint
		wantErr string
	}{
		{in: "imaps://alice@mail.example.com", want: Endpoint{Scheme: "imaps", Host: "mail.example.com", Port: 993, User: "alice"}},
		{in: "imap://mail.example.com:1143?auth=plain", want: Endpoint{Scheme: "imap", Host: "mail.example.com", Port: 1143, Auth: "plain"}},
		{in: "imap+plain://bob%40old.example@127.0.0.1:143", want: Endpoint{Scheme: "imap+plain", Host: "127.0.0.1", Port: 143, User: "bob@old.example"}},
		{in: "IMAPS://h?insecure=1&authzid=carol", want: Endpoint{Scheme: "imaps", Host: "h", Port: 993, Insecure: true, AuthzID: "carol"}},
		{in: "imaps://alice:hunter2@mail.example.com", wantErr: "do not put the password in the URL"},
		{in: "ftp://h", wantErr: "unknown scheme"},
		{in: "imaps://h:99999", wantErr: "bad port"},
		{in: "imaps://h?auth=cram", wantErr: "want plain or login"},
		{in: "mail.example.com", wantErr: "want a URL like"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseEndpoint(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Scheme != c.want.Scheme || got.Host != c.want.Host || got.Port != c.want.Port || got.User != c.want.User ||
				got.Auth != c.want.Auth || got.Insecure != c.want.Insecure || got.AuthzID != c.want.AuthzID {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"imaps://a@b:993", "imap://h?auth=login", "imaps://u:p@h", "pop3s://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEndpoint(s)
		if err != nil {
			return
		}
		if e.Port <= 0 || e.Port > 65535 || e.Host == "" {
			t.Fatalf("accepted %q as %+v", s, e)
		}
		if e.Password != "" {
			t.Fatalf("password taken from URL %q", s)
		}
		if _, err := ParseEndpoint(e.String()); err != nil {
			t.Fatalf("String() %q does not parse back: %v", e.String(), err)
		}
	})
}
