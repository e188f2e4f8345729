package ews_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/ews"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
	"github.com/banjia-mail/banjia/sources/sourcetest"
)

// Exchange display names and distinguished ids of mailgen's special folders.
var exchangeFolders = map[string]struct{ display, wellKnown, special string }{
	"INBOX":  {"Inbox", "inbox", ""},
	"Sent":   {"Sent Items", "sentitems", mail.SpecialSent},
	"Drafts": {"Drafts", "drafts", mail.SpecialDrafts},
	"Trash":  {"Deleted Items", "deleteditems", mail.SpecialTrash},
	"Junk":   {"Junk Email", "junkemail", mail.SpecialJunk},
}

// Categories given to some messages and the keywords the source must turn them into.
var categories = []struct{ category, keyword string }{
	{"Red category", "Red_category"},
	{"红色类别", "&fqKCcnx7Uis-"},
}

// Mailbox is a seeded emulator mailbox and what the source must show of it.
type Mailbox struct {
	Box     *ewstest.Mailbox
	Want    map[string][]sourcetest.Message // by source folder name
	Special map[string]string
}

// Seed fills an emulator mailbox from mailgen: its folders (English,
// Chinese, nested) under the well-known ones, flags, categories, and the
// folders a mail copy leaves out (calendar, contacts, tasks, notes, Sync
// Issues, a search folder).
func Seed(srv *ewstest.Server, smtp string, n int, seedNo int64, maxAttach int) *Mailbox {
	mb := &Mailbox{Box: &ewstest.Mailbox{SMTP: smtp}, Want: map[string][]sourcetest.Message{}, Special: map[string]string{}}
	byPath := map[string]*ewstest.Folder{}
	srcName := map[string]string{}
	var folder func(path string) *ewstest.Folder
	folder = func(path string) *ewstest.Folder {
		if f := byPath[path]; f != nil {
			return f
		}
		parent, name := "", path
		i := strings.LastIndex(path, "/")
		if i >= 0 {
			parent, name = path[:i], path[i+1:]
		}
		f := &ewstest.Folder{Name: name}
		src := path
		if i < 0 {
			if g, ok := exchangeFolders[name]; ok {
				f.Name, f.WellKnown, src = g.display, g.wellKnown, g.display
				if name == "INBOX" {
					src = "INBOX"
				}
				mb.Special[src] = g.special
			}
			mb.Box.Folders = append(mb.Box.Folders, f)
		} else {
			p := folder(parent)
			p.Children = append(p.Children, f)
			src = srcName[parent] + "/" + name
		}
		byPath[path], srcName[path] = f, src
		mb.Want[src] = mb.Want[src][:0:0]
		return f
	}
	for _, top := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk"} {
		folder(top)
	}
	for i, m := range mailgen.Mailbox(smtp, mailgen.Options{Seed: seedNo, Messages: n, MaxAttachment: maxAttach}) {
		f := folder(m.Folder)
		em := &ewstest.Message{MIME: m.Body, Received: m.Date}
		var want []string
		for _, fl := range m.Flags {
			switch fl {
			case `\Seen`:
				em.Read = true
			case `\Flagged`:
				em.Flagged = true
			case `\Draft`:
				em.Draft = true
			case `\Answered`:
				if em.LastVerb == 0 {
					em.LastVerb = 102
				}
			case "$Forwarded":
				em.LastVerb = 104 // the last verb wins: Exchange keeps one
			default:
				em.Categories = append(em.Categories, fl)
				want = append(want, fl)
			}
		}
		if em.Read {
			want = append(want, `\Seen`)
		}
		if em.Flagged {
			want = append(want, `\Flagged`)
		}
		if em.Draft {
			want = append(want, `\Draft`)
		}
		switch em.LastVerb {
		case 102:
			want = append(want, `\Answered`)
		case 104:
			want = append(want, "$Forwarded")
		}
		if i%9 == 4 {
			c := categories[i%len(categories)]
			em.Categories = append(em.Categories, c.category)
			want = append(want, c.keyword)
		}
		if i%13 == 5 {
			em.Class = "IPM.Schedule.Meeting.Request"
		}
		f.Messages = append(f.Messages, em)
		src := srcName[m.Folder]
		mb.Want[src] = append(mb.Want[src], sourcetest.Message{Body: m.Body, Flags: want, Date: m.Date})
	}
	junk := &ewstest.Message{MIME: []byte("Subject: not mail\r\n\r\nx\r\n"), Received: time.Now()}
	sync := &ewstest.Folder{Name: "Sync Issues", Messages: []*ewstest.Message{junk},
		Children: []*ewstest.Folder{{Name: "Conflicts"}, {Name: "Local Failures"}}}
	mb.Box.Folders = append(mb.Box.Folders,
		&ewstest.Folder{Name: "Calendar", WellKnown: "calendar", Class: "IPF.Appointment", Children: []*ewstest.Folder{{Name: "Holidays", Class: "IPF.Appointment"}}},
		&ewstest.Folder{Name: "Contacts", WellKnown: "contacts", Class: "IPF.Contact"},
		&ewstest.Folder{Name: "Tasks", WellKnown: "tasks", Class: "IPF.Task"},
		&ewstest.Folder{Name: "Notes", WellKnown: "notes", Class: "IPF.StickyNote"},
		&ewstest.Folder{Name: "Unread Mail", Search: true},
		sync)
	srv.AddMailbox(mb.Box)
	for _, ms := range mb.Want {
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].Date.Before(ms[j].Date) })
	}
	return mb
}

