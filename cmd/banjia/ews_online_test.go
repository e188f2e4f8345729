package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
)

// TestEWSOnlineCLI: Exchange Online over EWS with an application's token,
// created and run by the binary with --provider exchange-online-ews and
// --admin-login xoauth2 (no admin password: the client secret). Every
// token is revoked while the job copies; the run renews it and every mailbox
// arrives exactly, nothing twice. banjia providers shows both EWS presets.
// No secret reaches an output or the state file.
func TestEWSOnlineCLI(t *testing.T) {
	entra := graphtest.New(t)
	srv := ewstest.New(t)
	srv.Issuer = entra
	srv.Latency = 5 * time.Millisecond
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", MasterUser: "master", MasterPassword: "master-pw"})
	const perBox = 40
	names := []string{"ada", "bo", "cy"}
	want := map[string]map[string]int{}
	var csv strings.Builder
	for i, n := range names {
		inbox := &ewstest.Folder{Name: "Inbox", WellKnown: "inbox"}
		sent := &ewstest.Folder{Name: "Sent Items", WellKnown: "sentitems"}
		byName := map[string]*ewstest.Folder{"INBOX": inbox, "Sent": sent}
		want[n] = map[string]int{}
		for _, m := range mailgen.Mailbox(n+"@contoso.com", mailgen.Options{Seed: int64(70 + i), Messages: perBox, Folders: []string{"INBOX", "Sent"}}) {
			em := &ewstest.Message{MIME: m.Body, Received: m.Date}
			var flags []string
			for _, f := range m.Flags {
				if f == `\Seen` {
					em.Read = true
					flags = append(flags, f)
				}
			}
			byName[m.Folder].Messages = append(byName[m.Folder].Messages, em)
			want[n][mailSum(m.Body, flags, m.Date)]++
		}
		srv.AddMailbox(&ewstest.Mailbox{SMTP: n + "@contoso.com", Folders: []*ewstest.Folder{inbox, sent}})
		if err := dst.AddUser(n+"@new.test", "unused-"+n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&csv, "%s@contoso.com,%s@new.test\n", n, n)
	}
	dir := t.TempDir()
	ca, idCA, accounts := filepath.Join(dir, "ews-ca.pem"), filepath.Join(dir, "entra-ca.pem"), filepath.Join(dir, "accounts.csv")
	for f, data := range map[string][]byte{ca: srv.CA, idCA: entra.CA, accounts: []byte(csv.String())} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w := &cliWorld{World: &migratetest.World{T: t, Path: filepath.Join(dir, "banjia.db"), Job: "exo"}}
	// The token client trusts the emulated Entra ID as it would Microsoft's
	// login host: through the system's roots.
	w.env = []string{"SSL_CERT_FILE=" + idCA, "BANJIA_FROM_ADMIN_PASSWORD=" + entra.Secret, "BANJIA_TO_ADMIN_PASSWORD=master-pw"}

	providers := w.mustBanjia(t, "providers")
	for _, s := range []string{"exchange-ews", "(your host):443 Exchange2010_SP2", "exchange-online-ews", "outlook.office365.com:443 Exchange2010_SP2 app-only OAuth"} {
		if !strings.Contains(providers, s) {
			t.Fatalf("banjia providers does not show %q:\n%s", s, providers)
		}
	}
	created := w.mustBanjia(t, "job", "create", "exo", "--mode", "delegated", "--provider", "exchange-online-ews",
		"--from", fmt.Sprintf("ews://%s:%d", srv.Host, srv.Port), "--ca-file", ca,
		"--admin-login", "xoauth2", "--tenant", entra.Tenant, "--client-id", entra.ClientID, "--authority", entra.URL()+"/",
		"--accounts", accounts, "--to", "imap+plain://"+dst.IMAPAddr, "--to-admin", "master")
	if !strings.Contains(created, "created with 3 accounts") {
		t.Fatalf("create:\n%s", created)
	}
	// Every token is revoked at the server's 12th request (of about 33):
	// mid-copy, whatever the machine's speed.
	const revokeAt = 12
	var revoked atomic.Bool
	srv.OnRequest = func(n int) {
		if n == revokeAt {
			entra.ExpireTokens()
			revoked.Store(true)
		}
	}
	cmd, run := w.start0(t, "job", "start", "exo")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("job start: %v\n%s", err, run)
	}
	st := srv.Stats()
	t.Logf("revoked at request %d; bearer requests %d, refused tokens %d, tokens issued %d", revokeAt, st.Bearer, st.Expired, entra.Stats().Tokens)
	if !revoked.Load() || st.Expired == 0 || st.Bearer <= revokeAt {
		t.Fatalf("the revocation did not land mid-run (revoked %v, %d requests, %d tokens refused)", revoked.Load(), st.Bearer, st.Expired)
	}
	if st.NoAnchor != 0 || st.Impersonated == 0 {
		t.Fatalf("requests refused for the anchor %d, impersonated %d", st.NoAnchor, st.Impersonated)
	}
	accts := w.mustBanjia(t, "job", "accounts", "exo")
	if strings.Count(accts, fmt.Sprintf("%d to import, %d imported, 0 failed", perBox, perBox)) != len(names) {
		t.Fatalf("accounts:\n%s", accts)
	}
	for _, n := range names {
		left := want[n]
		count := 0
		for folder, msgs := range migratetest.Snapshot(t, dst, n+"@new.test*master", "master-pw") {
			for _, m := range msgs {
				if k := mailSum(m.Body, m.Flags, m.Date); left[k] == 0 {
					t.Errorf("%s %q: unexpected or duplicate message", n, folder)
				} else {
					left[k]--
				}
				count++
			}
		}
		if count != perBox {
			t.Errorf("%s: %d messages, want %d", n, count, perBox)
		}
	}
	show := w.mustBanjia(t, "job", "show", "exo")
	raw, _ := os.ReadFile(w.Path)
	for _, text := range []string{providers, created, run.String(), accts, show, string(raw)} {
		if strings.Contains(text, entra.Secret) || strings.Contains(text, "master-pw") {
			t.Fatal("a secret leaked into an output or the state file")
		}
	}
}

// mailSum is a message as both sides must show it: bytes, flags, date.
func mailSum(body []byte, flags []string, date time.Time) string {
	fl := append([]string(nil), flags...)
	sort.Strings(fl)
	return fmt.Sprintf("%x %s %d", sha256.Sum256(body), strings.Join(fl, " "), date.Unix())
}
