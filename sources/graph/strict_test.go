package graph_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/graph"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
	"github.com/banjia-mail/banjia/state"
)

// inboxOf lists the INBOX of a new session on e.
func inboxOf(t *testing.T, e mail.Endpoint) (sources.Source, mail.Folder, []mail.Message) {
	t.Helper()
	ctx := context.Background()
	s := open(t, e)
	fs, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Name == "INBOX" {
			msgs, err := s.Messages(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return s, f, msgs
		}
	}
	t.Fatal("no INBOX")
	return nil, mail.Folder{}, nil
}

// TestExpiredDeltaReplaced: Graph answers an expired delta link with a 400
// syncStateNotFound (or a 410 resyncRequired). The listing starts over, and
// the new delta link replaces the dead one: the next listing follows it
// instead of listing everything again.
func TestExpiredDeltaReplaced(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusGone} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			saved := graph.Deltas
			defer func() { graph.Deltas = saved }()
			graph.Deltas = graph.NewMemoryDeltas(1 << 20)
			srv := graphtest.New(t)
			srv.PageSize = 9
			srv.SyncStateStatus = status
			mb := seed(srv, fmt.Sprintf("expiry%d@contoso.com", status), 40, 11, 0)
			e := srv.Endpoint(mb.box.Mail)
			_, _, first := inboxOf(t, e)

			srv.ForgetSyncState()
			srv.ResetStats()
			_, _, second := inboxOf(t, e)
			st := srv.Stats()
			if len(second) != len(first) || st.Requests["delta-link"] != 1 || st.Requests["delta-initial"] != 1 || st.Requests["messages"] != 0 {
				t.Fatalf("after expiry: %d listed (want %d), requests %v", len(second), len(first), st.Requests)
			}

			srv.ResetStats()
			srv.Deliver(mb.box.Mail, "Inbox", &graphtest.Message{MIME: []byte("Subject: after\r\n\r\nx\r\n"), Received: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)})
			_, _, third := inboxOf(t, e)
			st = srv.Stats()
			if len(third) != len(first)+1 || st.Requests["delta-link"] != 1 || st.Requests["delta-initial"] != 0 || st.Requests["messages"] != 0 {
				t.Fatalf("the dead link was kept: %d listed (want %d), requests %v", len(third), len(first)+1, st.Requests)
			}
		})
	}
}

// TestSizesFromListing: listing reads no $value (Graph has no HEAD and no
// promised Content-Length, and each request counts against the mailbox);
// sizes are the store's, which may differ from the MIME length; the fetch
// reads each message once and announces its exact length.
func TestSizesFromListing(t *testing.T) {
	for _, deltas := range []bool{true, false} {
		t.Run(fmt.Sprint("delta=", deltas), func(t *testing.T) {
			saved := graph.Deltas
			defer func() { graph.Deltas = saved }()
			graph.Deltas = nil
			if deltas {
				graph.Deltas = graph.NewMemoryDeltas(1 << 20)
			}
			srv := graphtest.New(t)
			srv.PageSize = 4
			var msgs []*graphtest.Message
			for i := 0; i < 10; i++ {
				body := []byte(fmt.Sprintf("Subject: m%d\r\n\r\n%s\r\n", i, strings.Repeat("x", 100*i)))
				// Exchange's item size counts its own properties too.
				msgs = append(msgs, &graphtest.Message{MIME: body, Size: int64(len(body) + 700 + i), Received: time.Date(2025, 1, 1, i, 0, 0, 0, time.UTC)})
			}
			srv.AddMailbox(&graphtest.Mailbox{Mail: "sizes@contoso.com", Folders: []*graphtest.Folder{{Name: "Inbox", WellKnown: "inbox", Messages: msgs}}})
			s, f, listed := inboxOf(t, srv.Endpoint("sizes@contoso.com"))
			st := srv.Stats()
			if st.Requests["value"] != 0 {
				t.Fatalf("listing made %d $value requests", st.Requests["value"])
			}
			if len(listed) != 10 {
				t.Fatalf("%d listed", len(listed))
			}
			for i, m := range listed {
				if m.Size != msgs[i].Size {
					t.Fatalf("message %d listed with %d bytes, the store says %d", i, m.Size, msgs[i].Size)
				}
			}
			n := 0
			err := s.Fetch(context.Background(), f, listed, func(b *mail.Body) error {
				data, err := io.ReadAll(b)
				if err != nil {
					return err
				}
				if string(data) != string(msgs[n].MIME) || b.Size != int64(len(msgs[n].MIME)) {
					t.Errorf("message %d: %d bytes announced as %d, want %d", n, len(data), b.Size, len(msgs[n].MIME))
				}
				n++
				return nil
			})
			if err != nil || n != 10 {
				t.Fatalf("fetch: %d bodies, %v", n, err)
			}
			if st := srv.Stats(); st.Requests["value"] != 10 {
				t.Fatalf("%d $value requests for 10 messages", st.Requests["value"])
			}
		})
	}
}

