package exchange_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sources/exchange"
	"github.com/banjia-mail/banjia/state"
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

// TestXOAUTH2TokenExpiresMidRun: Exchange Online ends a session whose token
// has expired with "* BYE ... AccessTokenExpired". The lane logs in again
// with a new token and goes on: every message arrives once, the account
// succeeds.
func TestXOAUTH2TokenExpiresMidRun(t *testing.T) {
	id := newEntra(t, "contoso-tenant", "app-1234", "client-secret-xyz")
	id.lifetime = 300 * time.Millisecond
	x := newExchangeOnline(t, id.valid)
	x.fetchDelay = 40 * time.Millisecond // 20+ FETCHes: every session outlives its token
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox"})
	const member = "long@contoso.test"
	fx := fixture(member, 31, 400)
	x.addMailbox(t, member, true, fx, folderOrder)
	if err := dst.AddUser("new-"+member, "new-pw"); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	job := &state.Job{ID: "exo", State: state.JobCreated, Created: time.Now(), Source: migratetest.Endpoint(x.Addr), Target: migratetest.Endpoint(dst.IMAPAddr),
		Delegation: &mail.Delegation{Method: mail.DelegateXOAUTH2, App: &mail.App{Tenant: id.tenant, ClientID: id.clientID, Authority: id.Authority()}}}
	if job.SourceAdminSecret, err = store.Seal(id.secret); err != nil {
		t.Fatal(err)
	}
	if err := store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	a := &state.Account{ID: member, Source: member, Target: "new-" + member, State: state.AccountNotStarted}
	a.TargetSecret, _ = store.Seal("new-pw")
	if err := store.PutAccounts(job.ID, a); err != nil {
		t.Fatal(err)
	}
	r := migrate.New(store, migrate.Config{Accounts: 1, Lanes: 1, RetryBase: 20 * time.Millisecond, BatchMessages: 20,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.Run(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	got, err := store.Account(job.ID, member)
	if err != nil {
		t.Fatal(err)
	}
	x.mu.Lock()
	byes, logins := x.byes, x.logins[member]
	x.mu.Unlock()
	t.Logf("%d sessions ended for an expired token, %d logins", byes, logins)
	if byes == 0 {
		t.Fatal("no session outlived its token: the test proves nothing")
	}
	if got.State != state.AccountSucceeded || got.Counts.Imported != 400 || got.Counts.Failed != 0 {
		t.Fatalf("%s %+v %q", got.State, got.Counts, got.Reason)
	}
	sameAsFixture(t, member, fx, migratetest.Snapshot(t, dst, "new-"+member, "new-pw"))
}

// TestRefusalRemembered: Entra ID's refusal of a wrong secret is answered
// again without a token request while it is remembered, so the accounts of
// a job fail with one request; the right secret is asked at once.
func TestRefusalRemembered(t *testing.T) {
	id := newEntra(t, "contoso-tenant", "app-77", "the-right-one")
	e := mail.Endpoint{Scheme: "imaps", Host: "outlook.office365.com", Port: 993, Password: "a-wrong-one",
		App: &mail.App{Tenant: id.tenant, ClientID: id.clientID, Authority: id.Authority()}}
	for i := 0; i < 5; i++ {
		_, err := exchange.Token(context.Background(), e)
		if err == nil || !strings.Contains(err.Error(), "the client secret of application app-77 is wrong") || strings.Contains(err.Error(), "a-wrong-one") {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if n := id.requests.Load(); n != 1 {
		t.Fatalf("%d token requests for 5 refused attempts, want 1", n)
	}
	e.Password = "the-right-one"
	if tok, err := exchange.Token(context.Background(), e); err != nil || !id.valid(tok) {
		t.Fatalf("the right secret: %v", err)
	}
	old := exchange.RefusalMemory
	exchange.RefusalMemory = 0
	t.Cleanup(func() { exchange.RefusalMemory = old })
	e.Password = "a-wrong-one"
	exchange.Token(context.Background(), e)
	if n := id.requests.Load(); n != 3 {
		t.Fatalf("%d token requests, want 3: a forgotten refusal is asked again", n)
	}
}
