// Package filltest checks, for the test servers that fill their folders
// through imapfill (Cyrus, Courier), that what Deliver and CreateFolder put
// in reads back exactly through dovecot.Snapshot; and holds the IMAP client
// helpers those servers' tests share.
package filltest

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/internal/dovecot"
)

// Message is test message i: small, with its own Message-ID and subject.
func Message(i int, date time.Time, flags ...string) dovecot.Message {
	body := fmt.Sprintf("From: a@x.test\r\nTo: b@y.test\r\nSubject: test %d\r\nDate: %s\r\nMessage-ID: <%d@x.test>\r\n\r\nbody %d\r\nsecond line\r\n",
		i, date.Format(time.RFC1123Z), i, i)
	return dovecot.Message{Body: []byte(body), Flags: flags, Date: date}
}

// Dial connects to addr, waits for the greeting and closes the connection
// when the test ends.
func Dial(t testing.TB, addr string) *imapclient.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Login is Dial, then LOGIN as user.
func Login(t testing.TB, addr, user, pw string) *imapclient.Client {
	t.Helper()
	c := Dial(t, addr)
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// Server is what RoundTrip fills and reads back.
type Server interface {
	Deliver(user, folder string, msgs []dovecot.Message) error
	CreateFolder(user, folder string) error
	MailboxName(folder string) (string, []string, error)
	Log() string
}

// User is a login the server has.
type User struct{ Name, Password string }

// RoundTrip delivers to alice's INBOX (twice, so the second delivery must
// land after the first), to nested and Chinese folders, creates an empty
// folder (twice), and delivers to bob's INBOX; then Snapshot over addr must
// read back exactly that: every folder under its MailboxName, parents
// Deliver made included, the hierarchy separator wantDelim, and nothing of
// alice's in bob's mailbox. alice's INBOX ends with five messages.
func RoundTrip(t *testing.T, s Server, addr, wantDelim string, alice, bob User) {
	t.Helper()
	msg := Message
	d := time.Date(2017, 3, 4, 5, 6, 7, 0, time.FixedZone("", 8*3600))
	want := map[string][]dovecot.Message{
		"INBOX": {msg(1, d, `\Seen`, "work"), msg(2, d.Add(time.Hour)), msg(3, d.Add(-24*time.Hour), `\Flagged`, `\Seen`)},
		"Archive/2024": {msg(4, d.Add(48*time.Hour), `\Answered`, `\Flagged`, `\Draft`, `\Seen`, "$Forwarded"),
			msg(5, d.AddDate(-1, 0, 0), "$Label1", `\Deleted`)},
		"客户/北京": {msg(6, d.Add(72*time.Hour), "$Forwarded", `\Seen`, "work")},
	}
	for _, f := range []string{"INBOX", "Archive/2024", "客户/北京"} {
		if err := s.Deliver(alice.Name, f, want[f]); err != nil {
			t.Fatal(err)
		}
	}
	// A second delivery to a folder lands after the first, in order.
	more := []dovecot.Message{msg(7, d.AddDate(2, 0, 0), `\Seen`), msg(8, d.AddDate(-3, 0, 0), "$Label1")}
	if err := s.Deliver(alice.Name, "INBOX", more); err != nil {
		t.Fatal(err)
	}
	want["INBOX"] = append(want["INBOX"], more...)
	if err := s.CreateFolder(alice.Name, "Empty"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFolder(alice.Name, "Empty"); err != nil {
		t.Fatalf("CreateFolder of an existing folder: %v", err)
	}
	want["Empty"] = nil
	want["Archive"] = nil // a parent Deliver made
	want["客户"] = nil
	bobWant := []dovecot.Message{msg(9, d, `\Seen`)}
	if err := s.Deliver(bob.Name, "INBOX", bobWant); err != nil {
		t.Fatal(err)
	}

	got, delim, err := dovecot.Snapshot(addr, alice.Name, alice.Password)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.Log())
	}
	if delim != wantDelim {
		t.Fatalf("LIST delimiter %q, want %q", delim, wantDelim)
	}
	var names []string
	for f := range want {
		name, _, err := s.MailboxName(f)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		dovecot.CompareFolder(t, f, got[name], want[f])
	}
	if g := slices.Sorted(maps.Keys(got)); !slices.Equal(g, slices.Sorted(slices.Values(names))) {
		t.Fatalf("folders %q, want %q", g, slices.Sorted(slices.Values(names)))
	}
	gotBob, _, err := dovecot.Snapshot(addr, bob.Name, bob.Password)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotBob) != 1 {
		t.Fatalf("bob's folders %q, want INBOX only", slices.Sorted(maps.Keys(gotBob)))
	}
	dovecot.CompareFolder(t, "bob INBOX", gotBob["INBOX"], bobWant)
}