// TestMailboxByID: Graph addresses mailboxes by id or userPrincipalName,
// and this member's UPN is not their mail address. The source finds the id
// (from the directory listing when there was one, else by one lookup) and
// every mailbox request names it; the address stays the label in errors.
func TestMailboxByID(t *testing.T) {
	srv := graphtest.New(t)
	mb := seed(srv, "ann@contoso.com", 30, 21, 0)
	mb.box.UPN = "ann.lee@contosoltd.onmicrosoft.com"
	other := seed(srv, "bob@contoso.com", 10, 22, 0)
	other.box.UPN = "bob.wu@contosoltd.onmicrosoft.com"
	srv.AddMailbox(&graphtest.Mailbox{Mail: "gone@contoso.com", Status: 404})

	if n := readAll(t, srv.Endpoint("ann@contoso.com"), mb.want, 2); n != 30 {
		t.Fatalf("%d of 30 messages", n)
	}
	st := srv.Stats()
	if st.ByMailbox["ann@contoso.com"] != 0 || st.ByMailbox[mb.box.ID] == 0 {
		t.Fatalf("requests per mailbox %v: want all by id %s", st.ByMailbox, mb.box.ID)
	}
	// Looked up once for its three sessions.
	if st.Requests["users"] != 1 {
		t.Fatalf("%d directory lookups", st.Requests["users"])
	}

	// A directory listing already knows the id: no lookup.
	users, err := graph.Users(context.Background(), srv.Endpoint(""), "contoso.com")
	if err != nil || len(users) != 3 {
		t.Fatalf("users: %v %v", users, err)
	}
	srv.ResetStats()
	if n := readAll(t, srv.Endpoint("bob@contoso.com"), other.want, 1); n != 10 {
		t.Fatalf("%d of 10 messages", n)
	}
	if st := srv.Stats(); st.Requests["users"] != 0 || st.ByMailbox[other.box.ID] == 0 {
		t.Fatalf("after the directory listing: requests %v, per mailbox %v", st.Requests, st.ByMailbox)
	}

	// An id or a UPN works as it is.
	for _, name := range []string{mb.box.ID, mb.box.UPN} {
		if _, _, msgs := inboxOf(t, srv.Endpoint(name)); len(msgs) != len(mb.want["INBOX"]) {
			t.Fatalf("by %s: %d listed", name, len(msgs))
		}
	}
	_, err = sources.Open(context.Background(), srv.Endpoint("gone@contoso.com"))
	if err == nil || !strings.Contains(err.Error(), "no such mailbox gone@contoso.com") {
		t.Fatalf("missing mailbox: %v", err)
	}
}

