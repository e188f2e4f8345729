// Package imapsink is the IMAP sink: it creates folders on the new server and
// APPENDs messages with their flags and INTERNALDATE.
package imapsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/mail/imapconn"
	"github.com/banjia-mail/banjia/sinks"
)

// Sink is one session on the target mailbox.
type Sink struct {
	conn     *imapconn.Conn
	ns       sinks.Namespace
	selected string
	// examined says selected was opened read-only (EXAMINE), where
	// Courier refuses APPEND to it.
	examined bool
	// pipe is the pipelined APPEND path (pipeline.go); nil without LITERAL+.
	pipe *pipeline
}

var _ sinks.Sink = (*Sink)(nil)

// Open logs in to the target.
func Open(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
	var w *wire
	c, err := imapconn.DialWrapped(ctx, e, nil, func(nc net.Conn) net.Conn {
		w = newWire(nc, imapconn.IdleTimeout, maxInFlight)
		return w
	})
	if err != nil {
		return nil, err
	}
	s := &Sink{conn: c}
	if w != nil && c.Caps.Has(imap.CapLiteralPlus) {
		s.pipe = newPipeline(c, w)
		// Pipelined APPENDs the server has not read yet must die with us,
		// not be stored after a restart has looked for them.
		c.ResetOnClose()
	}
	ns, err := c.Namespaces(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	s.ns = sinks.Namespace{Prefix: ns.Prefix, Delim: ns.Delim}
	return s, nil
}

// Namespace is where the target mailbox's own folders live.
func (s *Sink) Namespace() sinks.Namespace { return s.ns }

// Folders lists the target's own folders with their status, in one LIST
// where the server has LIST-STATUS.
func (s *Sink) Folders(ctx context.Context) ([]mail.Folder, error) {
	if err := s.settlePipe(ctx); err != nil {
		return nil, err
	}
	return imapconn.ListFolders(ctx, s.conn)
}

// Subscribe subscribes a target folder.
func (s *Sink) Subscribe(ctx context.Context, name string) error {
	if err := s.settlePipe(ctx); err != nil {
		return err
	}
	err := s.conn.Do(ctx, func() error { return s.conn.Subscribe(name).Wait() })
	if err != nil {
		return imapconn.CommandError(fmt.Sprintf("subscribe target folder %q", name), err)
	}
	return nil
}

// Prepare creates name and its parents if missing, then selects it to learn
// UIDVALIDITY, UIDNEXT and which flags it keeps.
func (s *Sink) Prepare(ctx context.Context, name string) (sinks.Folder, error) {
	if err := s.settlePipe(ctx); err != nil {
		return sinks.Folder{}, err
	}
	// CREATE for the folder and each parent, then SELECT, all sent at once:
	// one round trip.
	var paths []string
	if !strings.EqualFold(name, "INBOX") {
		// Parents from the first level below the namespace's prefix: the
		// prefix itself ("INBOX." on Courier) is not a folder to create.
		rel := s.ns.Rel(name)
		prefix := name[:len(name)-len(rel)]
		parts := strings.Split(rel, string(s.ns.Delim))
		for i := 1; i <= len(parts); i++ {
			p := prefix + strings.Join(parts[:i], string(s.ns.Delim))
			if !strings.EqualFold(p, "INBOX") {
				paths = append(paths, p)
			}
		}
	}
	var data *imap.SelectData
	var createErr error
	err := s.conn.Do(ctx, func() (err error) {
		var creates []*imapclient.Command
		for _, p := range paths {
			creates = append(creates, s.conn.Create(p, nil))
		}
		sel := s.conn.Select(name, nil)
		for i, c := range creates {
			if err := createError(paths[i], c.Wait()); err != nil && createErr == nil {
				createErr = err
			}
		}
		data, err = sel.Wait()
		return err
	})
	if err != nil {
		s.selected = ""
		if createErr != nil {
			return sinks.Folder{}, createErr
		}
		return sinks.Folder{}, imapconn.CommandError(fmt.Sprintf("select target folder %q", name), err)
	}
	s.selected, s.examined = name, false
	f := sinks.Folder{Name: name, Validity: data.UIDValidity, UIDNext: uint32(data.UIDNext)}
	for _, fl := range data.PermanentFlags {
		if fl == imap.FlagWildcard {
			f.Keywords = true
			continue
		}
		f.Flags = append(f.Flags, string(fl))
	}
	return f, nil
}

// createError keeps a failed CREATE's error unless the folder exists.
func createError(name string, err error) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Code == imap.ResponseCodeAlreadyExists || strings.Contains(strings.ToLower(ie.Text), "exist")) {
		return nil
	}
	return imapconn.CommandError(fmt.Sprintf("create target folder %q", name), err)
}

