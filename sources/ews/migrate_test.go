package ews_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
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
	"github.com/banjia-mail/banjia/state"
)

type countingSink struct {
	sinks.Sink
	n *atomic.Int64
}

func (c *countingSink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	res, err := c.Sink.Append(ctx, f, r, size, flags, date)
	if err == nil {
		c.n.Add(1)
	}
	return res, err
}

// mailKey is a message as both sides must show it.
func mailKey(body []byte, flags []string, date time.Time) string {
	fl := append([]string(nil), flags...)
	sort.Strings(fl)
	return fmt.Sprintf("%x %s %d", sha256.Sum256(body), strings.Join(fl, " "), date.Unix())
}

// delegatedJob stores a delegated job reading the emulator as admin.
func delegatedJob(t *testing.T, store *state.Store, id string, srv *ewstest.Server, admin, adminPW string, dst *dovecot.Server, members []string) {
	t.Helper()
	src := srv.Endpoint(admin, "", "")
	job := &state.Job{ID: id, State: state.JobCreated, Created: time.Now(), Mode: state.ModeDelegated, Source: src, Target: migratetest.Endpoint(dst.IMAPAddr)}
	var err error
	if job.SourceAdminSecret, err = store.Seal(adminPW); err != nil {
		t.Fatal(err)
	}
	if err := store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	var accts []*state.Account
	for _, old := range members {
		a := &state.Account{ID: old, Source: old, Target: newAddr(old), State: state.AccountNotStarted}
		a.TargetSecret, _ = store.Seal("pw-" + newAddr(old))
		accts = append(accts, a)
	}
	if err := store.PutAccounts(job.ID, accts...); err != nil {
		t.Fatal(err)
	}
}

func newAddr(old string) string { return strings.Replace(old, "@contoso.com", "@new.test", 1) }

