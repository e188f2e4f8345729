package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
)

// TestEWSDelegatedCLI: a delegated job (无感搬家) from Exchange Web Services,
// created and run by the binary: the migration admin's NTLM login as
// CONTOSO\migadmin (--ews-domain), ExchangeImpersonation for each member,
// the target reached through a master user. The run is SIGKILLed three
// times; at the end every mailbox holds exactly its source's messages
// (bytes, flags, dates), nothing twice: 20 mailboxes. A mailbox Exchange does not have
// fails alone with its reason; job sync then copies only the mail that
// arrived since; no secret reaches an output or the state file.
func TestEWSDelegatedCLI(t *testing.T) {
	srv := ewstest.New(t)
	srv.BusyEvery, srv.BackOff = 50, 20*time.Millisecond
	srv.AddAccount(&ewstest.Account{Name: "migadmin", Password: "Mig-Adm1n!", Impersonate: true})
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", MasterUser: "master", MasterPassword: "master-pw"})
	var names []string
	for i := 0; i < 20; i++ {
		names = append(names, fmt.Sprintf("member%02d", i))
	}
	const perBox = 30
	want := map[string]map[string]int{}
	sum := func(body []byte, flags []string, date time.Time) string {
		fl := append([]string(nil), flags...)
		sort.Strings(fl)
		return fmt.Sprintf("%x %s %d", sha256.Sum256(body), strings.Join(fl, " "), date.Unix())
	}
	var csv strings.Builder
	for i, n := range names {
		inbox := &ewstest.Folder{Name: "Inbox", WellKnown: "inbox"}
		sent := &ewstest.Folder{Name: "Sent Items", WellKnown: "sentitems"}
		client := &ewstest.Folder{Name: "北京"}
		byName := map[string]*ewstest.Folder{"INBOX": inbox, "Sent": sent, "客户/北京": client}
		want[n] = map[string]int{}
		for _, m := range mailgen.Mailbox(n+"@contoso.com", mailgen.Options{Seed: int64(40 + i), Messages: perBox, MaxAttachment: 300 << 10,
			Folders: []string{"INBOX", "Sent", "客户/北京"}}) {
			em := &ewstest.Message{MIME: m.Body, Received: m.Date}
			var flags []string
			for _, f := range m.Flags {
				switch f {
				case `\Seen`:
					em.Read = true
					flags = append(flags, f)
				case `\Flagged`:
					em.Flagged = true
					flags = append(flags, f)
				}
			}
			byName[m.Folder].Messages = append(byName[m.Folder].Messages, em)
			want[n][sum(m.Body, flags, m.Date)]++
		}
		srv.AddMailbox(&ewstest.Mailbox{SMTP: n + "@contoso.com", Folders: []*ewstest.Folder{inbox, sent, {Name: "客户", Children: []*ewstest.Folder{client}},
			{Name: "Calendar", WellKnown: "calendar", Class: "IPF.Appointment"}}})
		if err := dst.AddUser(n+"@new.test", "unused-"+n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&csv, "%s@contoso.com,%s@new.test\n", n, n)
	}
	csv.WriteString("ghost@contoso.com,ghost@new.test\n")
	if err := dst.AddUser("ghost@new.test", "unused-ghost"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca, accounts := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "accounts.csv")
	if err := os.WriteFile(ca, srv.CA, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(accounts, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &cliWorld{World: &migratetest.World{T: t, Path: filepath.Join(dir, "banjia.db"), Job: "ews"}}
	w.env = []string{"BANJIA_FROM_ADMIN_PASSWORD=Mig-Adm1n!", "BANJIA_TO_ADMIN_PASSWORD=master-pw"}

	if out, err := w.banjia(t, "job", "create", "bad", "--mode", "delegated", "--from", "imaps://"+srv.Host, "--ews-version", "Exchange2010_SP2",
		"--from-admin", "migadmin", "--accounts", accounts, "--to", "imap+plain://"+dst.IMAPAddr, "--to-admin", "master"); err == nil || !strings.Contains(out, "--ews-version, --ews-domain and --ews-auth are for an EWS source") {
		t.Fatalf("--ews-version on an IMAP source: %v\n%s", err, out)
	}
	from := fmt.Sprintf("https://%s:%d/EWS/Exchange.asmx", srv.Host, srv.Port)
	created := w.mustBanjia(t, "job", "create", "ews", "--mode", "delegated", "--from", from, "--ca-file", ca,
		"--ews-domain", "CONTOSO", "--ews-version", "Exchange2010_SP2", "--from-admin", "migadmin", "--accounts", accounts,
		"--to", "imap+plain://"+dst.IMAPAddr, "--to-admin", "master")
	if !strings.Contains(created, "created with 21 accounts") {
		t.Fatalf("create:\n%s", created)
	}
	onTarget := func() (n int) {
		for _, name := range names {
			n += migratetest.Count(t, dst, name+"@new.test*master", "master-pw")
		}
		return n
	}
	var outs []string
	midway := 0
	for k := 0; k < 3; k++ {
		cmd, out := w.start0(t, "job", "start", "ews", "--parallel", "2")
		time.Sleep(time.Duration(300+200*k) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		outs = append(outs, out.String())
		n := onTarget()
		t.Logf("killed after %v: %d of %d messages on the target", time.Duration(300+200*k)*time.Millisecond, n, perBox*len(names))
		if n > 0 && n < perBox*len(names) {
			midway++
		}
	}
	if midway == 0 {
		t.Fatal("no kill landed while messages were being copied")
	}
	cmd, run := w.start0(t, "job", "start", "ews")
	err := cmd.Wait()
	outs = append(outs, run.String())
	if code := exitCode(err); code != 2 {
		t.Fatalf("a job with a failed account exited %d, want 2:\n%s", code, run)
	}
	accts := w.mustBanjia(t, "job", "accounts", "ews")
	if strings.Count(accts, fmt.Sprintf("%d to import, %d imported, 0 failed", perBox, perBox)) != len(names) || !strings.Contains(accts, "no Exchange mailbox ghost@contoso.com") {
		t.Fatalf("accounts:\n%s", accts)
	}
	for _, n := range names {
		got := migratetest.Snapshot(t, dst, n+"@new.test*master", "master-pw")
		left := want[n]
		count := 0
		for folder, msgs := range got {
			for _, m := range msgs {
				k := sum(m.Body, m.Flags, m.Date)
				if left[k] == 0 {
					t.Errorf("%s %q: unexpected or duplicate message (flags %v, date %v)", n, folder, m.Flags, m.Date)
				}
				left[k]--
				count++
			}
		}
		for k, c := range left {
			if c > 0 {
				t.Errorf("%s: message %s missing", n, k)
			}
		}
		if count != perBox || got["Calendar"] != nil {
			t.Errorf("%s: %d messages; folders %v", n, count, keysOf(got))
		}
	}
	st := srv.Stats()
	t.Logf("requests %v, busy %d, NTLM logins %d, impersonated %d", st.Requests, st.Busy, st.Handshakes, st.Impersonated)
	if st.Handshakes == 0 || st.Impersonated == 0 {
		t.Fatalf("NTLM logins %d, impersonated requests %d", st.Handshakes, st.Impersonated)
	}

	// After the MX switch, job sync copies what arrived since, listed by
	// the SyncFolderItems states kept beside the state file.
	srv.ResetStats()
	for i, n := range names[:2] {
		body := fmt.Sprintf("From: a@elsewhere.test\r\nTo: %s@contoso.com\r\nSubject: late %d\r\nMessage-ID: <late-%d@test>\r\n\r\nafter the MX switch\r\n", n, i, i)
		srv.Deliver(n+"@contoso.com", "Inbox", &ewstest.Message{MIME: []byte(body), Received: time.Date(2026, 12, 3, 11, 0, i, 0, time.UTC)})
	}
	synced, err := w.banjia(t, "job", "sync", "ews")
	outs = append(outs, synced)
	if code := exitCode(err); code != 2 {
		t.Fatalf("job sync with the missing mailbox still failing: exit %d, want 2\n%s", code, synced)
	}
	for i, n := range names[:3] {
		want := perBox
		if i < 2 {
			want++
		}
		if got := migratetest.Count(t, dst, n+"@new.test*master", "master-pw"); got != want {
			t.Fatalf("%s after the sync: %d messages, want %d", n, got, want)
		}
	}
	if st := srv.Stats(); st.MIMEItems != 4 || st.Requests["FindItem"] != 0 || st.Requests["SyncFolderItems changes"] != 2 {
		t.Fatalf("sync: %d MIME items read, requests %v: want the 2 new ones, each measured and copied", st.MIMEItems, st.Requests)
	}

	raw, _ := os.ReadFile(w.Path)
	logs := w.mustBanjia(t, "logs", "--json")
	for _, text := range append(outs, created, accts, logs, string(raw)) {
		if strings.Contains(text, "Mig-Adm1n!") || strings.Contains(text, "master-pw") {
			t.Fatal("a secret leaked into an output or the state file")
		}
	}
}

func keysOf(m migratetest.Mailbox) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
