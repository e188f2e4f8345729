package graph_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/graph"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
	"github.com/banjia-mail/banjia/sources/sourcetest"
)

// Graph display names and well-known names of mailgen's special folders.
var graphFolders = map[string]struct{ display, wellKnown, special string }{
	"INBOX":   {"Inbox", "inbox", ""},
	"Sent":    {"Sent Items", "sentitems", mail.SpecialSent},
	"Drafts":  {"Drafts", "drafts", mail.SpecialDrafts},
	"Trash":   {"Deleted Items", "deleteditems", mail.SpecialTrash},
	"Junk":    {"Junk Email", "junkemail", mail.SpecialJunk},
	"Archive": {"Archive", "archive", mail.SpecialArchive},
}

// Categories given to some messages and the keywords the source must turn them into.
var categories = []struct{ category, keyword string }{
	{"Red category", "Red_category"},
	{"红色类别", "&fqKCcnx7Uis-"},
	{"Q&A", "Q&-A"},
}

// mailbox is a seeded emulator mailbox and what the source must show of it.
type mailbox struct {
	box     *graphtest.Mailbox
	want    map[string][]sourcetest.Message // by source folder name
	special map[string]string
}

// seed fills an emulator mailbox from mailgen: its folders (English,
// Chinese, nested) under Graph's well-known ones, a hidden folder, a search
// folder that must not be listed, flags and categories.
func seed(srv *graphtest.Server, mail string, n int, seedNo int64, maxAttach int) *mailbox {
	mb := &mailbox{box: &graphtest.Mailbox{Mail: mail, DisplayName: "User " + mail},
		want: map[string][]sourcetest.Message{}, special: map[string]string{}}
	byPath := map[string]*graphtest.Folder{}
	var folder func(path string) *graphtest.Folder
	folder = func(path string) *graphtest.Folder {
		if f := byPath[path]; f != nil {
			return f
		}
		parent, name := "", path
		i := strings.LastIndex(path, "/")
		nested := i >= 0
		if nested {
			parent, name = path[:i], path[i+1:]
		}
		f := &graphtest.Folder{Name: name}
		srcName := path
		if !nested {
			if g, ok := graphFolders[name]; ok {
				f.Name, f.WellKnown = g.display, g.wellKnown
				srcName = g.display
				if name == "INBOX" {
					srcName = "INBOX"
				}
				mb.special[srcName] = g.special
			}
			mb.box.Folders = append(mb.box.Folders, f)
		} else {
			p := folder(parent)
			p.Children = append(p.Children, f)
			srcName = sourceName(byPath, parent) + "/" + name
		}
		byPath[path] = f
		names[f] = srcName
		mb.want[srcName] = mb.want[srcName][:0:0]
		return f
	}
	for _, top := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} {
		folder(top)
	}
	hidden := folder("Conversation History")
	hidden.Hidden = true
	msgs := mailgen.Mailbox(mail, mailgen.Options{Seed: seedNo, Messages: n, MaxAttachment: maxAttach})
	var inSearch []*graphtest.Message
	for i, m := range msgs {
		path := m.Folder
		if i%25 == 7 {
			path = "Conversation History"
		}
		f := folder(path)
		gm := &graphtest.Message{MIME: m.Body, Received: m.Date}
		var want []string
		var answered, forwarded bool
		for _, fl := range m.Flags {
			switch fl {
			case `\Seen`:
				gm.Read = true
			case `\Flagged`:
				gm.Flagged = true
			case `\Draft`:
				gm.Draft = true
			case `\Answered`:
				answered = true
				continue
			case "$Forwarded":
				forwarded = true
				continue
			default:
				gm.Categories = append(gm.Categories, fl)
			}
			want = append(want, fl)
		}
		// Exchange keeps only the last verb executed: a reply or a forward.
		switch {
		case answered:
			gm.Verb = 102
			want = append(want, `\Answered`)
		case forwarded:
			gm.Verb = 104
			want = append(want, "$Forwarded")
		}
		if i%9 == 4 {
			c := categories[i%len(categories)]
			gm.Categories = append(gm.Categories, c.category)
			want = append(want, c.keyword)
		}
		f.Messages = append(f.Messages, gm)
		if i%10 == 0 {
			inSearch = append(inSearch, gm)
		}
		name := names[f]
		mb.want[name] = append(mb.want[name], sourcetest.Message{Body: m.Body, Flags: want, Date: m.Date})
	}
	// A search folder shows messages of other folders: listing it would copy them twice.
	search := &graphtest.Folder{Name: "Unread Mail", Search: true}
	for _, m := range inSearch {
		c := *m
		c.ID = ""
		search.Messages = append(search.Messages, &c)
	}
	mb.box.Folders = append(mb.box.Folders, search)
	// Exchange's system folders, which must not be copied as the user's.
	sys := func(subject string) []*graphtest.Message {
		return []*graphtest.Message{{MIME: []byte("Subject: " + subject + "\r\n\r\nsystem\r\n"), Received: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}}
	}
	mb.box.Folders = append(mb.box.Folders,
		&graphtest.Folder{Name: "Outbox", WellKnown: "outbox", Messages: sys("unsent")},
		&graphtest.Folder{Name: "Scheduled", WellKnown: "scheduled", Messages: sys("send later")},
		&graphtest.Folder{Name: "Sync Issues", WellKnown: "syncissues", Messages: sys("sync log"), Children: []*graphtest.Folder{
			{Name: "Conflicts", WellKnown: "conflicts", Messages: sys("conflict")},
			{Name: "Local Failures", WellKnown: "localfailures", Messages: sys("local failure")},
			{Name: "Server Failures", WellKnown: "serverfailures", Messages: sys("server failure")},
		}})
	srv.AddMailbox(mb.box)
	for _, ms := range mb.want {
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].Date.Before(ms[j].Date) })
	}
	return mb
}

