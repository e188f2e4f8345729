package imapsink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/mail/imapconn"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/wording"
)

// Pipelined APPEND. go-imap sends every literal over 4 KiB as a
// synchronising one, waiting for the server's "+" even when the server
// offers LITERAL+, and a caller that waits for each tagged answer adds a
// second round trip: over a real network a connection then moves one
// message per round trip or two. With LITERAL+ the sink writes APPEND
// itself, with non-synchronising literals ({n+}), and keeps up to a window
// of commands in flight; the answers come back through the wire and are
// matched by tag. go-imap still does everything else on the session.

// The window: enough to cover a long round trip at full speed, small enough
// that a lost connection leaves few messages in doubt.
const (
	maxInFlight      = 64
	maxInFlightBytes = 4 << 20
)

// dateTimeLayout is IMAP's date-time, as go-imap writes it.
const dateTimeLayout = "_2-Jan-2006 15:04:05 -0700"

var _ sinks.Pipeliner = (*Sink)(nil)

type pipeline struct {
	conn  *imapconn.Conn
	w     *wire
	tw    *targetWriter
	bw    *bufio.Writer
	seq   uint64
	q     []*inflight // sent, not answered, in the order sent
	bytes int64       // their sizes
	// broken is why the connection cannot carry more commands.
	broken error
}

type inflight struct {
	tag     string
	folder  string
	keep    []string
	dropped []string
	size    int64
	done    func(sinks.Appended, error) error
}

func newPipeline(c *imapconn.Conn, w *wire) *pipeline {
	tw := &targetWriter{c: w.Conn, idle: w.idle}
	return &pipeline{conn: c, w: w, tw: tw, bw: bufio.NewWriterSize(tw, 64<<10)}
}

// targetWriter writes our commands under go-imap's wire, keeping the
// connection's deadlines moving while bytes do, and remembers a failure so
// Send can tell the target's errors from the source's.
type targetWriter struct {
	c    net.Conn
	idle time.Duration
	last time.Time
	err  error
}