// TestMigrateIntoDovecot runs the engine as a delegated job (无感搬家): the
// migration admin's NTLM login and ExchangeImpersonation, no member
// password. 20 mailboxes arrive in Dovecot byte for byte with their folders,
// flags and dates while Exchange answers ErrorServerBusy now and then; a
// mailbox that does not exist fails alone with its reason; a re-run appends
// nothing; an admin without the ApplicationImpersonation role gets a reason
// per account.
func TestMigrateIntoDovecot(t *testing.T) {
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox"})
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "migadmin", Password: "Mig-Adm1n!", Impersonate: true})
	srv.AddAccount(&ewstest.Account{Name: "helpdesk", Password: "Help-d3sk", Mailbox: "helpdesk@contoso.com"})
	var boxes []*Mailbox
	var members []string
	for i := 0; i < 20; i++ {
		addr := fmt.Sprintf("m%d@contoso.com", i)
		boxes = append(boxes, Seed(srv, addr, 30+i, int64(100+i), 150<<10))
		members = append(members, addr)
	}
	members = append(members, "ghost@contoso.com")
	for _, m := range members {
		if err := dst.AddUser(newAddr(m), "pw-"+newAddr(m)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	delegatedJob(t, store, "ews", srv, `CONTOSO\migadmin`, "Mig-Adm1n!", dst, members)

	var appended atomic.Int64
	cfg := migrate.Config{Accounts: 4, Lanes: 2, RetryBase: 50 * time.Millisecond,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
			s, err := imapsink.Open(ctx, e)
			if err != nil {
				return nil, err
			}
			return &countingSink{Sink: s, n: &appended}, nil
		}}
	srv.BusyEvery, srv.BackOff = 40, 20*time.Millisecond
	start := time.Now()
	if err := migrate.New(store, cfg).Run(context.Background(), "ews"); err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	t.Logf("first run %v: %d appended, busy %d, NTLM logins %d, requests %v", time.Since(start), appended.Load(), st.Busy, st.Handshakes, st.Requests)
	if st.Busy == 0 || st.Impersonated == 0 {
		t.Fatalf("busy answers %d, impersonated requests %d: want both", st.Busy, st.Impersonated)
	}
	accts, err := store.Accounts("ews")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, a := range accts {
		if a.ID == "ghost@contoso.com" {
			if a.State != state.AccountFailed || !strings.Contains(a.Reason, "no Exchange mailbox ghost@contoso.com") {
				t.Fatalf("missing mailbox: %s %q", a.State, a.Reason)
			}
			continue
		}
		var i int
		fmt.Sscanf(a.ID, "m%d@", &i)
		if a.State != state.AccountSucceeded || a.Counts.ToImport != int64(30+i) || a.Counts.Imported != int64(30+i) || a.Counts.Failed != 0 {
			t.Fatalf("%s: %s %q %+v", a.ID, a.State, a.Reason, a.Counts)
		}
		total += a.Counts.Imported
	}
	if total != appended.Load() {
		t.Fatalf("%d imported, %d appended", total, appended.Load())
	}
	for _, mb := range boxes {
		user := newAddr(mb.Box.SMTP)
		got := migratetest.Snapshot(t, dst, user, "pw-"+user)
		want := map[string]int{}
		for _, msgs := range mb.Want {
			for _, m := range msgs {
				want[mailKey(m.Body, m.Flags, m.Date)]++
			}
		}
		// Special folders land in the target's own (Dovecot's Sent, Trash, Junk).
		onTarget := map[string]string{"Sent Items": "Sent", "Deleted Items": "Trash", "Junk Email": "Junk"}
		fromSource := map[string]bool{}
		for folder := range mb.Want {
			if n, ok := onTarget[folder]; ok {
				folder = n
			}
			fromSource[folder] = true
		}
		for folder, msgs := range got {
			if !fromSource[folder] && len(msgs) > 0 {
				t.Errorf("%s: folder %q not in the source", user, folder)
			}
			for _, m := range msgs {
				k := mailKey(m.Body, m.Flags, m.Date)
				if want[k] == 0 {
					t.Errorf("%s %q: unexpected or duplicate message (flags %v, date %v)", user, folder, m.Flags, m.Date)
				}
				want[k]--
			}
		}
		for k, c := range want {
			if c > 0 {
				t.Errorf("%s: message %s missing", user, k)
			}
		}
		for folder, msgs := range mb.Want {
			if n, ok := onTarget[folder]; ok {
				folder = n
			}
			if len(got[folder]) != len(msgs) {
				t.Errorf("%s %q: %d on the target, want %d", user, folder, len(got[folder]), len(msgs))
			}
		}
	}

	// A re-run finds everything copied.
	appended.Store(0)
	cfg.Rerun = true
	if err := migrate.New(store, cfg).Run(context.Background(), "ews"); err != nil {
		t.Fatal(err)
	}
	if n := appended.Load(); n != 0 {
		t.Fatalf("re-run appended %d", n)
	}

	// New mail: the next run lists by SyncFolderItems and reads only it.
	srv.BusyEvery = 0
	srv.ResetStats()
	appended.Store(0)
	for k := 0; k < 3; k++ {
		body := []byte(fmt.Sprintf("From: a@b.test\r\nSubject: new %d\r\nMessage-ID: <new-%d@b.test>\r\n\r\nnew mail\r\n", k, k))
		srv.Deliver("m0@contoso.com", "Inbox", &ewstest.Message{MIME: body, Received: time.Date(2026, 3, 1, 10, k, 0, 0, time.UTC)})
	}
	if err := migrate.New(store, cfg).Run(context.Background(), "ews"); err != nil {
		t.Fatal(err)
	}
	st = srv.Stats()
	t.Logf("run after new mail: %d appended, requests %v", appended.Load(), st.Requests)
	if n := appended.Load(); n != 3 || st.MIMEItems != 6 || st.Requests["FindItem"] != 0 {
		t.Fatalf("after new mail: %d appended, %d MIME items read, requests %v: want 3, a size read and a fetch each, no FindItem", n, st.MIMEItems, st.Requests)
	}
	if got := migratetest.Snapshot(t, dst, "m0@new.test", "pw-m0@new.test"); len(got["INBOX"]) != len(boxes[0].Want["INBOX"])+3 {
		t.Fatalf("INBOX of m0: %d messages, want %d", len(got["INBOX"]), len(boxes[0].Want["INBOX"])+3)
	}

	// An admin without the impersonation role.
	delegatedJob(t, store, "helpdesk", srv, `CONTOSO\helpdesk`, "Help-d3sk", dst, members[:2])
	if err := migrate.New(store, cfg).Run(context.Background(), "helpdesk"); err != nil {
		t.Fatal(err)
	}
	accts, err = store.Accounts("helpdesk")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if a.State != state.AccountFailed || !strings.Contains(a.Reason, `the migration admin CONTOSO\helpdesk may not open mailbox `+a.ID+": give it the ApplicationImpersonation role") {
			t.Fatalf("admin without the role, %s: %s %q", a.ID, a.State, a.Reason)
		}
		if strings.Contains(a.Reason, "Help-d3sk") {
			t.Fatal("password in the reason")
		}
	}
}
