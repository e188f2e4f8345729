package graph_test

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
	"github.com/banjia-mail/banjia/sources/graph"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
	"github.com/banjia-mail/banjia/sources/sourcetest"
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

// TestMigrateIntoDovecot runs the engine as a delegated job (the app's
// secret only, no member password) from the emulator into Dovecot: 5
// mailboxes of 200 messages under a storm of 429s and 503s arrive byte for
// byte with flags and dates; a mailbox the app may not read fails alone with
// its reason; after new mail arrives a re-run lists by delta and copies only
// the new messages.
func TestMigrateIntoDovecot(t *testing.T) {
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox"})
	srv := graphtest.New(t)
	savedDeltas := graph.Deltas
	defer func() { graph.Deltas = savedDeltas }()
	// Kept beside the state file, as a CLI would, so a re-run in a new process lists by delta.
	dir := t.TempDir()
	graph.Deltas = graph.DirDeltas(filepath.Join(dir, "graph-delta"))

	var boxes []*mailbox
	for i := 0; i < 5; i++ {
		boxes = append(boxes, seed(srv, fmt.Sprintf("m%d@contoso.com", i), 200, int64(50+i), 200<<10))
	}
	srv.AddMailbox(&graphtest.Mailbox{Mail: "locked@contoso.com", Status: 403})

	store, err := state.Open(filepath.Join(dir, "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	src := srv.Endpoint("")
	src.Password = ""
	job := &state.Job{ID: "graph", State: state.JobCreated, Created: time.Now(), Source: src, Target: migratetest.Endpoint(dst.IMAPAddr)}
	if job.SourceAdminSecret, err = store.Seal(srv.Secret); err != nil {
		t.Fatal(err)
	}
	if err := store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	newAddr := func(old string) string { return strings.Replace(old, "@contoso.com", "@new.test", 1) }
	supply := func() {
		var accts []*state.Account
		for _, old := range []string{"m0@contoso.com", "m1@contoso.com", "m2@contoso.com", "m3@contoso.com", "m4@contoso.com", "locked@contoso.com"} {
			a, err := store.Account(job.ID, old)
			if err != nil {
				a = &state.Account{ID: old, Source: old, Target: newAddr(old), State: state.AccountNotStarted}
			}
			a.TargetSecret, _ = store.Seal("pw-" + newAddr(old))
			accts = append(accts, a)
		}
		if err := store.PutAccounts(job.ID, accts...); err != nil {
			t.Fatal(err)
		}
	}
	for _, old := range []string{"m0", "m1", "m2", "m3", "m4", "locked"} {
		if err := dst.AddUser(old+"@new.test", "pw-"+old+"@new.test"); err != nil {
			t.Fatal(err)
		}
	}
	supply()
	var appended atomic.Int64
	cfg := migrate.Config{Accounts: 3, Lanes: 2, RetryBase: 50 * time.Millisecond,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
			s, err := imapsink.Open(ctx, e)
			if err != nil {
				return nil, err
			}
			return &countingSink{Sink: s, n: &appended}, nil
		}}

	srv.Storm(60)
	start := time.Now()
	if err := migrate.New(store, cfg).Run(context.Background(), job.ID); err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	t.Logf("first run %v: %d appended, throttled %d, early %d, requests %v, max in flight %v", time.Since(start), appended.Load(), st.Throttled, st.Early, st.Requests, st.MaxInFlight)
	if st.Throttled == 0 || st.Early != 0 {
		t.Fatalf("storm: %d throttled answers, %d requests ignored Retry-After", st.Throttled, st.Early)
	}
	for box, n := range st.MaxInFlight {
		if n > graph.MaxConcurrent {
			t.Errorf("%s: %d requests at once", box, n)
		}
	}
	// One $value per message: the listing gives the sizes.
	if v := st.Requests["value"]; v < 1000 || v > 1100 || st.Refused != 0 {
		t.Errorf("%d $value requests for 1000 messages, %d refused for concurrency", v, st.Refused)
	}
	accts, err := store.Accounts(job.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if a.ID == "locked@contoso.com" {
			if a.State != state.AccountFailed || !strings.Contains(a.Reason, "the app has no permission to read mailbox locked@contoso.com: grant the Mail.Read application permission") {
				t.Fatalf("locked mailbox: %s %q", a.State, a.Reason)
			}
			continue
		}
		if a.State != state.AccountSucceeded || a.Counts.ToImport != 200 || a.Counts.Imported != 200 || a.Counts.Failed != 0 {
			t.Fatalf("%s: %s %q %+v", a.ID, a.State, a.Reason, a.Counts)
		}
	}
	compare := func(mb *mailbox) {
		t.Helper()
		user := newAddr(mb.box.Mail)
		got := migratetest.Snapshot(t, dst, user, "pw-"+user)
		want := map[string]int{}
		for _, msgs := range mb.want {
			for _, m := range msgs {
				want[mailKey(m.Body, m.Flags, m.Date)]++
			}
		}
		n := 0
		for folder, msgs := range got {
			for _, m := range msgs {
				k := mailKey(m.Body, m.Flags, m.Date)
				if want[k] == 0 {
					t.Errorf("%s %q: unexpected or duplicate message (flags %v, date %v)", user, folder, m.Flags, m.Date)
				}
				want[k]--
				n++
			}
		}
		for k, c := range want {
			if c > 0 {
				t.Errorf("%s: message %s missing", user, k)
			}
		}
		if len(got["INBOX"]) != len(mb.want["INBOX"]) || len(got["项目/2024/报告"]) != len(mb.want["项目/2024/报告"]) {
			t.Errorf("%s: INBOX %d (want %d), 项目/2024/报告 %d (want %d)", user, len(got["INBOX"]), len(mb.want["INBOX"]),
				len(got["项目/2024/报告"]), len(mb.want["项目/2024/报告"]))
		}
		t.Logf("%s: %d messages in %d folders", user, n, len(got))
	}
	for _, mb := range boxes {
		compare(mb)
	}

	// New mail; the re-run asks Graph only for changes and copies only it.
	srv.Storm(0)
	srv.ResetStats()
	appended.Store(0)
	added := 0
	for i, mb := range boxes[:2] {
		path, name := "Inbox", "INBOX"
		if i == 1 {
			path, name = "项目/2024/报告", "项目/2024/报告"
		}
		for k := 0; k < 3; k++ {
			body := []byte(fmt.Sprintf("From: a@b.test\r\nSubject: new %d\r\nMessage-ID: <new-%d-%d@b.test>\r\n\r\nnew mail\r\n", k, i, k))
			date := time.Date(2026, 3, 1, 10, k, 0, 0, time.UTC)
			srv.Deliver(mb.box.Mail, path, &graphtest.Message{MIME: body, Received: date, Read: k == 1})
			var flags []string
			if k == 1 {
				flags = []string{`\Seen`}
			}
			mb.want[name] = append(mb.want[name], sourcetest.Message{Body: body, Flags: flags, Date: date})
			added++
		}
	}
	supply()
	cfg.Rerun = true
	if err := migrate.New(store, cfg).Run(context.Background(), job.ID); err != nil {
		t.Fatal(err)
	}
	st = srv.Stats()
	t.Logf("re-run: %d appended, requests %v", appended.Load(), st.Requests)
	if n := appended.Load(); n != int64(added) {
		t.Fatalf("re-run appended %d messages, want the %d new ones", n, added)
	}
	if st.Requests["delta-initial"] != 0 || st.Requests["delta-link"] == 0 || st.Requests["value"] != added {
		t.Fatalf("re-run requests %v: want delta links only, and one fetch per new message", st.Requests)
	}
	// The well-known folders' ids and the archive's answer are kept with
	// the delta links: the re-run reads only the tree's levels.
	if st.Requests["folder"] != 0 || st.Requests["settings"] != 0 {
		t.Fatalf("re-run requests %v: the well-known folders or the archive were asked for again", st.Requests)
	}
	for _, mb := range boxes {
		compare(mb)
	}
}