// TestConcurrencyRefused: the emulator answers a mailbox's fifth request
// at once with 429 (as Graph does), and the source, with many sessions on
// one mailbox, never draws one.
func TestConcurrencyRefused(t *testing.T) {
	srv := graphtest.New(t)
	srv.ConcurrencyRetry = time.Second
	mb := seed(srv, "busy@contoso.com", 60, 23, 50<<10)
	if n := readAll(t, srv.Endpoint("busy@contoso.com"), mb.want, 6); n != 60 {
		t.Fatalf("%d of 60 messages", n)
	}
	if st := srv.Stats(); st.Refused != 0 || st.MaxInFlight[mb.box.ID] > 4 {
		t.Fatalf("%d requests refused for concurrency, %d at once", st.Refused, st.MaxInFlight[mb.box.ID])
	}

	// The emulator does refuse: eight slow requests at once without the
	// source's limiter.
	srv.Latency = 300 * time.Millisecond
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: mustTLS(t, srv), ForceAttemptHTTP2: true}}
	tok := token(t, srv, client)
	var refused atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v1.0/users/"+mb.box.ID+"/mailFolders/inbox/messages?$top=50", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
				refused.Add(1)
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatal("eight requests at once to one mailbox, none refused")
	}
}

// TestRequestBudget: over its budget of requests a mailbox is answered 429
// with a Retry-After until the window ends; the source waits and goes on.
func TestRequestBudget(t *testing.T) {
	srv := graphtest.New(t)
	srv.PageSize = 10
	srv.Budget, srv.BudgetWindow = 30, 2*time.Second
	mb := seed(srv, "budget@contoso.com", 40, 24, 0)
	start := time.Now()
	if n := readAll(t, srv.Endpoint("budget@contoso.com"), mb.want, 2); n != 40 {
		t.Fatalf("%d of 40 messages", n)
	}
	st := srv.Stats()
	t.Logf("%v: %d requests, %d over budget", time.Since(start), st.ByMailbox[mb.box.ID], st.OverBudget)
	if st.OverBudget == 0 || time.Since(start) < 2*time.Second {
		t.Fatalf("budget of 30 per 2s: %d refusals in %v", st.OverBudget, time.Since(start))
	}
}

// TestThrottledMailboxAlone: one mailbox throttled for seconds (longer than
// the source waits in place, so the engine pauses it) does not hold back
// another mailbox of the same tenant on the same Graph host.
func TestThrottledMailboxAlone(t *testing.T) {
	savedWait := graph.MaxRetryWait
	defer func() { graph.MaxRetryWait = savedWait }()
	graph.MaxRetryWait = 200 * time.Millisecond
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox"})
	srv := graphtest.New(t)
	slow := seed(srv, "slow@contoso.com", 40, 25, 0)
	slow.box.ThrottleOnValue = 8 * time.Second
	seed(srv, "free@contoso.com", 300, 26, 20<<10)

	got := runJob(t, srv, dst, []string{"slow", "free"}, migrate.Config{Accounts: 2, Lanes: 2, RetryBase: 50 * time.Millisecond})
	until := srv.ThrottledUntil("slow@contoso.com")
	for _, a := range got {
		if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
			t.Fatalf("%s: %s %q %+v", a.ID, a.State, a.Reason, a.Counts)
		}
	}
	free, slowA := got["free@contoso.com"], got["slow@contoso.com"]
	t.Logf("throttle until %v; free finished %v, slow finished %v", until.Format("15:04:05.000"), free.Finished.Format("15:04:05.000"), slowA.Finished.Format("15:04:05.000"))
	if until.IsZero() || slowA.Finished.Before(until) {
		t.Fatalf("the throttle did not hold the slow mailbox (until %v, finished %v)", until, slowA.Finished)
	}
	if !free.Finished.Before(until) {
		t.Fatalf("the free mailbox waited for the other's throttle: finished %v, throttle until %v", free.Finished, until)
	}
}

func mustTLS(t *testing.T, srv *graphtest.Server) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CA) {
		t.Fatal("bad CA")
	}
	return &tls.Config{RootCAs: pool}
}