// Append stores one message. The body is streamed straight from r as the
// APPEND literal, so it is never held in memory here.
func (s *Sink) Append(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time) (sinks.Appended, error) {
	if s.pipe != nil {
		var res sinks.Appended
		var resErr error
		err := s.Send(ctx, f, r, size, flags, date, func(a sinks.Appended, err error) error {
			res, resErr = a, err
			return nil
		})
		if err == nil {
			err = s.Flush(ctx)
		}
		if err == nil {
			err = resErr
		}
		return res, err
	}
	if s.examined && s.selected == f.Name {
		// Courier answers APPEND to the folder open read-only with "NO
		// Current box is selected READ-ONLY" (an in-doubt lookup looked
		// there just before): open it for writing again.
		err := s.conn.Do(ctx, func() error {
			_, err := s.conn.Select(f.Name, nil).Wait()
			return err
		})
		if err != nil {
			s.selected = ""
			return sinks.Appended{}, imapconn.CommandError(fmt.Sprintf("select target folder %q", f.Name), err)
		}
		s.examined = false
	}
	keep, dropped := sinks.KeepFlags(f, flags)
	opts := &imap.AppendOptions{Time: date}
	for _, fl := range keep {
		opts.Flags = append(opts.Flags, imap.Flag(fl))
	}
	var data *imap.AppendData
	var copyErr error
	err := s.conn.Do(ctx, func() error {
		cmd := s.conn.Append(f.Name, size, opts)
		n, err := io.CopyN(cmd, r, size)
		if err != nil {
			cmd.Close() // releases go-imap's encoder whatever happened
			var ie *imap.Error
			if n == 0 && errors.As(err, &ie) {
				// Refused before the literal (NO instead of "+"): the
				// session is fine and the reply says why.
				return err
			}
			// The literal is incomplete: the session cannot be used any more.
			copyErr = fmt.Errorf("after %d of %d bytes: %w", n, size, err)
			s.conn.Abort()
			return copyErr
		}
		if err := cmd.Close(); err != nil {
			return inDoubt(err)
		}
		data, err = cmd.Wait()
		return inDoubt(err)
	})
	if copyErr != nil {
		return sinks.Appended{}, fault.New(fault.Retry, "message transfer interrupted", copyErr)
	}
	if err != nil {
		return sinks.Appended{}, s.refused(f.Name, keep, err)
	}
	sort.Strings(dropped)
	return sinks.Appended{UID: uint32(data.UID), Validity: data.UIDValidity, Dropped: dropped}, nil
}

// inDoubt marks a lost connection after the literal went out: unlike a
// refusal, it leaves the message's fate on the target unknown.
func inDoubt(err error) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return err
	}
	return fault.New(fault.Retry, "connection lost while the target was storing a message", fmt.Errorf("%w: %v", sinks.ErrInDoubt, err))
}

func hasKeywords(flags []string) bool {
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) {
			return true
		}
	}
	return false
}

