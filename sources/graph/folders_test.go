package graph_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources/graph"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
	"github.com/banjia-mail/banjia/state"
)

// TestSystemFoldersAndVerbs: Outbox, Scheduled and Sync Issues (with its
// Conflicts, Local Failures and Server Failures) are marked as system
// folders, which a job leaves behind unless it keeps them; a message's
// last verb executed becomes \Answered (reply, reply to all) or $Forwarded.
func TestSystemFoldersAndVerbs(t *testing.T) {
	srv := graphtest.New(t)
	day := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	msg := func(subject string, verb int) *graphtest.Message {
		day = day.Add(time.Hour)
		return &graphtest.Message{MIME: []byte("Subject: " + subject + "\r\n\r\nx\r\n"), Received: day, Verb: verb, Read: true}
	}
	srv.AddMailbox(&graphtest.Mailbox{Mail: "sys@contoso.com", Folders: []*graphtest.Folder{
		{Name: "Inbox", WellKnown: "inbox", Messages: []*graphtest.Message{msg("replied", 102), msg("replied all", 103), msg("forwarded", 104), msg("plain", 0)}},
		{Name: "Outbox", WellKnown: "outbox", Messages: []*graphtest.Message{msg("unsent", 0)}},
		{Name: "Sync Issues", WellKnown: "syncissues", Children: []*graphtest.Folder{
			{Name: "Conflicts", WellKnown: "conflicts", Messages: []*graphtest.Message{msg("conflict", 0)}},
			{Name: "Local Failures", WellKnown: "localfailures"},
			{Name: "Server Failures", WellKnown: "serverfailures"},
		}},
		{Name: "Projects", Messages: []*graphtest.Message{msg("project", 0)}},
	}})
	ctx := context.Background()
	st := open(t, srv.Endpoint("sys@contoso.com"))
	fs, err := st.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got, system []string
	for _, f := range fs {
		got = append(got, f.Name)
		if f.System != "" {
			system = append(system, f.Name)
		}
	}
	want := []string{"INBOX", "Outbox", "Projects", "Sync Issues", "Sync Issues/Conflicts", "Sync Issues/Local Failures", "Sync Issues/Server Failures"}
	if !slices.Equal(got, want) {
		t.Fatalf("folders %q, want %q", got, want)
	}
	if want := want[slices.Index(want, "Outbox"):]; !slices.Equal(system, slices.DeleteFunc(slices.Clone(want), func(n string) bool { return n == "Projects" })) {
		t.Fatalf("system folders %q: want Outbox and Sync Issues with everything below it", system)
	}

	_, _, msgs := inboxOf(t, srv.Endpoint("sys@contoso.com"))
	wantFlags := [][]string{{`\Seen`, `\Answered`}, {`\Seen`, `\Answered`}, {`\Seen`, "$Forwarded"}, {`\Seen`}}
	if len(msgs) != len(wantFlags) {
		t.Fatalf("%d listed", len(msgs))
	}
	for i, m := range msgs {
		if !sameFlags(m.Flags, wantFlags[i]) {
			t.Errorf("message %d: flags %v, want %v", i, m.Flags, wantFlags[i])
		}
	}
}

// TestNoDeltaCloud: a cloud without message delta (21Vianet's) answers it
// 400; the source lists every folder in full, and asks for delta once per
// tenant, not once per folder and mailbox.
func TestNoDeltaCloud(t *testing.T) {
	srv := graphtest.New(t)
	srv.NoDelta = true
	// The refusal is kept per host and port for the process: the next
	// emulator on this port must not inherit it.
	t.Cleanup(graph.ForgetDeltaRefusals)
	a := seed(srv, "cn1@contoso.com", 50, 41, 0)
	b := seed(srv, "cn2@contoso.com", 30, 42, 0)
	if n := readAll(t, srv.Endpoint("cn1@contoso.com"), a.want, 1); n != 50 {
		t.Fatalf("%d of 50", n)
	}
	if n := readAll(t, srv.Endpoint("cn2@contoso.com"), b.want, 1); n != 30 {
		t.Fatalf("%d of 30", n)
	}
	if n := readAll(t, srv.Endpoint("cn1@contoso.com"), a.want, 1); n != 50 {
		t.Fatalf("re-listing: %d of 50", n)
	}
	st := srv.Stats()
	// Folders the tree shows empty are not listed.
	full := func(mb *mailbox) int {
		n := 0
		for _, msgs := range mb.want {
			if len(msgs) > 0 {
				n++
			}
		}
		return n
	}
	if st.Requests["delta-initial"] != 1 || st.Requests["messages"] < 2*full(a)+full(b) {
		t.Fatalf("requests %v: want one delta refusal, then ordered listings", st.Requests)
	}
}

// TestOnlineArchiveReported: a mailbox with an online archive, which
// Graph's mail API cannot read, does not end 搬家成功: its primary mailbox
// is copied, and the account finishes with one failure whose reason says
// the archive was not copied.
func TestOnlineArchiveReported(t *testing.T) {
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox"})
	srv := graphtest.New(t)
	arch := seed(srv, "arch@contoso.com", 30, 51, 0)
	arch.box.Archive = true
	seed(srv, "plain@contoso.com", 20, 52, 0)

	s := open(t, srv.Endpoint("arch@contoso.com"))
	fs, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var af *mail.Folder
	for i := range fs {
		if fs[i].Name == graph.ArchiveFolder {
			af = &fs[i]
		}
	}
	if af == nil {
		t.Fatal("online archive not reported among the folders")
	}
	msgs, err := s.Messages(context.Background(), *af)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("archive entry: %v %v", msgs, err)
	}
	err = s.Fetch(context.Background(), *af, msgs, func(*mail.Body) error { return nil })
	if fault.Classify(err) != fault.Message || !strings.Contains(err.Error(), "the online archive of arch@contoso.com is not copied") {
		t.Fatalf("archive fetch: %v", err)
	}

	got := runJob(t, srv, dst, []string{"arch", "plain"}, migrate.Config{Accounts: 2, Lanes: 2, RetryBase: 20 * time.Millisecond})
	a, p := got["arch@contoso.com"], got["plain@contoso.com"]
	if a.State == state.AccountSucceeded || a.Counts.Imported != 30 || a.Counts.Failed != 1 {
		t.Fatalf("account with an archive: %s %q %+v", a.State, a.Reason, a.Counts)
	}
	if p.State != state.AccountSucceeded || p.Counts.Imported != 20 {
		t.Fatalf("account without one: %s %q %+v", p.State, p.Reason, p.Counts)
	}
	t.Logf("account with an archive: %s, %q", a.State, a.Reason)
}