func open(t *testing.T, e mail.Endpoint) sources.Source {
	t.Helper()
	s, err := sources.Open(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance reads a member's own mailbox over NTLM as CONTOSO\ann,
// listed with FindItem and with SyncFolderItems, in pages smaller than
// the folders.
func TestConformance(t *testing.T) {
	savedPage, savedSyncs, savedChanges := ews.PageSize, ews.Syncs, ews.MaxSyncChanges
	defer func() { ews.PageSize, ews.Syncs, ews.MaxSyncChanges = savedPage, savedSyncs, savedChanges }()
	ews.PageSize, ews.MaxSyncChanges = 7, 7
	for _, listing := range []string{"FindItem", "SyncFolderItems"} {
		t.Run(listing, func(t *testing.T) {
			ews.Syncs = nil
			if listing == "SyncFolderItems" {
				ews.Syncs = ews.NewMemorySyncs(1 << 20)
			}
			srv := ewstest.New(t)
			srv.AddAccount(&ewstest.Account{Name: "ann", UPN: "ann@contoso.com", Password: "Ann-pw 1", Mailbox: "ann@contoso.com"})
			mb := Seed(srv, "ann@contoso.com", 150, 1, 0)
			e := srv.Endpoint(`CONTOSO\ann`, "Ann-pw 1", "")
			sourcetest.Run(t, sourcetest.Fixture{Folders: mb.Want, Special: mb.Special, FlagsKept: true, DatesListed: true},
				func(t *testing.T) sources.Source { return open(t, e) })

			s := open(t, e)
			folders, err := s.Folders(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got, want, system []string
			for _, f := range folders {
				if f.System != "" {
					system = append(system, f.Name)
					continue
				}
				got = append(got, f.Name)
			}
			if !slices.Equal(system, []string{"Sync Issues", "Sync Issues/Conflicts", "Sync Issues/Local Failures"}) {
				t.Fatalf("system folders %q: want Sync Issues and everything below it", system)
			}
			for name := range mb.Want {
				want = append(want, name)
			}
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("folders (calendar, contacts, tasks, notes and search folders left out; system folders apart)\n got %q\nwant %q", got, want)
			}
			st := srv.Stats()
			if st.Handshakes == 0 || st.Basic != 0 {
				t.Errorf("logins: %d NTLM, %d Basic; want NTLM only", st.Handshakes, st.Basic)
			}
			if len(st.Versions) != 1 || st.Versions["Exchange2010_SP2"] == 0 {
				t.Errorf("RequestServerVersion sent: %v", st.Versions)
			}
			if st.Impersonated != 0 {
				t.Errorf("%d requests impersonated reading one's own mailbox", st.Impersonated)
			}
			other := map[string]string{"FindItem": "SyncFolderItems", "SyncFolderItems": "FindItem"}[listing]
			if st.Requests[listing] == 0 || st.Requests[other] != 0 {
				t.Errorf("requests %v: want %s only", st.Requests, listing)
			}
			t.Logf("requests %v, NTLM handshakes %d, largest GetItem %d, MIME items sent %d", st.Requests, st.Handshakes, st.MaxBatch, st.MIMEItems)
		})
	}
}

// TestIncremental: a second listing through the kept SyncFolderItems state
// sees new, changed and deleted items and reads the MIME of the new ones
// only; a state Exchange no longer knows starts the folder over.
func TestIncremental(t *testing.T) {
	ctx := context.Background()
	saved, savedChanges := ews.Syncs, ews.MaxSyncChanges
	defer func() { ews.Syncs, ews.MaxSyncChanges = saved, savedChanges }()
	store := ews.NewMemorySyncs(1 << 20)
	ews.Syncs, ews.MaxSyncChanges = store, 8
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "fay", Password: "Fay-pw", Mailbox: "fay@contoso.com"})
	srv.AddMailbox(&ewstest.Mailbox{SMTP: "fay@contoso.com", Folders: []*ewstest.Folder{{Name: "Inbox", WellKnown: "inbox"}}})
	day := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	msg := func(i int) *ewstest.Message {
		return &ewstest.Message{MIME: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)), Received: day.Add(time.Duration(i) * time.Minute)}
	}
	var first []*ewstest.Message
	for i := 0; i < 30; i++ {
		first = append(first, msg(i))
	}
	srv.Deliver("fay@contoso.com", "Inbox", first...)
	list := func() []mail.Message {
		t.Helper()
		s := open(t, srv.Endpoint("fay", "Fay-pw", ""))
		folders, err := s.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := s.Messages(ctx, folders[0])
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	if msgs := list(); len(msgs) != 30 || msgs[0].Key != first[0].ID || msgs[29].Size != int64(len(first[29].MIME)) {
		t.Fatalf("first listing: %d messages", len(msgs))
	}
	if st := srv.Stats(); st.MIMEItems != 30 || st.Requests["SyncFolderItems"] != 4 || st.Requests["FindItem"] != 0 {
		t.Fatalf("first listing: %d MIME items, requests %v", st.MIMEItems, st.Requests)
	}

	srv.ResetStats()
	srv.Deliver("fay@contoso.com", "Inbox", msg(40), msg(41))
	srv.Update("fay@contoso.com", first[3].ID, func(m *ewstest.Message) { m.Read, m.Flagged = true, true })
	srv.Delete("fay@contoso.com", first[5].ID)
	msgs := list()
	if len(msgs) != 31 || msgs[30].Size != int64(len(msg(41).MIME)) || msgs[5].Key != first[6].ID {
		t.Fatalf("second listing: %d messages", len(msgs))
	}
	if fl := strings.Join(msgs[3].Flags, " "); fl != `\Seen \Flagged` {
		t.Fatalf("updated flags %q", fl)
	}
	if st := srv.Stats(); st.MIMEItems != 2 || st.Requests["SyncFolderItems changes"] != 4 {
		t.Fatalf("second listing: %d MIME items, requests %v: want the 2 new ones read and 4 changes", st.MIMEItems, st.Requests)
	}

	// A state Exchange does not know (a restored database): the folder starts over.
	ews.Syncs = staleStore{store}
	srv.ResetStats()
	if msgs := list(); len(msgs) != 31 {
		t.Fatalf("after a stale state: %d messages", len(msgs))
	}
}