func (t *targetWriter) Write(b []byte) (int, error) {
	if now := time.Now(); now.Sub(t.last) > time.Second {
		// Also the read deadline: while a large literal goes out the
		// server says nothing, and go-imap's reader must not give up.
		t.c.SetWriteDeadline(now.Add(t.idle))
		t.c.SetReadDeadline(now.Add(t.idle))
		t.last = now
	}
	n, err := t.c.Write(b)
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

// Send writes one APPEND with a non-synchronising literal and returns once
// the message is sent; its answer reaches done later (see sinks.Pipeliner).
// Without LITERAL+ it is a plain Append.
func (s *Sink) Send(ctx context.Context, f sinks.Folder, r io.Reader, size int64, flags []string, date time.Time,
	done func(sinks.Appended, error) error) error {
	p := s.pipe
	if p == nil {
		res, err := s.Append(ctx, f, r, size, flags, date)
		return done(res, err)
	}
	if err := s.collect(ctx, func() bool { return false }); err != nil {
		return err
	}
	full := func() bool { return len(p.q) >= maxInFlight || (len(p.q) > 0 && p.bytes+size > maxInFlightBytes) }
	if full() {
		// Nothing is left in our buffer (every Send flushes), so the
		// server has all it needs to answer.
		if err := s.collect(ctx, full); err != nil {
			return err
		}
	}
	if p.broken != nil {
		return fault.Coded(fault.Retry, wording.New("target.lost"), p.broken)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	keep, dropped := sinks.KeepFlags(f, flags)
	var valid []string
	for _, fl := range keep {
		if validFlag(fl) {
			valid = append(valid, fl)
		} else {
			// go-imap would refuse to encode it (and close the session).
			dropped = append(dropped, fl)
		}
	}
	mbox := mailboxArg(f.Name)
	p.seq++
	tag := tagPrefix + strconv.FormatUint(p.seq, 10)
	var cmd strings.Builder
	cmd.WriteString(tag + " APPEND " + mbox + " (" + strings.Join(valid, " ") + ")")
	if !date.IsZero() {
		cmd.WriteString(` "` + date.Format(dateTimeLayout) + `"`)
	}
	cmd.WriteString(" {" + strconv.FormatInt(size, 10) + "+}\r\n")

	stop := context.AfterFunc(ctx, p.conn.Abort)
	p.bw.WriteString(cmd.String())
	n, err := io.CopyN(p.bw, r, size)
	if err == nil {
		p.bw.WriteString("\r\n")
		err = p.bw.Flush()
	}
	stop()
	if err == nil && ctx.Err() == nil {
		p.q = append(p.q, &inflight{tag: tag, folder: f.Name, keep: valid, dropped: dropped, size: size, done: done})
		p.bytes += size
		return nil
	}
	transfer := fault.New(fault.Retry, "message transfer interrupted", fmt.Errorf("after %d of %d bytes: %w", n, size, err))
	if p.tw.err != nil || ctx.Err() != nil {
		// The target connection failed (or was cut) while this message
		// was going out: it cannot be stored; the ones before it may be.
		p.conn.Abort()
		p.broken = err
		if ctx.Err() != nil {
			p.broken = ctx.Err()
			return ctx.Err()
		}
		return transfer
	}
	// The source failed in the middle of the message. The server answers
	// the commands before this one without needing the rest of it: take
	// those answers, then drop the connection, which discards the partial
	// literal.
	ferr := s.collect(ctx, func() bool { return len(p.q) > 0 })
	p.conn.Abort()
	p.broken = err
	if ferr != nil && !errors.Is(ferr, sinks.ErrInDoubt) {
		return ferr
	}
	return transfer
}

// Flush waits for every answer owed and runs its done.
func (s *Sink) Flush(ctx context.Context) error {
	if s.pipe == nil {
		return nil
	}
	return s.collect(ctx, func() bool { return len(s.pipe.q) > 0 })
}

// collect runs done for every answer that has arrived, and keeps waiting
// for more while wait says so. If the connection fails first, whatever is
// still in flight is reported in doubt. It returns the first error of the
// dones, after running them all.
func (s *Sink) collect(ctx context.Context, wait func() bool) error {
	p := s.pipe
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for len(p.q) > 0 {
		select {
		case rep := <-p.w.replies:
			keep(s.answer(rep))
			continue
		default:
		}
		if !wait() {
			break
		}
		select {
		case rep := <-p.w.replies:
			keep(s.answer(rep))
		case <-p.w.dead:
			// Answers that came before the failure still count.
			for drained := false; !drained; {
				select {
				case rep := <-p.w.replies:
					keep(s.answer(rep))
				default:
					drained = true
				}
			}
			keep(s.lost(p.w.err))
		case <-ctx.Done():
			p.conn.Abort()
			keep(s.lost(ctx.Err()))
			if first == nil {
				first = ctx.Err()
			}
		}
	}
	return first
}

// answer matches a reply to its command and runs its done.
func (s *Sink) answer(rep reply) error {
	p := s.pipe
	i := 0
	for i < len(p.q) && p.q[i].tag != rep.tag {
		i++
	}
	if i == len(p.q) {
		return nil // not ours to wait for any more
	}
	it := p.q[i]
	p.q = append(p.q[:i], p.q[i+1:]...)
	p.bytes -= it.size
	if rep.status != "OK" {
		return it.done(sinks.Appended{}, s.refused(it.folder, it.keep, rep.imapError()))
	}
	validity, uid := rep.appendUID()
	sort.Strings(it.dropped)
	return it.done(sinks.Appended{UID: uid, Validity: validity, Dropped: it.dropped}, nil)
}

// lost reports everything in flight as in doubt: each was sent in full,
// and its answer will not come.
func (s *Sink) lost(cause error) error {
	p := s.pipe
	if cause == nil {
		cause = io.ErrUnexpectedEOF
	}
	if p.broken == nil {
		p.broken = cause
	}
	var first error
	q := p.q
	p.q, p.bytes = nil, 0
	for _, it := range q {
		// Sent in full, answer lost: sinks.ErrInDoubt, so the engine looks
		// for it on the target before sending it again.
		if err := it.done(sinks.Appended{}, inDoubt(cause)); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// refused classifies a tagged NO or BAD to an APPEND.
func (s *Sink) refused(folder string, keep []string, err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		text := strings.ToLower(ie.Text)
		if ie.Code == imap.ResponseCodeTryCreate {
			return fault.Coded(fault.Retry, wording.New("target.folder.gone", "folder", folder), err)
		}
		if hasKeywords(keep) && (strings.Contains(text, "keyword") || strings.Contains(text, "flag")) {
			// Not the message's fault: the engine sends it again without
			// its keywords.
			return fault.New(fault.Retry, "the target refused the message's keywords", fmt.Errorf("%w (the server said: %s)", sinks.ErrKeywordsRefused, ie.Text))
		}
	}
	return imapconn.CommandError(fmt.Sprintf("append to %q", folder), err)
}

// settlePipe waits for the answers owed before go-imap is used again: its
// replies would otherwise interleave with the untagged data of ours.
func (s *Sink) settlePipe(ctx context.Context) error {
	if s.pipe == nil || len(s.pipe.q) == 0 {
		return nil
	}
	return s.Flush(ctx)
}