func (s *Sink) examine(ctx context.Context, name string) error {
	if err := s.settlePipe(ctx); err != nil {
		return err
	}
	err := s.conn.Do(ctx, func() error {
		_, err := s.conn.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	if err != nil {
		s.selected = ""
		return imapconn.CommandError(fmt.Sprintf("examine target folder %q", name), err)
	}
	s.selected, s.examined = name, true
	return nil
}

// Messages lists the target folder's messages with UID >= from.
func (s *Sink) Messages(ctx context.Context, name string, from uint32) ([]sinks.Message, error) {
	if from == 0 {
		from = 1
	}
	if err := s.examine(ctx, name); err != nil {
		return nil, err
	}
	var out []sinks.Message
	err := s.conn.Do(ctx, func() error {
		bufs, err := s.conn.Fetch(imap.UIDSet{imap.UIDRange{Start: imap.UID(from), Stop: 0}},
			&imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true, Flags: true}).Collect()
		for _, b := range bufs {
			// "n:*" also returns the last message when n is past it.
			if uint32(b.UID) >= from {
				m := sinks.Message{UID: uint32(b.UID), Size: b.RFC822Size, Date: b.InternalDate}
				for _, f := range b.Flags {
					if !strings.EqualFold(string(f), `\Recent`) {
						m.Flags = append(m.Flags, string(f))
					}
				}
				out = append(out, m)
			}
		}
		return err
	})
	if err != nil {
		return nil, imapconn.CommandError(fmt.Sprintf("list target folder %q", name), err)
	}
	return out, nil
}

// Fetch streams the bodies of target messages (for the in-doubt check).
func (s *Sink) Fetch(ctx context.Context, name string, uids []uint32, fn func(uid uint32, r io.Reader) error) error {
	if len(uids) == 0 {
		return nil
	}
	if err := s.examine(ctx, name); err != nil {
		return err
	}
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	var fnErr error
	err := s.conn.Do(ctx, func() error {
		cmd := s.conn.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			var uid uint32
			var body []byte
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
					b, rerr := io.ReadAll(it.Literal)
					if rerr == nil && int64(len(b)) != it.Literal.Size() {
						rerr = fmt.Errorf("message body ended after %d of %d bytes: %w", len(b), it.Literal.Size(), io.ErrUnexpectedEOF)
					}
					if rerr != nil {
						// Drop the connection and never touch this literal
						// again (go-imap's Collect and Close would read it a
						// second time, racing go-imap's own reader).
						s.conn.Abort()
						s.selected = ""
						return rerr
					}
					body = b
				}
			}
			if body != nil && fnErr == nil {
				fnErr = fn(uid, bytes.NewReader(body))
			}
		}
		return cmd.Close()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return imapconn.CommandError(fmt.Sprintf("fetch from target folder %q", name), err)
	}
	return nil
}

// Close logs out, after the answers still owed (their done runs). The sink
// never uses CLOSE, which would expunge.
func (s *Sink) Close() error {
	s.settlePipe(context.Background())
	return s.conn.Logout()
}

// SetFlags replaces the flags of one target message (UID STORE FLAGS); the
// caller passes only flags the folder keeps.
func (s *Sink) SetFlags(ctx context.Context, name string, uid uint32, flags []string) error {
	if err := s.settlePipe(ctx); err != nil {
		return err
	}
	var fl []imap.Flag
	for _, f := range flags {
		if validFlag(f) {
			fl = append(fl, imap.Flag(f))
		}
	}
	err := s.conn.Do(ctx, func() error {
		if _, err := s.conn.Select(name, nil).Wait(); err != nil {
			return err
		}
		return s.conn.Store(imap.UIDSetNum(imap.UID(uid)), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: fl}, nil).Close()
	})
	s.selected = ""
	if err != nil {
		return imapconn.CommandError(fmt.Sprintf("set the flags of a message in %q", name), err)
	}
	return nil
}

// Expunge removes exactly the given UIDs (UID EXPUNGE, RFC 4315); without
// UIDPLUS a plain EXPUNGE could remove other messages marked deleted, so it
// is refused.
func (s *Sink) Expunge(ctx context.Context, name string, uids []uint32) error {
	if !s.conn.Caps.Has(imap.CapUIDPlus) {
		return fmt.Errorf("the target does not offer UIDPLUS, so %d message(s) cannot be removed alone", len(uids))
	}
	if err := s.settlePipe(ctx); err != nil {
		return err
	}
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	err := s.conn.Do(ctx, func() error {
		if _, err := s.conn.Select(name, nil).Wait(); err != nil {
			return err
		}
		if err := s.conn.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		return s.conn.UIDExpunge(set).Close()
	})
	s.selected = ""
	if err != nil {
		return imapconn.CommandError(fmt.Sprintf("remove duplicates from %q", name), err)
	}
	return nil
}
