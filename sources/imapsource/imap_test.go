package imapsource_test

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
	"github.com/banjia-mail/banjia/sources/imapsource"
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
	fx := sourcetest.Fixture{Folders: map[string][]sourcetest.Message{}, FlagsKept: true, DatesListed: true,
		Special: map[string]string{"Sent": mail.SpecialSent, "INBOX": "", "客户/北京": ""}}
	byFolder := map[string][]dovecot.Message{}
	for _, m := range mailgen.Mailbox("u@x.test", mailgen.Options{Seed: 9, Messages: 80, MaxAttachment: 300 << 10,
		Folders: []string{"INBOX", "Sent", "客户/北京", "Projects & Plans"}}) {
		byFolder[m.Folder] = append(byFolder[m.Folder], dovecot.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
		fx.Folders[m.Folder] = append(fx.Folders[m.Folder], sourcetest.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
	}
	for f, msgs := range byFolder {
		if err := s.Deliver("u@x.test", f, msgs); err != nil {
			t.Fatal(err)
		}
	}
	sourcetest.Run(t, fx, func(t *testing.T) sources.Source {
		src, err := imapsource.Open(context.Background(), endpoint("imaps", s.IMAPSAddr, "u@x.test", "pw", s.CertPEM))
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

// TestLoginPaths covers every way in and the reason a person reads when it fails.
func TestLoginPaths(t *testing.T) {
	s := dovecot.StartT(t, dovecot.Options{TLS: true, MasterUser: "admin", MasterPassword: "adminpw"})
	s.AddUser("u@x.test", "pw")
	cases := []struct {
		name    string
		e       mail.Endpoint
		class   fault.Class
		wantErr string
	}{
		{name: "imaps with the CA", e: endpoint("imaps", s.IMAPSAddr, "u@x.test", "pw", s.CertPEM)},
		{name: "STARTTLS with the CA", e: endpoint("imap", s.IMAPAddr, "u@x.test", "pw", s.CertPEM)},
		{name: "plain when asked", e: endpoint("imap+plain", s.IMAPAddr, "u@x.test", "pw", nil)},
		{name: "LOGIN forced", e: func() mail.Endpoint {
			e := endpoint("imap+plain", s.IMAPAddr, "u@x.test", "pw", nil)
			e.Auth = "login"
			return e
		}()},
		{name: "master user through PLAIN authzid", e: func() mail.Endpoint {
			e := endpoint("imap+plain", s.IMAPAddr, "admin", "adminpw", nil)
			e.AuthzID = "u@x.test"
			return e
		}()},
		{name: "master user through LOGIN template", e: endpoint("imap+plain", s.IMAPAddr, "u@x.test*admin", "adminpw", nil)},
		{name: "untrusted certificate", e: endpoint("imaps", s.IMAPSAddr, "u@x.test", "pw", nil), class: fault.Account,
			wantErr: "is not trusted"},
		{name: "insecure skips verification", e: func() mail.Endpoint {
			e := endpoint("imaps", s.IMAPSAddr, "u@x.test", "pw", nil)
			e.Insecure = true
			return e
		}()},
		{name: "TLS spoken to a plain port", e: endpoint("imaps", s.IMAPAddr, "u@x.test", "pw", s.CertPEM), class: fault.Account,
			wantErr: "does not speak TLS on this port"},
		{name: "wrong password", e: endpoint("imap+plain", s.IMAPAddr, "u@x.test", "nope", nil), class: fault.Account,
			wantErr: "wrong user name, password or authorization code"},
		{name: "closed port", e: endpoint("imap+plain", "127.0.0.1:1", "u@x.test", "pw", nil), class: fault.Retry,
			wantErr: "cannot connect to 127.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			src, err := imapsource.Open(ctx, c.e)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := src.Folders(ctx); err != nil {
					t.Fatal(err)
				}
				src.Close()
				return
			}
			if err == nil {
				src.Close()
				t.Fatal("logged in")
			}
			if !strings.Contains(err.Error(), c.wantErr) || fault.Classify(err) != c.class {
				t.Fatalf("error %q (class %v), want %q (class %v)", err, fault.Classify(err), c.wantErr, c.class)
			}
			if c.e.Password != "" && strings.Contains(err.Error(), c.e.Password) {
				t.Fatal("error shows the password")
			}
		})
	}
}
