// Package imapsource is the IMAP source: it reads a mailbox over IMAP without
// ever changing it (EXAMINE, BODY.PEEK). It logs in through mail/imapconn,
// as the IMAP sink does.
package imapsource

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/mail/imapconn"
	"github.com/banjia-mail/banjia/sources"
)

func init() {
	sources.Register(func(ctx context.Context, e mail.Endpoint) (sources.Source, error) {
		return Open(ctx, e)
	}, "imap", "imaps", "imap+plain")
}

// Source is a read-only IMAP session.
type Source struct {
	conn     *imapconn.Conn
	selected string
	validity uint32
	// ahead is a body FETCH already sent by Prefetch.
	ahead *prefetched
}

// prefetched is an EXAMINE (if needed) and a UID FETCH sent ahead of Fetch.
type prefetched struct {
	folder string
	uids   string
	sel    *imapclient.SelectCommand
	cmd    *imapclient.FetchCommand
}

var _ sources.Prefetcher = (*Source)(nil)

func bodyFetch(msgs []mail.Message) (imap.UIDSet, *imap.FetchOptions) {
	var set imap.UIDSet
	for _, m := range msgs {
		set.AddNum(imap.UID(m.UID))
	}
	return set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
}

// Prefetch sends EXAMINE (if needed) and the UID FETCH for msgs now; the
// Fetch that follows for the same messages reads the answer.
func (s *Source) Prefetch(ctx context.Context, f mail.Folder, msgs []mail.Message) {
	s.dropAhead()
	if len(msgs) == 0 || ctx.Err() != nil {
		return
	}
	set, opts := bodyFetch(msgs)
	sel := s.startExamine(f)
	s.ahead = &prefetched{folder: f.Name, uids: set.String(), sel: sel, cmd: s.conn.Fetch(set, opts)}
}

// dropAhead discards a prefetched FETCH that will not be read: its
// answer is read to the end (it is a batch the lane no longer wants, which
// only happens on retries), so the session stays usable.
func (s *Source) dropAhead() {
	if s.ahead == nil {
		return
	}
	a := s.ahead
	s.ahead = nil
	if a.sel != nil {
		a.sel.Wait()
	}
	a.cmd.Close()
	// Whether the EXAMINE worked is not known any more: select again.
	s.selected = ""
}

var _ sources.Source = (*Source)(nil)

// Open logs in to e.
func Open(ctx context.Context, e mail.Endpoint) (*Source, error) {
	c, err := imapconn.Dial(ctx, e, nil)
	if err != nil {
		return nil, err
	}
	return &Source{conn: c}, nil
}

// Conn is the underlying session.
func (s *Source) Conn() *imapconn.Conn { return s.conn }

// Folders lists every selectable folder with its UIDVALIDITY, Exchange's
// system folders marked (system.go).
func (s *Source) Folders(ctx context.Context) ([]mail.Folder, error) {
	s.dropAhead()
	folders, err := imapconn.ListFolders(ctx, s.conn)
	if err != nil {
		return nil, err
	}
	markSystem(folders, s.conn.Endpoint.Host)
	return folders, nil
}

// examine selects a folder read-only, so nothing we do can change it.
func (s *Source) examine(ctx context.Context, f mail.Folder) error {
	s.dropAhead()
	var err error
	doErr := s.conn.Do(ctx, func() error {
		err = s.endExamine(f, s.startExamine(f))
		return nil
	})
	if doErr != nil {
		s.selected = ""
		return imapconn.CommandError(fmt.Sprintf("examine %q", f.Name), doErr)
	}
	return err
}

// startExamine sends EXAMINE unless f is selected already. A command sent
// before endExamine travels behind it: one round trip for both.
func (s *Source) startExamine(f mail.Folder) *imapclient.SelectCommand {
	if s.selected == f.Name {
		return nil
	}
	s.selected = ""
	return s.conn.Select(f.Name, &imap.SelectOptions{ReadOnly: true})
}

