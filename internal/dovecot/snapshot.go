package dovecot

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
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
	c, err := dialIMAP(addr)
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