// staleStore hands out every kept listing with a sync state Exchange refuses.
type staleStore struct{ ews.SyncStore }

func (s staleStore) Load(key string) ([]byte, error) {
	data, err := s.SyncStore.Load(key)
	if data == nil || err != nil {
		return data, err
	}
	var snap map[string]any
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, err
	}
	snap["state"] = "c3RhbGV8MQ=="
	return json.Marshal(snap)
}

// TestLogins: NTLM with a UPN, Basic where only Basic is on, and refusals
// that say what to check.
func TestLogins(t *testing.T) {
	ctx := context.Background()
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "bob", UPN: "bob@contoso.com", Password: "Bob-pw", Mailbox: "bob@contoso.com"})
	Seed(srv, "bob@contoso.com", 5, 2, 0)

	if _, err := ews.Open(ctx, srv.Endpoint("bob@contoso.com", "Bob-pw", "")); err != nil {
		t.Fatalf("NTLM with the UPN: %v", err)
	}
	for _, bad := range []mail.Endpoint{srv.Endpoint(`CONTOSO\bob`, "wrong", ""), srv.Endpoint(`FABRIKAM\bob`, "Bob-pw", ""), srv.Endpoint("nobody", "Bob-pw", "")} {
		_, err := ews.Open(ctx, bad)
		if fault.RefusalOf(err) != fault.BadCredentials || !strings.Contains(err.Error(), "refused the login of "+bad.User) {
			t.Errorf("%s: %v", bad.User, err)
		}
		if strings.Contains(err.Error(), "Bob-pw") {
			t.Fatalf("password in the error: %v", err)
		}
	}
	if st := srv.Stats(); st.Handshakes != 1 {
		t.Errorf("%d NTLM logins accepted, want 1", st.Handshakes)
	}

	srv.Auth = "basic"
	e := srv.Endpoint(`CONTOSO\bob`, "Bob-pw", "")
	if _, err := ews.Open(ctx, e); err != nil {
		t.Fatalf("Basic: %v", err)
	}
	if st := srv.Stats(); st.Basic == 0 {
		t.Error("no Basic login counted")
	}
	e.Auth = "ntlm"
	if _, err := ews.Open(ctx, e); fault.RefusalOf(err) != fault.BadCredentials {
		t.Errorf("NTLM only against a Basic-only server: %v", err)
	}
	e.Auth = "basic"
	if _, err := ews.Open(ctx, e); err != nil {
		t.Errorf("Basic asked for: %v", err)
	}

	e = srv.Endpoint(`CONTOSO\bob`, "Bob-pw", "")
	e.RootCAs = nil
	_, err := ews.Open(ctx, e)
	if fault.Classify(err) != fault.Account || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
	e = srv.Endpoint(`CONTOSO\bob`, "Bob-pw", "")
	e.Version = "Exchange2016"
	if _, err := ews.Open(ctx, e); fault.Classify(err) != fault.Account || !strings.Contains(err.Error(), "--ews-version") {
		t.Errorf("version above the server's: %v", err)
	}
	e.Version = "Exchange2099"
	if _, err := ews.Open(ctx, e); err == nil || !strings.Contains(err.Error(), "unknown Exchange version") {
		t.Errorf("unknown version: %v", err)
	}
}

