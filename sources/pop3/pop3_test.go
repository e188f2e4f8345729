package pop3_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/pop3"
	"github.com/banjia-mail/banjia/sources/sourcetest"
)

func endpoint(scheme, addr, user, pw string, ca []byte) mail.Endpoint {
	e := migratetest.Endpoint(addr)
	e.Scheme, e.User, e.Password, e.RootCAs = scheme, user, pw, ca
	return e
}

func TestConformance(t *testing.T) {
	s := dovecot.StartT(t, dovecot.Options{TLS: true})
	s.AddUser("u@x.test", "pw")
	fx := sourcetest.Fixture{Folders: map[string][]sourcetest.Message{}}
	var msgs []dovecot.Message
	for _, m := range mailgen.Mailbox("u@x.test", mailgen.Options{Seed: 4, Messages: 60, MaxAttachment: 300 << 10, Folders: []string{"INBOX"}}) {
		msgs = append(msgs, dovecot.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
		fx.Folders["INBOX"] = append(fx.Folders["INBOX"], sourcetest.Message{Body: m.Body, Date: m.Date})
	}
	if err := s.Deliver("u@x.test", "INBOX", msgs); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []struct{ name, addr string }{{"pop3s", s.POP3SAddr}, {"pop3", s.POP3Addr}, {"pop3+plain", s.POP3Addr}} {
		t.Run(scheme.name, func(t *testing.T) {
			sourcetest.Run(t, fx, func(t *testing.T) sources.Source {
				src, err := pop3.Open(context.Background(), endpoint(scheme.name, scheme.addr, "u@x.test", "pw", s.CertPEM))
				if err != nil {
					t.Fatal(err)
				}
				return src
			})
		})
	}
}

func TestLoginFailures(t *testing.T) {
	s := dovecot.StartT(t, dovecot.Options{TLS: true})
	s.AddUser("u@x.test", "pw")
	if err := s.AddRefusedUser("locked@x.test", "pw", "Account_locked_by_policy"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want string
		e          mail.Endpoint
		class      fault.Class
		refusal    fault.Refusal
	}{
		{"wrong password", "wrong user name, password or authorization code", endpoint("pop3+plain", s.POP3Addr, "u@x.test", "bad", nil), fault.Account, fault.BadCredentials},
		{"refused though the password is right", `Account_locked_by_policy`, endpoint("pop3+plain", s.POP3Addr, "locked@x.test", "pw", nil), fault.Account, fault.BadCredentials},
		{"untrusted certificate", "is not trusted", endpoint("pop3s", s.POP3SAddr, "u@x.test", "pw", nil), fault.Account, fault.NotRefused},
		{"TLS to a plain port", "does not speak TLS on this port; use pop3:// (STLS) or the TLS port 995", endpoint("pop3s", s.POP3Addr, "u@x.test", "pw", s.CertPEM), fault.Account, fault.NotRefused},
		{"closed port", "cannot connect to 127.0.0.1:1", endpoint("pop3+plain", "127.0.0.1:1", "u@x.test", "pw", nil), fault.Retry, fault.NotRefused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			src, err := pop3.Open(ctx, c.e)
			if err == nil {
				src.Close()
				t.Fatal("logged in")
			}
			if !strings.Contains(err.Error(), c.want) || fault.Classify(err) != c.class || fault.RefusalOf(err) != c.refusal {
				t.Fatalf("error %q (%v, %v), want %q (%v, %v)", err, fault.Classify(err), fault.RefusalOf(err), c.want, c.class, c.refusal)
			}
		})
	}
}

func TestDateOf(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		msg  string
		want time.Time
	}{
		{"last Received wins", "Received: from b by c; Tue, 02 Jan 2018 10:00:00 +0000\r\nReceived: from a by b; Mon, 01 Jan 2018 09:00:00 +0000\r\nDate: Sun, 31 Dec 2017 08:00:00 +0000\r\n\r\nx",
			time.Date(2018, 1, 1, 9, 0, 0, 0, time.UTC)},
		{"Date when no Received", "Date: Sun, 31 Dec 2017 08:00:00 +0800\r\n\r\nx", time.Date(2017, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"bad Received falls back to Date", "Received: garbage\r\nDate: Sun, 31 Dec 2017 08:00:00 +0000\r\n\r\nx", time.Date(2017, 12, 31, 8, 0, 0, 0, time.UTC)},
		{"nothing: now", "Subject: hi\r\n\r\nx", now},
		{"no headers at all: now", "just text", now},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := pop3.DateOf([]byte(c.msg), now); !got.Equal(c.want) {
				t.Fatalf("%v, want %v", got, c.want)
			}
		})
	}
}