// endExamine waits for startExamine's EXAMINE and checks UIDVALIDITY.
func (s *Source) endExamine(f mail.Folder, cmd *imapclient.SelectCommand) error {
	if cmd == nil {
		return nil
	}
	data, err := cmd.Wait()
	if err != nil {
		return imapconn.CommandError(fmt.Sprintf("examine %q", f.Name), err)
	}
	s.selected, s.validity = f.Name, data.UIDValidity
	if f.Validity != 0 && uint64(data.UIDValidity) != f.Validity {
		return fault.New(fault.Retry, fmt.Sprintf("folder %q", f.Name), mail.ErrValidityChanged)
	}
	return nil
}

// Messages lists UID, flags, INTERNALDATE and size of every message.
func (s *Source) Messages(ctx context.Context, f mail.Folder) ([]mail.Message, error) {
	var out []mail.Message
	var examErr error
	err := s.conn.Do(ctx, func() error {
		s.dropAhead()
		sel := s.startExamine(f)
		cmd := s.conn.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		})
		if examErr = s.endExamine(f, sel); examErr != nil {
			cmd.Close()
			return nil
		}
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			buf, err := msg.Collect()
			if err != nil {
				cmd.Close()
				return err
			}
			if buf.UID == 0 {
				continue
			}
			out = append(out, mail.Message{
				UID: uint32(buf.UID), Size: buf.RFC822Size, Flags: flagStrings(buf.Flags), Date: buf.InternalDate,
			})
		}
		return cmd.Close()
	})
	if examErr != nil {
		return nil, examErr
	}
	if err != nil {
		return nil, imapconn.CommandError(fmt.Sprintf("list messages of %q", f.Name), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

func flagStrings(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, string(f))
	}
	return out
}

// Identities reads every message's Message-ID (BODY.PEEK of that one
// header) so a message filed under several Gmail labels is copied once.
func (s *Source) Identities(ctx context.Context, f mail.Folder, msgs []mail.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := s.examine(ctx, f); err != nil {
		return err
	}
	ids := map[uint32]string{}
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	err := s.conn.Do(ctx, func() error {
		bufs, err := s.conn.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		for _, b := range bufs {
			for _, sec := range b.BodySection {
				if id := headerValue(sec.Bytes, "message-id"); id != "" {
					ids[uint32(b.UID)] = id
				}
			}
		}
		return err
	})
	if err != nil {
		return imapconn.CommandError(fmt.Sprintf("read Message-IDs of %q", f.Name), err)
	}
	for i := range msgs {
		if id := ids[msgs[i].UID]; id != "" {
			msgs[i].ID = fmt.Sprintf("%s/%d", id, msgs[i].Size)
		}
	}
	return nil
}

var _ sources.Identifier = (*Source)(nil)

// headerValue finds one header in a header block, unfolded.
func headerValue(block []byte, name string) string {
	lines := strings.Split(strings.ReplaceAll(string(block), "\r\n", "\n"), "\n")
	for i, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		for j := i + 1; j < len(lines) && (strings.HasPrefix(lines[j], " ") || strings.HasPrefix(lines[j], "\t")); j++ {
			v += lines[j]
		}
		return strings.TrimSpace(v)
	}
	return ""
}