// names maps emulator folders to the name the source must give them.
var names = map[*graphtest.Folder]string{}

func sourceName(byPath map[string]*graphtest.Folder, path string) string { return names[byPath[path]] }

func open(t *testing.T, e mail.Endpoint) sources.Source {
	t.Helper()
	s, err := sources.Open(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := graphtest.New(t)
	srv.PageSize = 7
	mb := seed(srv, "ann@contoso.com", 120, 1, 0)
	sourcetest.Run(t, sourcetest.Fixture{Folders: mb.want, Special: mb.special, FlagsKept: true, DatesListed: true},
		func(t *testing.T) sources.Source { return open(t, srv.Endpoint("ann@contoso.com")) })

	s := open(t, srv.Endpoint("ann@contoso.com"))
	folders, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range folders {
		if f.System != "" {
			continue
		}
		got = append(got, f.Name)
		if f.Name == "Unread Mail" {
			t.Error("search folder listed")
		}
		if f.Delim != '/' {
			t.Errorf("%q: delimiter %q", f.Name, f.Delim)
		}
	}
	var want []string
	for name := range mb.want {
		want = append(want, name)
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("folders\n got %q\nwant %q", got, want)
	}
}

// readAll lists and fetches a whole mailbox over `sessions` sessions at
// once, each fetching its share of every folder, and compares with want.
func readAll(t *testing.T, e mail.Endpoint, want map[string][]sourcetest.Message, sessions int) (messages int) {
	t.Helper()
	ctx := context.Background()
	lister := open(t, e)
	folders, err := lister.Folders(ctx)
	if err != nil {
		t.Error(err)
		return 0
	}
	seen := map[string]bool{}
	for _, f := range folders {
		if f.System != "" {
			continue // left behind by a job, as system folders are
		}
		w, ok := want[f.Name]
		if !ok {
			t.Errorf("%s: unexpected folder %q", e.AuthzID, f.Name)
			continue
		}
		seen[f.Name] = true
		msgs, err := lister.Messages(ctx, f)
		if err != nil {
			t.Error(err)
			return
		}
		if len(msgs) != len(w) || int(f.Messages) != len(w) {
			t.Errorf("%s %q: %d listed, folder says %d, want %d", e.AuthzID, f.Name, len(msgs), f.Messages, len(w))
			continue
		}
		for i, m := range msgs {
			if !m.Date.Equal(w[i].Date) || m.Size != int64(len(w[i].Body)) || !sameFlags(m.Flags, w[i].Flags) {
				t.Errorf("%s %q %d: listed %v %d %v, want %v %d %v", e.AuthzID, f.Name, i, m.Date, m.Size, m.Flags, w[i].Date, len(w[i].Body), w[i].Flags)
			}
		}
		var mu sync.Mutex
		got := map[string][]byte{}
		var wg sync.WaitGroup
		for k := 0; k < sessions; k++ {
			var share []mail.Message
			for i := k; i < len(msgs); i += sessions {
				share = append(share, msgs[i])
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := sources.Open(ctx, e)
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close()
				err = s.Fetch(ctx, f, share, func(b *mail.Body) error {
					data, err := io.ReadAll(b)
					if err != nil {
						return err
					}
					if int64(len(data)) != b.Size {
						t.Errorf("%q: %d bytes announced as %d", f.Name, len(data), b.Size)
					}
					mu.Lock()
					got[b.Key] = data
					mu.Unlock()
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for i, m := range msgs {
			if !bytes.Equal(got[m.Key], w[i].Body) {
				t.Errorf("%s %q %d: body differs (%d bytes, want %d)", e.AuthzID, f.Name, i, len(got[m.Key]), len(w[i].Body))
			}
			messages++
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: folder %q not listed", e.AuthzID, name)
		}
	}
	return messages
}

func sameFlags(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// TestFiveMailboxes reads 5 mailboxes of 200 messages at once, three
// sessions per mailbox: bodies byte for byte, flags, dates; never more than
// 4 requests in flight per mailbox; tokens shared by every session.
func TestFiveMailboxes(t *testing.T) {
	srv := graphtest.New(t)
	var boxes []*mailbox
	for i := 0; i < 5; i++ {
		boxes = append(boxes, seed(srv, fmt.Sprintf("user%d@contoso.com", i), 200, int64(10+i), 100<<10))
	}
	start := time.Now()
	var wg sync.WaitGroup
	counts := make([]int, len(boxes))
	for i, mb := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i] = readAll(t, srv.Endpoint(mb.box.Mail), mb.want, 3)
		}()
	}
	wg.Wait()
	st := srv.Stats()
	t.Logf("%v: %v messages, requests %v, tokens %d, max in flight %v", time.Since(start), counts, st.Requests, st.Tokens, st.MaxInFlight)
	for i, n := range counts {
		if n != 200 {
			t.Errorf("mailbox %d: %d messages compared", i, n)
		}
	}
	for box, n := range st.MaxInFlight {
		if n > graph.MaxConcurrent {
			t.Errorf("%s: %d requests at once", box, n)
		}
	}
	// 20 sessions; the credential and its token cache are shared (only
	// sessions asking at the very same moment may fetch one each).
	if st.Tokens < 1 || st.Tokens > len(boxes) {
		t.Errorf("%d tokens issued for 20 sessions", st.Tokens)
	}
	if st.MutableIDs != 0 {
		t.Errorf("%d requests without immutable ids", st.MutableIDs)
	}
}

// TestThrottleStorm: every 15th request per mailbox starts a second of 429s
// and 503s; the run slows down but every message arrives intact, and no
// request is sent while the server has asked to wait.
func TestThrottleStorm(t *testing.T) {
	srv := graphtest.New(t)
	srv.PageSize = 20
	var boxes []*mailbox
	for i := 0; i < 2; i++ {
		boxes = append(boxes, seed(srv, fmt.Sprintf("storm%d@contoso.com", i), 40, int64(30+i), 0))
	}
	srv.Storm(15)
	start := time.Now()
	var wg sync.WaitGroup
	for _, mb := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n := readAll(t, srv.Endpoint(mb.box.Mail), mb.want, 3); n != 40 {
				t.Errorf("%s: %d of 40 messages", mb.box.Mail, n)
			}
		}()
	}
	wg.Wait()
	st := srv.Stats()
	elapsed := time.Since(start)
	t.Logf("%v: throttled %d times, early %d, requests %v", elapsed, st.Throttled, st.Early, st.Requests)
	if st.Throttled < 8 {
		t.Fatalf("only %d throttled answers: the storm did not happen", st.Throttled)
	}
	if st.Early != 0 {
		t.Fatalf("%d requests ignored Retry-After", st.Early)
	}
	if elapsed < 3*time.Second {
		t.Fatalf("a storm of %d throttled answers with Retry-After: 1 took only %v", st.Throttled, elapsed)
	}
}

func TestForbiddenMissingAndBadSecret(t *testing.T) {
	srv := graphtest.New(t)
	seed(srv, "ok@contoso.com", 3, 1, 0)
	srv.AddMailbox(&graphtest.Mailbox{Mail: "locked@contoso.com", Status: 403})
	srv.AddMailbox(&graphtest.Mailbox{Mail: "unlicensed@contoso.com", Status: 404})
	bad := srv.Endpoint("ok@contoso.com")
	bad.Password = "not-the-secret"
	noTenant := srv.Endpoint("ok@contoso.com")
	noTenant.Tenant = "fabrikam-tenant"
	for _, c := range []struct {
		e      mail.Endpoint
		reason string
	}{
		{srv.Endpoint("locked@contoso.com"), "the app has no permission to read mailbox locked@contoso.com: grant the Mail.Read application permission with admin consent"},
		{srv.Endpoint("unlicensed@contoso.com"), "no such mailbox unlicensed@contoso.com"},
		{srv.Endpoint("nobody@contoso.com"), "no such mailbox nobody@contoso.com"},
		{bad, "Entra ID refused the app's credentials for tenant \"contoso-tenant\" (AADSTS7000215)"},
		{noTenant, "(AADSTS90002)"},
	} {
		_, err := sources.Open(context.Background(), c.e)
		if err == nil || !strings.Contains(fault.Reason(err), c.reason) || fault.Classify(err) != fault.Account {
			t.Errorf("%s: got %v (%s), want an account failure saying %q", c.e.AuthzID, err, classOf(err), c.reason)
		}
		if err != nil && strings.Contains(err.Error(), srv.Secret) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	if _, err := sources.Open(context.Background(), srv.Endpoint("ok@contoso.com")); err != nil {
		t.Fatalf("the permitted mailbox: %v", err)
	}
}

func classOf(err error) string {
	if err == nil {
		return "nil"
	}
	return fault.Classify(err).String()
}

func TestUsersByDomain(t *testing.T) {
	srv := graphtest.New(t)
	srv.PageSize = 3
	want := []string{}
	for i := 0; i < 8; i++ {
		m := fmt.Sprintf("member%d@Contoso.com", i)
		srv.AddMailbox(&graphtest.Mailbox{Mail: m, DisplayName: fmt.Sprintf("Member %d", i), Disabled: i == 5})
		want = append(want, m)
	}
	srv.AddMailbox(&graphtest.Mailbox{Mail: "someone@fabrikam.com"})
	srv.AddMailbox(&graphtest.Mailbox{Mail: "someone@notcontoso.com"})
	srv.AddMailbox(&graphtest.Mailbox{Mail: "", UPN: "nomail@contoso.com"})
	srv.AddMailbox(&graphtest.Mailbox{Mail: "moved@fabrikam.com", UPN: "moved@contoso.com"})
	e := srv.Endpoint("")
	users, err := graph.Users(context.Background(), e, "contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Mail)
		if u.ID == "" || u.UserPrincipalName == "" || u.DisplayName == "" {
			t.Errorf("incomplete user %+v", u)
		}
		if u.Enabled != (u.Mail != "member5@Contoso.com") {
			t.Errorf("%s: enabled %v", u.Mail, u.Enabled)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("users of contoso.com\n got %q\nwant %q", got, want)
	}
	if st := srv.Stats(); st.Requests["users"] != 3 {
		t.Fatalf("%d pages, want 3", st.Requests["users"])
	}
	if _, err := graph.Users(context.Background(), e, "contoso.com' or true"); err == nil {
		t.Fatal("a filter injection was accepted as a domain")
	}
}

// TestDeltaRelisting: a second listing follows the delta link, reads no
// $value, and shows new messages, deletions and flag changes; a lost sync state
// falls back to a full listing; DirDeltas carries the state to a new process.
func TestDeltaRelisting(t *testing.T) {
	for _, store := range []string{"memory", "dir"} {
		t.Run(store, func(t *testing.T) {
			saved := graph.Deltas
			defer func() { graph.Deltas = saved }()
			if store == "memory" {
				graph.Deltas = graph.NewMemoryDeltas(1 << 20)
			} else {
				graph.Deltas = graph.DirDeltas(t.TempDir())
			}
			srv := graphtest.New(t)
			srv.PageSize = 9
			mb := seed(srv, "delta@contoso.com", 60, 7, 0)
			ctx := context.Background()
			e := srv.Endpoint("delta@contoso.com")
			inbox := func(s sources.Source) (mail.Folder, []mail.Message) {
				t.Helper()
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
						return f, msgs
					}
				}
				t.Fatal("no INBOX")
				return mail.Folder{}, nil
			}
			_, first := inbox(open(t, e))
			if len(first) != len(mb.want["INBOX"]) {
				t.Fatalf("%d listed, want %d", len(first), len(mb.want["INBOX"]))
			}

			srv.ResetStats()
			newMsgs := []*graphtest.Message{
				{MIME: []byte("Subject: new 1\r\n\r\nhello\r\n"), Received: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
				{MIME: []byte("Subject: new 2\r\n\r\nhello again\r\n"), Received: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), Read: true},
			}
			srv.Deliver("delta@contoso.com", "Inbox", newMsgs...)
			srv.Delete("delta@contoso.com", first[0].Key)
			srv.Update("delta@contoso.com", first[1].Key, func(m *graphtest.Message) { m.Flagged = true })
			f, second := inbox(open(t, e))
			st := srv.Stats()
			if st.Requests["delta-link"] != 1 || st.Requests["delta-initial"] != 0 || st.Requests["value"] != 0 {
				t.Fatalf("re-listing requests %v: want one delta-link request and no $value", st.Requests)
			}
			if len(second) != len(first)+1 {
				t.Fatalf("%d listed after +2 -1, had %d", len(second), len(first))
			}
			if second[0].Key != first[1].Key || !slices.Contains(second[0].Flags, `\Flagged`) || second[0].Size != first[1].Size {
				t.Fatalf("updated message: %+v (was %+v)", second[0], first[1])
			}
			for i, nm := range newMsgs {
				got := second[len(second)-2+i]
				if got.Key != nm.ID || got.Size != int64(len(nm.MIME)) || !got.Date.Equal(nm.Received) {
					t.Fatalf("new message %d: %+v", i, got)
				}
			}
			// Fetch of the deleted message skips it.
			n := 0
			if err := open(t, e).Fetch(ctx, f, []mail.Message{first[0], second[len(second)-1]}, func(b *mail.Body) error { n++; return nil }); err != nil || n != 1 {
				t.Fatalf("fetch with a deleted message: %d bodies, %v", n, err)
			}

			// The server forgets the sync state: a full listing, same result.
			srv.ResetStats()
			srv.ForgetSyncState()
			_, third := inbox(open(t, e))
			st = srv.Stats()
			if st.Requests["delta-initial"] != 1 || st.Requests["value"] != 0 || len(third) != len(second) {
				t.Fatalf("after a lost sync state: %v, %d listed", st.Requests, len(third))
			}
		})
	}
}

// TestOrderedListingAndSpool: without a delta store the folder is listed
// in ascending received time; without Content-Length bodies are spooled
// (memory, then a temporary file) so their size is still exact.
func TestOrderedListingAndSpool(t *testing.T) {
	savedDeltas, savedSpool := graph.Deltas, graph.SpoolMemory
	defer func() { graph.Deltas, graph.SpoolMemory = savedDeltas, savedSpool }()
	graph.Deltas = nil
	graph.SpoolMemory = 4 << 10
	srv := graphtest.New(t)
	srv.PageSize = 11
	srv.NoContentLength = true
	mb := seed(srv, "plain@contoso.com", 80, 3, 100<<10)
	if n := readAll(t, srv.Endpoint("plain@contoso.com"), mb.want, 2); n != 80 {
		t.Fatalf("%d of 80 messages", n)
	}
	if st := srv.Stats(); st.Requests["messages"] == 0 || st.Requests["delta-initial"] != 0 {
		t.Fatalf("requests %v: want ordered listing, no delta", st.Requests)
	}
}

func TestEndpointURL(t *testing.T) {
	e, err := mail.ParseEndpoint("graph://11111111-2222-3333-4444-555555555555@graph.microsoft.com?tenant=contoso.onmicrosoft.com&authzid=ann@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	if e.Scheme != "graph" || e.Port != 443 || e.Tenant != "contoso.onmicrosoft.com" || e.AuthzID != "ann@contoso.com" || e.User == "" {
		t.Fatalf("%+v", e)
	}
	if !slices.Contains(sources.Schemes(), "graph") {
		t.Fatal("graph scheme not registered")
	}
	_, err = sources.Open(context.Background(), mail.Endpoint{Scheme: "graph", Host: "127.0.0.1", Port: 1, User: "x", Password: "y", Tenant: "t"})
	if err == nil || !strings.Contains(fault.Reason(err), "no mailbox") {
		t.Fatalf("no mailbox: %v", err)
	}
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatal("unclassified error")
	}
}

