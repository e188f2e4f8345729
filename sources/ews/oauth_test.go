package ews_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
	"github.com/banjia-mail/banjia/sources/exchange"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
	"github.com/banjia-mail/banjia/state"
)

// entraID starts the Graph emulator's Entra ID as the authority of
// Exchange Online's tokens and points the token client at it.
func entraID(t *testing.T) *graphtest.Server {
	id := graphtest.New(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(id.CA)
	old := exchange.HTTPClient
	exchange.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(func() { exchange.HTTPClient = old })
	return id
}

// onlineJob creates, through the job front door the CLI and the dashboard
// call, a delegated job reading Exchange Online's EWS with the app's token.
func onlineJob(t *testing.T, store *state.Store, id string, srv *ewstest.Server, entra *graphtest.Server, secret string, dst *dovecot.Server, members []string) {
	t.Helper()
	var rows []migrate.AccountRow
	for i, m := range members {
		rows = append(rows, migrate.AccountRow{Line: i + 1, Old: m, New: newAddr(m)})
	}
	req := migrate.JobRequest{ID: id, Mode: state.ModeDelegated,
		Source: mail.Endpoint{Scheme: "ews", Host: srv.Host, Port: srv.Port, RootCAs: srv.CA}, Target: migratetest.Endpoint(dst.IMAPAddr),
		TargetAdmin: "master", TargetAdminPassword: "master-pw",
		Delegation:          mail.DelegationRequest{Method: mail.DelegateXOAUTH2, Tenant: entra.Tenant, ClientID: entra.ClientID, Authority: entra.URL() + "/"},
		SourceAdminPassword: secret, Accounts: rows}
	if _, _, err := migrate.NewIdleManager(store, migrate.Config{}).Create(context.Background(), req, migrate.CommandLine); err != nil {
		t.Fatal(err)
	}
}

// sameMail fails unless user's mailbox on dst holds exactly mb's messages
// (bytes, flags, dates), each once.
func sameMail(t *testing.T, dst *dovecot.Server, user, pw string, mb *Mailbox) {
	t.Helper()
	got := migratetest.Snapshot(t, dst, user, pw)
	want := map[string]int{}
	n := 0
	for _, msgs := range mb.Want {
		for _, m := range msgs {
			want[mailKey(m.Body, m.Flags, m.Date)]++
			n++
		}
	}
	seen := 0
	for folder, msgs := range got {
		for _, m := range msgs {
			k := mailKey(m.Body, m.Flags, m.Date)
			if want[k] == 0 {
				t.Errorf("%s %q: unexpected or duplicate message (flags %v, date %v)", user, folder, m.Flags, m.Date)
			}
			want[k]--
			seen++
		}
	}
	if seen != n {
		t.Errorf("%s: %d messages on the target, want %d", user, seen, n)
	}
}

// TestOAuthDelegatedJob: Exchange Online's EWS with an app-only token (the
// client credentials of an Entra ID application, no admin password): every
// request impersonates the member with X-AnchorMailbox, as Exchange Online
// requires. Mid-run every token is revoked, as when one expires before the
// cache expects: requests refused with 401 get a new token and go on, and
// every mailbox arrives in Dovecot exactly, nothing twice. A re-run appends
// nothing.
func TestOAuthDelegatedJob(t *testing.T) {
	entra := entraID(t)
	srv := ewstest.New(t)
	srv.Issuer = entra
	srv.Latency = 2 * time.Millisecond
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", MasterUser: "master", MasterPassword: "master-pw"})
	var boxes []*Mailbox
	var members []string
	total := 0
	for i := 0; i < 6; i++ {
		addr := fmt.Sprintf("o%d@contoso.com", i)
		boxes = append(boxes, Seed(srv, addr, 40+i, int64(300+i), 120<<10))
		members = append(members, addr)
		total += 40 + i
		if err := dst.AddUser(newAddr(addr), "unused"); err != nil {
			t.Fatal(err)
		}
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	onlineJob(t, store, "exo", srv, entra, entra.Secret, dst, members)

	var appended atomic.Int64
	var expire sync.Once
	cfg := migrate.Config{Accounts: 3, Lanes: 2, RetryBase: 50 * time.Millisecond,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
			s, err := imapsink.Open(ctx, e)
			if err != nil {
				return nil, err
			}
			return &countingSink{Sink: s, n: &appended}, nil
		}}
	done := make(chan struct{})
	go func() {
		// Revoke every token once a third of the mail is across.
		for appended.Load() < int64(total/3) {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		expire.Do(entra.ExpireTokens)
	}()
	err = migrate.New(store, cfg).Run(context.Background(), "exo")
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	st, issued := srv.Stats(), entra.Stats().Tokens
	t.Logf("%d appended; bearer requests %d, tokens refused %d, tokens issued %d, impersonated %d", appended.Load(), st.Bearer, st.Expired, issued, st.Impersonated)
	if st.Expired == 0 || issued < 2 {
		t.Fatalf("tokens refused %d, issued %d: the revocation did not land mid-run", st.Expired, issued)
	}
	if st.Bearer == 0 || st.Impersonated == 0 || st.NoAnchor != 0 || st.Handshakes+st.Basic != 0 {
		t.Fatalf("bearer %d, impersonated %d, refused for the anchor %d, password logins %d", st.Bearer, st.Impersonated, st.NoAnchor, st.Handshakes+st.Basic)
	}
	accts, err := store.Accounts("exo")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if a.State != state.AccountSucceeded || a.Counts.Imported != a.Counts.ToImport || a.Counts.Failed != 0 {
			t.Fatalf("%s: %s %q %+v", a.ID, a.State, a.Reason, a.Counts)
		}
	}
	if n := appended.Load(); n != int64(total) {
		t.Fatalf("%d appended, want %d", n, total)
	}
	for _, mb := range boxes {
		sameMail(t, dst, newAddr(mb.Box.SMTP)+"*master", "master-pw", mb)
	}

	appended.Store(0)
	cfg.Rerun = true
	if err := migrate.New(store, cfg).Run(context.Background(), "exo"); err != nil {
		t.Fatal(err)
	}
	if n := appended.Load(); n != 0 {
		t.Fatalf("re-run appended %d", n)
	}
}

// TestOAuthWrongSecret: a client secret Entra ID refuses fails every
// account with what to fix, and the secret is nowhere in what a person or
// the event log reads.
func TestOAuthWrongSecret(t *testing.T) {
	entra := entraID(t)
	srv := ewstest.New(t)
	srv.Issuer = entra
	Seed(srv, "w0@contoso.com", 5, 7, 10<<10)
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", MasterUser: "master", MasterPassword: "master-pw"})
	if err := dst.AddUser("w0@new.test", "unused"); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const wrong = "Wr0ng~Secret.value"
	onlineJob(t, store, "bad", srv, entra, wrong, dst, []string{"w0@contoso.com"})
	cfg := migrate.Config{Accounts: 1, Lanes: 1, RetryBase: 20 * time.Millisecond,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }}
	if err := migrate.New(store, cfg).Run(context.Background(), "bad"); err != nil {
		t.Fatal(err)
	}
	a, err := store.Account("bad", "w0@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	want := "the client secret of application " + entra.ClientID + " is wrong or has expired"
	if a.State != state.AccountFailed || !strings.Contains(a.Reason, want) {
		t.Fatalf("%s %q: want failed with %q", a.State, a.Reason, want)
	}
	events, err := store.Events("bad", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if strings.Contains(fmt.Sprint(ev), wrong) {
			t.Fatalf("the secret is in an event: %+v", ev)
		}
	}
	if strings.Contains(a.Reason, wrong) {
		t.Fatal("the secret is in the reason")
	}
	if st := srv.Stats(); st.Bearer != 0 || st.Requests["GetFolder"] != 0 {
		t.Fatalf("requests reached EWS without a token: %+v", st)
	}
}

// TestOAuthOutsideScope: an application whose RBAC for Applications role
// assignment is scoped to some mailboxes moves those; a member outside the
// scope fails alone, told what the tenant's admin must grant.
func TestOAuthOutsideScope(t *testing.T) {
	entra := entraID(t)
	srv := ewstest.New(t)
	srv.Issuer = entra
	srv.AppScope = []string{"in@contoso.com"}
	in := Seed(srv, "in@contoso.com", 12, 11, 10<<10)
	Seed(srv, "out@contoso.com", 8, 12, 10<<10)
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", MasterUser: "master", MasterPassword: "master-pw"})
	for _, u := range []string{"in@new.test", "out@new.test"} {
		if err := dst.AddUser(u, "unused"); err != nil {
			t.Fatal(err)
		}
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	onlineJob(t, store, "scoped", srv, entra, entra.Secret, dst, []string{"in@contoso.com", "out@contoso.com"})
	cfg := migrate.Config{Accounts: 2, Lanes: 1, RetryBase: 20 * time.Millisecond,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }}
	if err := migrate.New(store, cfg).Run(context.Background(), "scoped"); err != nil {
		t.Fatal(err)
	}
	a, err := store.Account("scoped", "in@contoso.com")
	if err != nil || a.State != state.AccountSucceeded || a.Counts.Imported != 12 {
		t.Fatalf("in scope: %v %+v", err, a)
	}
	sameMail(t, dst, "in@new.test*master", "master-pw", in)
	b, err := store.Account("scoped", "out@contoso.com")
	want := "application " + entra.ClientID + " may not open mailbox out@contoso.com: grant it full_access_as_app"
	if err != nil || b.State != state.AccountFailed || !strings.Contains(b.Reason, want) {
		t.Fatalf("out of scope: %v %s %q, want %q", err, b.State, b.Reason, want)
	}
	if n := migratetest.Count(t, dst, "out@new.test*master", "master-pw"); n != 0 {
		t.Fatalf("%d messages moved from a mailbox outside the scope", n)
	}
}

// certificate is a self-signed certificate with its key, as an admin
// uploads it to the app registration: the public part, and the PEM
// banjia is given in place of a client secret.
func certificate(t *testing.T, name string) (*x509.Certificate, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
	return cert, pemText
}

// TestOAuthCertificate: the application proves itself with a certificate
// instead of a client secret (a signed client assertion): the mailbox moves.
// A certificate not registered for the app fails the account saying so,
// without any of the PEM.
func TestOAuthCertificate(t *testing.T) {
	entra := entraID(t)
	registered, good := certificate(t, "banjia-migration")
	_, stranger := certificate(t, "someone-else")
	entra.Certificates = []*x509.Certificate{registered}
	srv := ewstest.New(t)
	srv.Issuer = entra
	box := Seed(srv, "c0@contoso.com", 15, 21, 10<<10)
	Seed(srv, "c1@contoso.com", 3, 22, 10<<10)
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", MasterUser: "master", MasterPassword: "master-pw"})
	for _, u := range []string{"c0@new.test", "c1@new.test"} {
		if err := dst.AddUser(u, "unused"); err != nil {
			t.Fatal(err)
		}
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	onlineJob(t, store, "cert", srv, entra, good, dst, []string{"c0@contoso.com"})
	onlineJob(t, store, "stranger", srv, entra, stranger, dst, []string{"c1@contoso.com"})
	cfg := migrate.Config{Accounts: 1, Lanes: 2, RetryBase: 20 * time.Millisecond,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }}
	for _, job := range []string{"cert", "stranger"} {
		if err := migrate.New(store, cfg).Run(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	a, err := store.Account("cert", "c0@contoso.com")
	if err != nil || a.State != state.AccountSucceeded || a.Counts.Imported != 15 {
		t.Fatalf("with the registered certificate: %v %s %q %+v", err, a.State, a.Reason, a.Counts)
	}
	sameMail(t, dst, "c0@new.test*master", "master-pw", box)
	b, err := store.Account("stranger", "c1@contoso.com")
	want := "the certificate of application " + entra.ClientID + " is not one registered for it"
	if err != nil || b.State != state.AccountFailed || !strings.Contains(b.Reason, want) || strings.Contains(b.Reason, "BEGIN") {
		t.Fatalf("with another certificate: %v %s %q, want %q", err, b.State, b.Reason, want)
	}
}
