package exchange_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/imapsource"
	"github.com/banjia-mail/banjia/sources/sourcetest"
	"github.com/banjia-mail/banjia/state"
)

var folderOrder = []string{"INBOX", "Sent", "Projects/2024", "客户"}

func fixture(user string, seed int64, n int) sourcetest.Fixture {
	fx := sourcetest.Fixture{Folders: map[string][]sourcetest.Message{}, FlagsKept: true, DatesListed: true}
	for _, m := range mailgen.Mailbox(user, mailgen.Options{Seed: seed, Messages: n, Folders: folderOrder}) {
		fx.Folders[m.Folder] = append(fx.Folders[m.Folder], sourcetest.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
	}
	return fx
}

// TestConformanceDelegatedDovecot: the conformance suite through a Dovecot
// master user, in both password forms of delegated login.
func TestConformanceDelegatedDovecot(t *testing.T) {
	const admin, adminPW, member = "migration-admin", "admin-pw-123", "alice@old.test"
	s := dovecot.StartT(t, dovecot.Options{MasterUser: admin, MasterPassword: adminPW})
	if err := s.AddUser(member, "alice-own-password"); err != nil {
		t.Fatal(err)
	}
	fx := fixture(member, 3, 60)
	for f, msgs := range fx.Folders {
		var dm []dovecot.Message
		for _, m := range msgs {
			dm = append(dm, dovecot.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
		}
		if err := s.Deliver(member, f, dm); err != nil {
			t.Fatal(err)
		}
	}
	base := migratetest.Endpoint(s.IMAPAddr)
	base.User = admin
	for _, d := range []mail.Delegation{
		{Method: mail.DelegateAuthzID},
		{Method: mail.DelegateTemplate, Template: "{user}*{admin}"},
	} {
		t.Run(d.Method, func(t *testing.T) {
			sourcetest.Run(t, fx, func(t *testing.T) sources.Source {
				src, err := imapsource.Open(context.Background(), d.For(base, member, adminPW))
				if err != nil {
					t.Fatal(err)
				}
				return src
			})
		})
	}
}

// TestConformanceXOAUTH2: the conformance suite as Exchange Online's app-only
// access: a token from the (emulated) Entra ID through the real azidentity
// client, XOAUTH2 as the member.
func TestConformanceXOAUTH2(t *testing.T) {
	id := newEntra(t, "contoso-tenant", "app-1234", "client-secret-xyz")
	x := newExchangeOnline(t, id.valid)
	const member = "alice@contoso.test"
	fx := fixture(member, 4, 60)
	x.addMailbox(t, member, true, fx, folderOrder)
	d := mail.Delegation{Method: mail.DelegateXOAUTH2, App: &mail.App{Tenant: id.tenant, ClientID: id.clientID, Authority: id.Authority()}}
	ep := d.For(migratetest.Endpoint(x.Addr), member, id.secret)
	sourcetest.Run(t, fx, func(t *testing.T) sources.Source {
		src, err := imapsource.Open(context.Background(), ep)
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
	if n := x.loginCount(member); n < 3 {
		t.Fatalf("%d XOAUTH2 logins", n)
	}
	if n := id.requests.Load(); n != 1 {
		t.Fatalf("%d token requests for %d logins: the token is not reused", n, x.loginCount(member))
	}
}

// TestExchangeOnlineJob runs a delegated XOAUTH2 job against the Exchange
// Online peer into a Dovecot target: a throttled mailbox is slowed down, not
// failed; a mailbox the app may not open fails with what to grant; a wrong
// client secret fails every account with what to fix, and never shows it.
func TestExchangeOnlineJob(t *testing.T) {
	id := newEntra(t, "contoso-tenant", "app-1234", "client-secret-xyz")
	x := newExchangeOnline(t, id.valid)
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox"})
	members := []string{"a@contoso.test", "b@contoso.test", "c@contoso.test"}
	want := map[string]sourcetest.Fixture{}
	for i, m := range members {
		want[m] = fixture(m, int64(10+i), 50)
		x.addMailbox(t, m, m != "c@contoso.test", want[m], folderOrder)
		if err := dst.AddUser("new-"+m, "new-pw"); err != nil {
			t.Fatal(err)
		}
	}
	x.setThrottle("b@contoso.test", 4)

	run := func(secret string) map[string]*state.Account {
		store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		src := migratetest.Endpoint(x.Addr)
		job := &state.Job{ID: "exo", State: state.JobCreated, Created: time.Now(), Source: src, Target: migratetest.Endpoint(dst.IMAPAddr),
			Delegation: &mail.Delegation{Method: mail.DelegateXOAUTH2, App: &mail.App{Tenant: id.tenant, ClientID: id.clientID, Authority: id.Authority()}}}
		if job.SourceAdminSecret, err = store.Seal(secret); err != nil {
			t.Fatal(err)
		}
		if err := store.PutJob(job); err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			a := &state.Account{ID: m, Source: m, Target: "new-" + m, State: state.AccountNotStarted}
			a.TargetSecret, _ = store.Seal("new-pw")
			if err := store.PutAccounts(job.ID, a); err != nil {
				t.Fatal(err)
			}
		}
		r := migrate.New(store, migrate.Config{Accounts: 3, Lanes: 2, RetryBase: 20 * time.Millisecond,
			OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := r.Run(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		out := map[string]*state.Account{}
		accts, _ := store.Accounts(job.ID)
		for _, a := range accts {
			out[a.ID] = a
			if strings.Contains(a.Reason, secret) {
				t.Fatalf("%s: the client secret is in the reason", a.ID)
			}
		}
		return out
	}

	// A wrong client secret first: nothing can be opened, and the admin is
	// told which secret to renew.
	for _, a := range run("wrong-secret") {
		if a.State != state.AccountFailed || !strings.Contains(a.Reason, "client secret of application app-1234 is wrong or has expired") {
			t.Fatalf("wrong secret, %s: %s %q", a.ID, a.State, a.Reason)
		}
	}

	got := run(id.secret)
	for _, m := range members[:2] {
		if a := got[m]; a.State != state.AccountSucceeded || a.Counts.Imported != 50 {
			t.Fatalf("%s: %s %+v %q", m, a.State, a.Counts, a.Reason)
		}
		sameAsFixture(t, m, want[m], migratetest.Snapshot(t, dst, "new-"+m, "new-pw"))
	}
	if a := got["c@contoso.test"]; a.State != state.AccountFailed ||
		!strings.Contains(a.Reason, "has no permission for this mailbox; grant FullAccess") {
		t.Fatalf("mailbox without FullAccess: %s %q", a.State, a.Reason)
	}
	x.mu.Lock()
	left := x.throttle["b@contoso.test"]
	x.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d throttled replies never reached", left)
	}
}

// sameAsFixture compares a target mailbox with what the source held: the
// same bodies in the same order, with flags and dates, folder by folder.
func sameAsFixture(t *testing.T, who string, fx sourcetest.Fixture, got migratetest.Mailbox) {
	t.Helper()
	for name, want := range fx.Folders {
		g := got[name]
		if len(g) != len(want) {
			t.Fatalf("%s %q: %d messages on the target, %d on the source", who, name, len(g), len(want))
		}
		for i := range want {
			wf := append([]string(nil), want[i].Flags...)
			sort.Strings(wf)
			if sha256.Sum256(g[i].Body) != sha256.Sum256(want[i].Body) || !g[i].Date.Equal(want[i].Date) ||
				strings.Join(wf, " ") != strings.Join(g[i].Flags, " ") {
				t.Fatalf("%s %q message %d differs (flags %v vs %v, date %v vs %v)", who, name, i, g[i].Flags, wf, g[i].Date, want[i].Date)
			}
		}
	}
}