// TestUnreadableMessage: a message Graph cannot turn into MIME does not
// stop its folder's listing; its fetch fails it alone (a refusal) or as a
// retry the engine gives up after a few (a server error).
func TestUnreadableMessage(t *testing.T) {
	srv := graphtest.New(t)
	ok1 := &graphtest.Message{MIME: []byte("Subject: one\r\n\r\n1\r\n"), Received: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	bad := &graphtest.Message{MIME: []byte("Subject: two\r\n\r\n2\r\n"), Received: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), Status: 400}
	ok2 := &graphtest.Message{MIME: []byte("Subject: three\r\n\r\n3\r\n"), Received: time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)}
	srv.AddMailbox(&graphtest.Mailbox{Mail: "odd@contoso.com", Folders: []*graphtest.Folder{{Name: "Inbox", WellKnown: "inbox", Messages: []*graphtest.Message{ok1, bad, ok2}}}})
	ctx := context.Background()
	s := open(t, srv.Endpoint("odd@contoso.com"))
	fs, err := s.Folders(ctx)
	if err != nil || len(fs) != 1 {
		t.Fatal(fs, err)
	}
	msgs, err := s.Messages(ctx, fs[0])
	if err != nil || len(msgs) != 3 || msgs[1].Size != int64(len(bad.MIME)) || msgs[2].Size != int64(len(ok2.MIME)) {
		t.Fatalf("listing: %v %+v", err, msgs)
	}
	var got []string
	err = s.Fetch(ctx, fs[0], msgs, func(b *mail.Body) error { got = append(got, b.Key); return nil })
	var me *mail.MessageError
	if !errors.As(err, &me) || me.Message.Key != bad.ID || fault.Classify(err) != fault.Message || len(got) != 1 {
		t.Fatalf("fetch: %v (%s), %d bodies before", err, classOf(err), len(got))
	}
	srv.Update("odd@contoso.com", bad.ID, func(m *graphtest.Message) { m.Status = 500 })
	err = s.Fetch(ctx, fs[0], msgs[1:2], func(b *mail.Body) error { return nil })
	if fault.Classify(err) != fault.Retry {
		t.Fatalf("server error: %v (%s)", err, classOf(err))
	}
}