// TestImpersonation: an admin with the ApplicationImpersonation role reads
// members' mailboxes with its own password; one without it, or a mailbox
// that does not exist, gets a reason to act on.
func TestImpersonation(t *testing.T) {
	ctx := context.Background()
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "migadmin", Password: "Adm1n!", Impersonate: true})
	srv.AddAccount(&ewstest.Account{Name: "helpdesk", Password: "Help!", Mailbox: "helpdesk@contoso.com"})
	mb := Seed(srv, "carol@contoso.com", 40, 3, 0)
	Seed(srv, "helpdesk@contoso.com", 3, 4, 0)

	s := open(t, srv.Endpoint(`CONTOSO\migadmin`, "Adm1n!", "carol@contoso.com"))
	if n := readAll(t, s, mb.Want); n != 40 {
		t.Fatalf("read %d of 40 through impersonation", n)
	}
	if st := srv.Stats(); st.Impersonated == 0 {
		t.Fatal("no request impersonated")
	}

	_, err := ews.Open(ctx, srv.Endpoint(`CONTOSO\helpdesk`, "Help!", "carol@contoso.com"))
	if fault.Classify(err) != fault.Account || !strings.Contains(err.Error(), "ApplicationImpersonation") || !strings.Contains(err.Error(), "carol@contoso.com") {
		t.Errorf("admin without the role: %v", err)
	}
	_, err = ews.Open(ctx, srv.Endpoint(`CONTOSO\migadmin`, "Adm1n!", "gone@contoso.com"))
	if fault.Classify(err) != fault.Account || !strings.Contains(err.Error(), "no Exchange mailbox gone@contoso.com") {
		t.Errorf("no such mailbox: %v", err)
	}
}