// Fetch streams bodies with BODY.PEEK[] so the source's \Seen flags stay as they are.
func (s *Source) Fetch(ctx context.Context, f mail.Folder, msgs []mail.Message, fn func(*mail.Body) error) error {
	if len(msgs) == 0 {
		return nil
	}
	byUID := make(map[uint32]mail.Message, len(msgs))
	for _, m := range msgs {
		byUID[m.UID] = m
	}
	set, opts := bodyFetch(msgs)
	order := make([]uint32, 0, len(msgs))
	for _, m := range msgs {
		order = append(order, m.UID)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	seen := make(map[uint32]bool, len(msgs))
	var fnErr, examErr error
	var lit *trackedLiteral
	err := s.conn.Do(ctx, func() error {
		// EXAMINE and FETCH in one round trip, or none if Prefetch sent them.
		var sel *imapclient.SelectCommand
		var cmd *imapclient.FetchCommand
		if a := s.ahead; a != nil && a.folder == f.Name && a.uids == set.String() {
			sel, cmd, s.ahead = a.sel, a.cmd, nil
		} else {
			s.dropAhead()
			sel = s.startExamine(f)
			cmd = s.conn.Fetch(set, opts)
		}
		if examErr = s.endExamine(f, sel); examErr != nil {
			// The FETCH may be streaming another numbering's messages:
			// drop the connection rather than read them. Nothing of it was
			// read yet, so draining what is buffered cannot race with
			// go-imap's reader, and it unblocks that reader.
			s.conn.Abort()
			go cmd.Close()
			s.selected = ""
			return nil
		}
		for fnErr == nil {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			var uid uint32
			for {
				item := msg.Next()
				if item == nil {
					break
				}
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = uint32(it.UID)
				case imapclient.FetchItemDataBodySection:
					if it.Literal == nil {
						continue
					}
					if uid == 0 {
						// The UID came after the body: servers answer in UID order,
						// so take the next unseen message of that exact size.
						uid = guessUID(order, seen, byUID, it.Literal.Size())
					}
					meta, ok := byUID[uid]
					if !ok || seen[uid] {
						continue
					}
					if meta.Size != it.Literal.Size() {
						// The listed size was approximate (some servers); the
						// literal is the truth and is what the sink must be told.
						meta.Size = it.Literal.Size()
					}
					seen[uid] = true
					lit = &trackedLiteral{r: it.Literal, size: it.Literal.Size()}
					if err := fn(&mail.Body{Message: meta, Reader: lit}); err != nil {
						fnErr = err
					}
				}
				if fnErr != nil {
					break
				}
			}
		}
		if fnErr != nil {
			// Draining the rest of a large FETCH would waste the transfer:
			// drop the connection and let the caller reconnect. go-imap's
			// reader waits for the current literal to end, so read it to its
			// (now immediate) end. If that read failed, go-imap's reader is
			// already past the buffered data and ends by itself; reading that
			// literal again (as cmd.Close does) would race with it. If it
			// ended cleanly, later responses may sit in the buffer and block
			// the reader until someone consumes them: cmd.Close does, and is
			// bounded now that the connection is closed.
			s.conn.Abort()
			if lit != nil && !lit.ended {
				io.Copy(io.Discard, lit)
			}
			if lit == nil || lit.complete() {
				go cmd.Close()
			}
			s.selected = ""
			return nil
		}
		return cmd.Close()
	})
	if examErr != nil {
		return examErr
	}
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return imapconn.CommandError(fmt.Sprintf("fetch from %q", f.Name), err)
	}
	return nil
}

// trackedLiteral remembers how a body's literal ended: go-imap's literal
// must not be read again after it failed. A connection closed by the peer
// ends a literal with io.EOF too, so only the byte count tells a whole one.
type trackedLiteral struct {
	r     io.Reader
	size  int64
	read  int64
	ended bool
	err   error
}

func (t *trackedLiteral) Read(b []byte) (int, error) {
	if t.ended {
		return 0, t.err
	}
	n, err := t.r.Read(b)
	t.read += int64(n)
	if err == io.EOF && t.read < t.size {
		// A connection closed mid-literal: a reader that stops at EOF (a
		// digest, say) must not take the part for the whole.
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		t.ended, t.err = true, err
	}
	return n, err
}

func (t *trackedLiteral) complete() bool { return t.ended && t.err == io.EOF && t.read == t.size }

func guessUID(order []uint32, seen map[uint32]bool, byUID map[uint32]mail.Message, size int64) uint32 {
	for _, u := range order {
		if !seen[u] {
			if byUID[u].Size == size {
				return u
			}
			return 0
		}
	}
	return 0
}

// Close logs out; nothing was selected read-write, so nothing is expunged.
// A prefetched FETCH is not read: the connection is dropped instead.
func (s *Source) Close() error {
	if a := s.ahead; a != nil {
		s.ahead = nil
		s.conn.Abort()
		// Unread, so draining it races with nothing; it frees go-imap's reader.
		go a.cmd.Close()
	}
	return s.conn.Logout()
}
