package graph_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
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
	"github.com/banjia-mail/banjia/sources/graph"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
	"github.com/banjia-mail/banjia/state"
)

// TestTenant500 moves an emulated tenant of 500 small mailboxes (Inbox and
// Sent Items, 25 messages each) into Dovecot with the engine, 40 accounts at
// a time with two lanes each, as a delegated job whose accounts come from
// the directory, under Graph's strict limits (4 requests at once per
// mailbox, the request budget, $value without Content-Length): every
// mailbox arrives exact (bytes, flags, dates), no request is refused for
// concurrency, one $value per message, and at most 1.1 HTTP requests per
// message. It logs the wall time and the emulator's counts, both as HTTP
// requests and as Graph counts them against a mailbox (each request of a
// $batch on its own).
func TestTenant500(t *testing.T) {
	if testing.Short() {
		t.Skip("500 mailboxes")
	}
	const boxes, perFolder = 500, 25
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", MaxUserIPConnections: 200})
	srv := graphtest.New(t)
	savedDeltas := graph.Deltas
	defer func() { graph.Deltas = savedDeltas }()
	dir := t.TempDir()
	graph.Deltas = graph.DirDeltas(filepath.Join(dir, "graph-delta"))

	day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	want := map[string]map[string]int{} // new address -> mailKey -> count
	for i := 0; i < boxes; i++ {
		addr := fmt.Sprintf("u%03d@contoso.com", i)
		var inbox, sent []*graphtest.Message
		keys := map[string]int{}
		for k := 0; k < 2*perFolder; k++ {
			body := []byte(fmt.Sprintf("From: a@b.test\r\nSubject: %d/%d\r\nMessage-ID: <%d.%d@b.test>\r\n\r\n%s\r\n", i, k, i, k, bytes.Repeat([]byte("x"), 200+k*37)))
			m := &graphtest.Message{MIME: body, Received: day.Add(time.Duration(i*100+k) * time.Minute), Read: k%2 == 0, Flagged: k%5 == 0}
			var flags []string
			if m.Read {
				flags = append(flags, `\Seen`)
			}
			if m.Flagged {
				flags = append(flags, `\Flagged`)
			}
			switch k % 7 {
			case 3:
				m.Verb = 102
				flags = append(flags, `\Answered`)
			case 4:
				m.Verb = 104
				flags = append(flags, "$Forwarded")
			}
			keys[mailKey(body, flags, m.Received)]++
			if k < perFolder {
				inbox = append(inbox, m)
			} else {
				sent = append(sent, m)
			}
		}
		srv.AddMailbox(&graphtest.Mailbox{Mail: addr, UPN: fmt.Sprintf("u%03d@contoso.onmicrosoft.com", i),
			Folders: []*graphtest.Folder{{Name: "Inbox", WellKnown: "inbox", Messages: inbox}, {Name: "Sent Items", WellKnown: "sentitems", Messages: sent}}})
		newAddr := strings.Replace(addr, "@contoso.com", "@new.test", 1)
		want[newAddr] = keys
		if err := dst.AddUser(newAddr, "pw-"+newAddr); err != nil {
			t.Fatal(err)
		}
	}

	store, err := state.Open(filepath.Join(dir, "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	src := srv.Endpoint("")
	src.Password = ""
	job := &state.Job{ID: "tenant", State: state.JobCreated, Created: time.Now(), Source: src, Target: migratetest.Endpoint(dst.IMAPAddr)}
	if job.SourceAdminSecret, err = store.Seal(srv.Secret); err != nil {
		t.Fatal(err)
	}
	if err := store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	// The accounts come from the directory, as a job of the whole domain's.
	users, err := graph.Users(ctx, srv.Endpoint(""), "contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	var accts []*state.Account
	for _, u := range users {
		newAddr := strings.Replace(u.Mail, "@contoso.com", "@new.test", 1)
		a := &state.Account{ID: u.Mail, Source: u.Mail, Target: newAddr, State: state.AccountNotStarted}
		if a.TargetSecret, err = store.Seal("pw-" + newAddr); err != nil {
			t.Fatal(err)
		}
		accts = append(accts, a)
	}
	if len(accts) != boxes {
		t.Fatalf("the directory lists %d users, want %d", len(accts), boxes)
	}
	if err := store.PutAccounts(job.ID, accts...); err != nil {
		t.Fatal(err)
	}
	var appended atomic.Int64
	cfg := migrate.Config{Accounts: 40, Lanes: 2, RetryBase: 50 * time.Millisecond,
		OpenSink: func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
			s, err := imapsink.Open(ctx, e)
			if err != nil {
				return nil, err
			}
			return &countingSink{Sink: s, n: &appended}, nil
		}}
	if err := migrate.New(store, cfg).Run(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)

	st := srv.Stats()
	graphCount := 0
	for _, n := range st.ByMailbox {
		graphCount += n
	}
	httpCount := graphCount - st.Batched + st.Requests["batch"]
	n := int(appended.Load())
	kinds := make([]string, 0, len(st.Requests))
	for k := range st.Requests {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var byKind []string
	for _, k := range kinds {
		byKind = append(byKind, fmt.Sprintf("%s %d", k, st.Requests[k]))
	}
	t.Logf("%d mailboxes, %d messages in %v; by endpoint: %s (batch = HTTP requests carrying %d of the others)", boxes, n, elapsed.Round(time.Millisecond), strings.Join(byKind, ", "), st.Batched)
	t.Logf("mailbox requests: %d over HTTP = %.3f per message; %d as Graph counts them = %.3f per message (%.1f per mailbox beyond its $values); refused %d, over budget %d, throttled %d, tokens %d",
		httpCount, float64(httpCount)/float64(n), graphCount, float64(graphCount)/float64(n), float64(graphCount-st.Requests["value"])/boxes, st.Refused, st.OverBudget, st.Throttled, st.Tokens)

	all, err := store.Accounts(job.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.State != state.AccountSucceeded || a.Counts.Imported != 2*perFolder || a.Counts.Failed != 0 {
			t.Errorf("%s: %s %q %+v", a.ID, a.State, a.Reason, a.Counts)
		}
	}
	// Every mailbox exact on the target: bodies, flags and dates, no
	// message missing or twice.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for user, keys := range want {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			got := migratetest.Snapshot(t, dst, user, "pw-"+user)
			left := map[string]int{}
			for k, c := range keys {
				left[k] = c
			}
			for folder, msgs := range got {
				for _, m := range msgs {
					k := mailKey(m.Body, m.Flags, m.Date)
					if left[k] == 0 {
						t.Errorf("%s %q: unexpected or duplicate message (flags %v, date %v)", user, folder, m.Flags, m.Date)
					}
					left[k]--
				}
			}
			for k, c := range left {
				if c > 0 {
					t.Errorf("%s: message %s missing", user, k)
				}
			}
			if len(got["INBOX"]) != perFolder {
				t.Errorf("%s: INBOX holds %d, want %d", user, len(got["INBOX"]), perFolder)
			}
		})
	}
	wg.Wait()

	if n != boxes*2*perFolder {
		t.Fatalf("%d messages appended, want %d", n, boxes*2*perFolder)
	}
	if st.Refused != 0 {
		t.Fatalf("%d requests refused for concurrency", st.Refused)
	}
	if st.Requests["value"] != n {
		t.Fatalf("%d $value requests for %d messages", st.Requests["value"], n)
	}
	if float64(httpCount) > 1.1*float64(n) {
		t.Fatalf("%d HTTP requests to mailboxes for %d messages: more than 1.1 per message", httpCount, n)
	}
	// As Graph counts them: the $values, two listings, the archive check
	// and the folder tree's requests (nine well-known folders and the top
	// level), nothing per lane or per batch of messages.
	if perBox := float64(graphCount-n) / boxes; perBox > 14 {
		t.Fatalf("%.1f requests per mailbox beyond its $values, as Graph counts them", perBox)
	}
}