// TestFullAccess: an admin without the impersonation role but with
// FullAccess on a mailbox reads it, naming the member's mailbox in its
// requests; on a mailbox it has no FullAccess to it is told both ways.
func TestFullAccess(t *testing.T) {
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "deleg", Password: "Deleg-pw", FullAccess: []string{"hal@contoso.com"}})
	hal := Seed(srv, "hal@contoso.com", 40, 7, 0)
	Seed(srv, "ida@contoso.com", 3, 8, 0)

	s := open(t, srv.Endpoint(`CONTOSO\deleg`, "Deleg-pw", "hal@contoso.com"))
	if n := readAll(t, s, hal.Want); n != 40 {
		t.Fatalf("read %d of 40 through FullAccess", n)
	}
	if st := srv.Stats(); st.Delegated == 0 || st.Impersonated != 0 {
		t.Fatalf("folders named in the member's mailbox %d times, impersonated %d: want FullAccess only", st.Delegated, st.Impersonated)
	}
	_, err := ews.Open(context.Background(), srv.Endpoint(`CONTOSO\deleg`, "Deleg-pw", "ida@contoso.com"))
	if fault.Classify(err) != fault.Account || !strings.Contains(err.Error(), "ApplicationImpersonation role") ||
		!strings.Contains(err.Error(), "Add-MailboxPermission -Identity ida@contoso.com -User CONTOSO\\deleg -AccessRights FullAccess") {
		t.Fatalf("neither impersonation nor FullAccess: %v", err)
	}
}