// token asks the emulator for an app token as a client would.
func token(t *testing.T, srv *graphtest.Server, client *http.Client) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "client_secret": {srv.Secret}, "scope": {"https://graph.microsoft.com/.default"}}
	resp, err := client.PostForm(srv.URL()+"/"+srv.Tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// runJob runs a delegated job from the emulator's mailboxes NAME@contoso.com
// into Dovecot's NAME@new.test and returns the accounts as it left them.
func runJob(t *testing.T, srv *graphtest.Server, dst *dovecot.Server, names []string, cfg migrate.Config) map[string]*state.Account {
	t.Helper()
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
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
	var accts []*state.Account
	for _, name := range names {
		if err := dst.AddUser(name+"@new.test", "pw"); err != nil {
			t.Fatal(err)
		}
		a := &state.Account{ID: name + "@contoso.com", Source: name + "@contoso.com", Target: name + "@new.test", State: state.AccountNotStarted}
		a.TargetSecret, _ = store.Seal("pw")
		accts = append(accts, a)
	}
	if err := store.PutAccounts(job.ID, accts...); err != nil {
		t.Fatal(err)
	}
	if cfg.OpenSink == nil {
		cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }
	}
	if err := migrate.New(store, cfg).Run(context.Background(), job.ID); err != nil {
		t.Fatal(err)
	}
	all, err := store.Accounts(job.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*state.Account{}
	for _, a := range all {
		got[a.ID] = a
	}
	return got
}

// TestMailboxGoneMidRun: a $value 404 that names the mailbox (its licence
// removed, the user deleted) is not "this message was deleted": the fetch
// fails the account with the reason instead of skipping every message as
// gone, which would end it 搬家成功 with nothing copied.
func TestMailboxGoneMidRun(t *testing.T) {
	srv := graphtest.New(t)
	mb := seed(srv, "leaver@contoso.com", 20, 27, 0)
	s, f, msgs := inboxOf(t, srv.Endpoint(mb.box.Mail))
	if len(msgs) == 0 {
		t.Fatal("empty INBOX")
	}
	// A message deleted meanwhile is skipped.
	srv.Delete(mb.box.Mail, msgs[0].Key)
	n := 0
	if err := s.Fetch(context.Background(), f, msgs[:2], func(*mail.Body) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("one deleted message: %d bodies, %v", n, err)
	}
	srv.SetStatus(mb.box.Mail, http.StatusNotFound)
	n = 0
	err := s.Fetch(context.Background(), f, msgs[1:], func(*mail.Body) error { n++; return nil })
	if n != 0 || fault.Classify(err) != fault.Account || !strings.Contains(err.Error(), "no such mailbox leaver@contoso.com") {
		t.Fatalf("mailbox gone: %d bodies, %v (%s)", n, err, fault.Classify(err))
	}
}

// TestTokenExpiresMidRun: tokens stop being accepted while the client's
// cache still holds them (expired early, revoked); listing and fetching go
// on with a new token instead of failing the account.
func TestTokenExpiresMidRun(t *testing.T) {
	srv := graphtest.New(t)
	mb := seed(srv, "tok@contoso.com", 30, 28, 0)
	s, f, msgs := inboxOf(t, srv.Endpoint(mb.box.Mail))
	before := srv.Stats().Tokens
	srv.ExpireTokens()
	n := 0
	if err := s.Fetch(context.Background(), f, msgs, func(*mail.Body) error { n++; return nil }); err != nil || n != len(msgs) {
		t.Fatalf("fetch after the tokens expired: %d of %d, %v", n, len(msgs), err)
	}
	srv.ExpireTokens()
	if _, _, again := inboxOf(t, srv.Endpoint(mb.box.Mail)); len(again) != len(msgs) {
		t.Fatalf("listing after the tokens expired: %d of %d", len(again), len(msgs))
	}
	if st := srv.Stats(); st.Tokens <= before {
		t.Fatalf("no new token issued (%d, had %d)", st.Tokens, before)
	}
}
