package dovecot

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/internal/imapfill"
)

// SnapMessage is one message as Snapshot reads it.
type SnapMessage struct {
	UID   uint32
	Body  []byte
	Flags []string // sorted, without \Recent
	Date  time.Time
}

// Snapshot logs in over plain IMAP and reads every selectable folder of the
// mailbox read-only (EXAMINE, BODY.PEEK[]), in UID order, for tests that
// compare a source and a target exactly. Folder names are UTF-8 with the
// server's delimiter, which is returned too.
func Snapshot(addr, user, password string) (map[string][]SnapMessage, string, error) {
	c, err := imapfill.Dial(addr)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return nil, "", fmt.Errorf("snapshot: login %s: %w", user, err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, "", fmt.Errorf("snapshot %s: list: %w", user, err)
	}
	out := map[string][]SnapMessage{}
	delim := ""
	for _, l := range list {
		if l.Delim != 0 {
			delim = string(l.Delim)
		}
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		data, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return nil, "", fmt.Errorf("snapshot %s: examine %q: %w", user, l.Mailbox, err)
		}
		var msgs []SnapMessage
		if data.NumMessages > 0 {
			bufs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
				UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
			}).Collect()
			if err != nil {
				return nil, "", fmt.Errorf("snapshot %s: fetch %q: %w", user, l.Mailbox, err)
			}
			for _, b := range bufs {
				m := SnapMessage{UID: uint32(b.UID), Date: b.InternalDate}
				for _, f := range b.Flags {
					if !strings.EqualFold(string(f), `\Recent`) {
						m.Flags = append(m.Flags, string(f))
					}
				}
				slices.Sort(m.Flags)
				for _, sec := range b.BodySection {
					m.Body = bytes.Clone(sec.Bytes)
				}
				msgs = append(msgs, m)
			}
			slices.SortFunc(msgs, func(a, b SnapMessage) int { return cmp.Compare(a.UID, b.UID) })
		}
		out[l.Mailbox] = msgs
	}
	if err := c.Logout().Wait(); err != nil {
		return nil, "", fmt.Errorf("snapshot %s: logout: %w", user, err)
	}
	return out, delim, nil
}

// CompareFolder fails t unless got, one folder as Snapshot read it, holds
// want exactly: the same bodies, INTERNALDATEs and flags, in delivery order.
func CompareFolder(t testing.TB, folder string, got []SnapMessage, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%q: %d messages, want %d", folder, len(got), len(want))
	}
	for i, m := range want {
		g := got[i]
		if string(g.Body) != string(m.Body) {
			t.Fatalf("%q message %d: body\n%q\nwant\n%q", folder, i, g.Body, m.Body)
		}
		if !g.Date.Equal(m.Date) {
			t.Fatalf("%q message %d: INTERNALDATE %v, want %v", folder, i, g.Date, m.Date)
		}
		wantFlags := slices.Sorted(slices.Values(m.Flags))
		if !slices.Equal(g.Flags, wantFlags) {
			t.Fatalf("%q message %d: flags %q, want %q", folder, i, g.Flags, wantFlags)
		}
		if i > 0 && g.UID <= got[i-1].UID {
			t.Fatalf("%q: UID %d after %d: not in delivery order", folder, g.UID, got[i-1].UID)
		}
	}
}
