package imapsource_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/idproxy"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/mail/imapconn"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/imapsource"
	"github.com/banjia-mail/banjia/sources/sourcetest"
)

// netease is a Dovecot mailbox behind a proxy that answers SELECT and
// EXAMINE "Unsafe Login" until the client sent IMAP ID, as NetEase's
// servers (163, 126, yeah.net, 网易企业邮) do.
func netease(t *testing.T, opts idproxy.Options) (*idproxy.Proxy, sourcetest.Fixture) {
	t.Helper()
	s := dovecot.StartT(t, dovecot.Options{})
	if err := s.AddUser("u@163.test", "authcode"); err != nil {
		t.Fatal(err)
	}
	fx := sourcetest.Fixture{Folders: map[string][]sourcetest.Message{}, FlagsKept: true, DatesListed: true,
		Special: map[string]string{"Sent": mail.SpecialSent, "INBOX": ""}}
	byFolder := map[string][]dovecot.Message{}
	for _, m := range mailgen.Mailbox("u@163.test", mailgen.Options{Seed: 163, Messages: 40,
		Folders: []string{"INBOX", "Sent", "客户/北京"}}) {
		byFolder[m.Folder] = append(byFolder[m.Folder], dovecot.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
		fx.Folders[m.Folder] = append(fx.Folders[m.Folder], sourcetest.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
	}
	for f, msgs := range byFolder {
		if err := s.Deliver("u@163.test", f, msgs); err != nil {
			t.Fatal(err)
		}
	}
	p, err := idproxy.Start(s.IMAPAddr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, fx
}

func neteaseEndpoint(p *idproxy.Proxy) mail.Endpoint {
	return endpoint("imap+plain", p.Addr(), "u@163.test", "authcode", nil)
}

// TestIDBeforeSelect: through a server that demands ID before SELECT,
// banjia lists folders and fetches every message, because it identified
// itself after login.
func TestIDBeforeSelect(t *testing.T) {
	p, fx := netease(t, idproxy.Options{})
	sourcetest.Run(t, fx, func(t *testing.T) sources.Source {
		src, err := imapsource.Open(context.Background(), neteaseEndpoint(p))
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
	if r := p.Refused(); len(r) != 0 {
		t.Fatalf("the proxy refused %q as unsafe", r)
	}
	ids := p.IDs()
	if len(ids) == 0 {
		t.Fatal("banjia sent no ID")
	}
	t.Logf("sent %q", ids[0])
	for _, id := range ids {
		if !strings.HasPrefix(id, `ID ("name" "banjia" "version" "`) || !strings.Contains(id, `"vendor" "banjia"`) {
			t.Fatalf("ID sent as %q", id)
		}
		if strings.Contains(id, "u@163.test") || strings.Contains(id, "authcode") {
			t.Fatalf("ID tells the account: %q", id)
		}
	}
}

// unsafe opens a session through the proxy and EXAMINEs INBOX (by listing
// its messages), which the proxy must refuse; it returns the error.
func unsafe(t *testing.T, p *idproxy.Proxy) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := imapsource.Open(ctx, neteaseEndpoint(p))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer src.Close()
	folders, err := src.Folders(ctx)
	if err != nil {
		t.Fatalf("LIST works on NetEase without ID, and here: %v", err)
	}
	var inbox mail.Folder
	for _, f := range folders {
		if f.Name == "INBOX" {
			inbox = f
		}
	}
	_, err = src.Messages(ctx, inbox)
	if err == nil {
		t.Fatal("EXAMINE worked without ID")
	}
	if len(p.Refused()) == 0 {
		t.Fatalf("the proxy refused nothing, yet: %v", err)
	}
	return err
}

// actionable checks the reason a person reads for "Unsafe Login".
func actionable(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, want := range []string{`examine "INBOX"`, "identifies itself", "IMAP ID", "Unsafe Login. Please contact kefu@188.com", "web mail", "授权码"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if c := fault.Classify(err); c != fault.Account {
		t.Errorf("class %v, want account: retrying will not help", c)
	}
	if strings.Contains(msg, "authcode") {
		t.Error("error shows the password")
	}
}

// TestWithoutID shows the server really demands ID: with banjia's ID step
// off, EXAMINE fails with NetEase's words and a reason a person can act on.
func TestWithoutID(t *testing.T) {
	p, _ := netease(t, idproxy.Options{})
	restore := imapconn.SkipID()
	defer restore()
	err := unsafe(t, p)
	if len(p.IDs()) != 0 {
		t.Fatalf("ID sent with the step off: %q", p.IDs())
	}
	actionable(t, err)
}

// TestIDNotAdvertised: a server that does not offer ID is not sent it
// (some close the connection on an unknown command).
func TestIDNotAdvertised(t *testing.T) {
	p, _ := netease(t, idproxy.Options{HideID: true})
	err := unsafe(t, p)
	if len(p.IDs()) != 0 {
		t.Fatalf("ID sent to a server that does not offer it: %q", p.IDs())
	}
	actionable(t, err)
}

// TestIDRefused: a refused ID does not fail the login (most servers do not
// need it); on a server that does, EXAMINE then fails with the reason.
func TestIDRefused(t *testing.T) {
	p, _ := netease(t, idproxy.Options{RefuseID: true})
	err := unsafe(t, p)
	if len(p.IDs()) != 1 {
		t.Fatalf("IDs sent: %q", p.IDs())
	}
	actionable(t, err)
}

// TestPlainRefusedAsCommand: Coremail advertises AUTH=PLAIN and SASL-IR but
// answers PLAIN with an initial response "BAD Request not ending with".
// banjia then logs in with LOGIN; asked for PLAIN explicitly, it says the
// command was refused, not the password.
func TestPlainRefusedAsCommand(t *testing.T) {
	p, _ := netease(t, idproxy.Options{BrokenSASLIR: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := imapsource.Open(ctx, neteaseEndpoint(p))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	folders, err := src.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range folders {
		if _, err := src.Messages(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	src.Close()

	e := neteaseEndpoint(p)
	e.Auth = "plain"
	_, err = imapsource.Open(ctx, e)
	if err == nil {
		t.Fatal("PLAIN with an initial response logged in; the proxy should refuse it")
	}
	if msg := err.Error(); !strings.Contains(msg, "as a command, not the password") || !strings.Contains(msg, "Request not ending with") || strings.Contains(msg, "authcode") {
		t.Fatalf("error %q", msg)
	}
}