// readAll lists and fetches every folder and compares with want.
func readAll(t *testing.T, s sources.Source, want map[string][]sourcetest.Message) int {
	t.Helper()
	ctx := context.Background()
	folders, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range folders {
		if f.System != "" {
			continue // left behind by a job, as system folders are
		}
		msgs, err := s.Messages(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		w := want[f.Name]
		if len(msgs) != len(w) {
			t.Fatalf("%q: %d messages, want %d", f.Name, len(msgs), len(w))
		}
		i := 0
		err = s.Fetch(ctx, f, msgs, func(b *mail.Body) error {
			data, err := io.ReadAll(b)
			if err != nil {
				return err
			}
			if !bytes.Equal(data, w[i].Body) || !b.Date.Equal(w[i].Date) {
				return fmt.Errorf("%q %d differs", f.Name, i)
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n += i
	}
	return n
}

// TestThrottling: ErrorServerBusy is waited out for as long as Exchange
// asks (never coming back early), and a page above EWSFindCountLimit, which
// Exchange refuses, is asked again smaller.
func TestThrottling(t *testing.T) {
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "dan", Password: "Dan-pw", Mailbox: "dan@contoso.com"})
	mb := Seed(srv, "dan@contoso.com", 120, 5, 0)
	srv.FindCountLimit = 10
	srv.BusyEvery, srv.BackOff = 4, 120*time.Millisecond
	saved, savedSyncs := ews.PageSize, ews.Syncs
	ews.PageSize, ews.Syncs = 25, nil // FindItem, whose pages the limit applies to
	defer func() { ews.PageSize, ews.Syncs = saved, savedSyncs }()

	start := time.Now()
	s := open(t, srv.Endpoint("dan", "Dan-pw", ""))
	if n := readAll(t, s, mb.Want); n != 120 {
		t.Fatalf("read %d of 120", n)
	}
	st := srv.Stats()
	if st.Busy < 3 || st.Early != 0 {
		t.Fatalf("busy answers %d, early retries %d: want some, and none early", st.Busy, st.Early)
	}
	if d := time.Since(start); d < time.Duration(st.Busy)*srv.BackOff {
		t.Fatalf("finished in %v after %d back-offs of %v", d, st.Busy, srv.BackOff)
	}
	t.Logf("%v, busy %d, requests %v", time.Since(start), st.Busy, st.Requests)
	if st.Requests["FindItem"] == 0 || st.PagesRefused == 0 {
		t.Fatalf("FindItem requests %d, pages refused %d: want both", st.Requests["FindItem"], st.PagesRefused)
	}

	// A back-off longer than the source waits goes back to the engine.
	srv.BusyEvery, srv.BackOff = 1, time.Minute
	_, err := s.Folders(context.Background())
	if fault.Classify(err) != fault.Retry || fault.Wait(err) < 50*time.Second {
		t.Fatalf("long back-off: %v (wait %v)", err, fault.Wait(err))
	}
}

// TestItemWithoutMIME: an item Exchange cannot convert fails alone; the
// others of its folder are read.
func TestItemWithoutMIME(t *testing.T) {
	ctx := context.Background()
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "eve", Password: "Eve-pw", Mailbox: "eve@contoso.com"})
	srv.AddMailbox(&ewstest.Mailbox{SMTP: "eve@contoso.com", Folders: []*ewstest.Folder{{Name: "Inbox", WellKnown: "inbox"}}})
	day := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	srv.Deliver("eve@contoso.com", "Inbox",
		&ewstest.Message{MIME: []byte("Subject: one\r\n\r\n1\r\n"), Received: day},
		&ewstest.Message{Class: "REPORT.IPM.Note.NDR", Received: day.Add(time.Hour)},
		&ewstest.Message{MIME: append([]byte("Subject: big\r\n\r\n"), big...), Received: day.Add(2 * time.Hour)})
	s := open(t, srv.Endpoint("eve", "Eve-pw", ""))
	folders, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, folders[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[1].Size != 0 || msgs[2].Size != int64(len(big))+16 {
		t.Fatalf("listing: %+v", msgs)
	}
	var got []string
	err = s.Fetch(ctx, folders[0], msgs, func(b *mail.Body) error {
		data, _ := io.ReadAll(b)
		got = append(got, fmt.Sprint(len(data)))
		return nil
	})
	var me *mail.MessageError
	if !errors.As(err, &me) || me.Message.Key != msgs[1].Key || fault.Classify(err) != fault.Message {
		t.Fatalf("item without MIME: %v", err)
	}
	var bigBody []byte
	if err := s.Fetch(ctx, folders[0], msgs[2:], func(b *mail.Body) error {
		data, err := io.ReadAll(b)
		got = append(got, fmt.Sprint(len(data)))
		bigBody = data
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"19", fmt.Sprint(len(big) + 16)}; !slices.Equal(got, want) {
		t.Fatalf("bodies %v, want %v", got, want)
	}
	if !bytes.Equal(bigBody, append([]byte("Subject: big\r\n\r\n"), big...)) {
		t.Fatal("the large message (streamed) differs")
	}

	// Its MIME changes after the listing: the fetch fails to be tried again,
	// not with a body of another length than the APPEND announced.
	srv.Update("eve@contoso.com", msgs[2].Key, func(m *ewstest.Message) { m.MIME = append(m.MIME, "more\r\n"...) })
	err = s.Fetch(ctx, folders[0], msgs[2:], func(b *mail.Body) error {
		_, err := io.ReadAll(b)
		return err
	})
	if fault.Classify(err) != fault.Retry || !strings.Contains(err.Error(), "MIME is") {
		t.Fatalf("changed MIME: %v", err)
	}
}

// TestAutodiscover: a server that serves EWS elsewhere than
// /EWS/Exchange.asmx is found through POX Autodiscover, asked about the
// mailbox's address.
func TestAutodiscover(t *testing.T) {
	srv := ewstest.New(t)
	srv.EWSPath = "/exchange/ews/services.asmx"
	srv.AddAccount(&ewstest.Account{Name: "jan", UPN: "jan@contoso.com", Password: "Jan-pw", Mailbox: "jan@contoso.com"})
	mb := Seed(srv, "jan@contoso.com", 12, 9, 0)

	s := open(t, srv.Endpoint("jan@contoso.com", "Jan-pw", ""))
	if n := readAll(t, s, mb.Want); n != 12 {
		t.Fatalf("read %d of 12", n)
	}
	if st := srv.Stats(); st.Requests["Autodiscover"] != 1 {
		t.Fatalf("Autodiscover asked %d times", st.Requests["Autodiscover"])
	}
	_, err := ews.Open(context.Background(), srv.Endpoint(`CONTOSO\jan`, "Jan-pw", ""))
	if fault.Classify(err) != fault.Account || !strings.Contains(err.Error(), "Autodiscover did not say where it is (no address to ask Autodiscover about") {
		t.Fatalf("no address to ask about: %v", err)
	}
}
