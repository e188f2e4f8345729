package migrate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/fault"
	"github.com/banjia-mail/banjia/state"
)

// settle decides which pending source messages are already on the target.
//
// A crash or a lost connection between the target's OK to an APPEND and our
// record of it leaves messages on the target that the state does not list
// as done. They can only be target messages at or above the floor recorded
// before those APPENDs, and not known as copies of other messages. Each
// such candidate (in cands, a listing from the floor) whose INTERNALDATE or
// size matches a pending message is compared by a digest of its content,
// and pairs are matched one to one, so duplicate Message-IDs or messages
// without one are told apart correctly. The result maps each source UID
// found to the target UID it matched.
func (a *accountRun) settle(ctx context.Context, src sources.Source, dst sinks.Sink, f sources.Folder,
	tf sinks.Folder, cands []sinks.Message, known state.Ranges, pending []sources.Message) (map[uint32]uint32, error) {
	dates := map[int64]bool{}
	sizes := map[int64]bool{}
	for _, m := range pending {
		dates[m.Date.Unix()] = true
		sizes[m.Size] = true
	}
	var tUIDs []uint32
	tDates := map[int64]bool{}
	tSizes := map[int64]bool{}
	for _, c := range cands {
		if known.Contains(c.UID) {
			continue
		}
		if dates[c.Date.Unix()] || sizes[c.Size] {
			tUIDs = append(tUIDs, c.UID)
			tDates[c.Date.Unix()] = true
			tSizes[c.Size] = true
		}
	}
	if len(tUIDs) == 0 {
		return nil, nil
	}
	// Digest of target candidates: which copies of each content are there.
	have := map[string][]uint32{}
	err := dst.Fetch(ctx, tf.Name, tUIDs, func(uid uint32, r io.Reader) error {
		d, err := digest(r)
		if err != nil {
			return err
		}
		have[d] = append(have[d], uid)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var check []sources.Message
	for _, m := range pending {
		if tDates[m.Date.Unix()] || tSizes[m.Size] {
			check = append(check, m)
		}
	}
	found := map[uint32]uint32{}
	err = src.Fetch(ctx, f, check, func(b *sources.Body) error {
		d, err := digestN(b.Reader, b.Size)
		if err != nil {
			return err
		}
		if t := have[d]; len(t) > 0 {
			found[b.UID], have[d] = t[0], t[1:]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// digestN is digest of a source body that must be exactly size bytes long
// (sources report exact sizes): a connection closed by the peer can end a
// literal early with io.EOF, and the digest of a part would make a stored
// message look missing, so it would be sent twice.
func digestN(r io.Reader, size int64) (string, error) {
	cr := &countReader{r: r}
	d, err := digest(cr)
	if err == nil && size > 0 && cr.n != size {
		err = fmt.Errorf("message body ended after %d of %d bytes: %w", cr.n, size, io.ErrUnexpectedEOF)
	}
	return d, err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// digest hashes a message ignoring CR, since some servers store bare-LF
// messages with CRLF line ends (or the other way round).
func digest(r io.Reader) (string, error) {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 64<<10)
	buf := make([]byte, 0, 64<<10)
	chunk := make([]byte, 64<<10)
	for {
		n, err := br.Read(chunk)
		buf = buf[:0]
		for _, c := range chunk[:n] {
			if c != '\r' {
				buf = append(buf, c)
			}
		}
		h.Write(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// dropRecovered runs when the account is done, for a message whose earlier
// APPEND was in doubt, was not found on the target, and was sent again as
// newUID. The first copy may have appeared since: a server finishing an
// APPEND it had wholly read when the connection went, or recovering a
// half-saved file (Dovecot's sdbox rebuilds its index when the next save
// meets the orphaned file). So the folder is looked at once more from the
// floor the first copy was sent under: a message not known as the copy of
// another, alike in date and size and byte for byte equal to the new copy,
// is that first copy. It is removed, so the message is on the target once.
// It reports whether the check was made (false: try again later).
func (a *accountRun) dropRecovered(ctx context.Context, dst sinks.Sink, r resent) bool {
	ex, ok := dst.(sinks.Expunger)
	if !ok || r.uid == 0 {
		return true
	}
	b, m := r.b, r.m
	known := a.known(b.cp)
	cands, err := dst.Messages(ctx, b.target.Name, r.floor)
	if err != nil {
		a.r.cfg.Log.Warn("recheck after an in-doubt APPEND failed", "account", a.acct.ID, "folder", b.target.Name, "err", err)
		return false
	}
	var mine *sinks.Message
	for i := range cands {
		if cands[i].UID == r.uid {
			mine = &cands[i]
		}
	}
	if mine == nil {
		return true
	}
	uids := []uint32{r.uid}
	for _, c := range cands {
		if c.UID != r.uid && !known.Contains(c.UID) && c.Size == mine.Size && c.Date.Equal(mine.Date) {
			uids = append(uids, c.UID)
		}
	}
	if len(uids) == 1 {
		return true
	}
	digests := map[uint32]string{}
	err = dst.Fetch(ctx, b.target.Name, uids, func(uid uint32, r io.Reader) error {
		d, err := digest(r)
		digests[uid] = d
		return err
	})
	if err != nil {
		a.r.cfg.Log.Warn("recheck after an in-doubt APPEND failed", "account", a.acct.ID, "folder", b.target.Name, "err", err)
		return false
	}
	var extra []uint32
	for _, u := range uids[1:] {
		if d, ok := digests[u]; ok && d == digests[r.uid] {
			extra = append(extra, u)
		}
	}
	if len(extra) == 0 {
		return true
	}
	if err := ex.Expunge(ctx, b.target.Name, extra); err != nil {
		if fault.Classify(err) == fault.Retry {
			a.r.cfg.Log.Warn("recheck after an in-doubt APPEND failed", "account", a.acct.ID, "folder", b.target.Name, "err", err)
			return false
		}
		a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: the target kept an interrupted copy of message UID %d in %q after it was sent again, and it could not be removed: %s", a.acct.ID, m.UID, b.folder.Name, fault.Reason(err)))
		return true
	}
	a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: the target kept an interrupted copy of message UID %d in %q after it was sent again; the extra copy was removed", a.acct.ID, m.UID, b.folder.Name))
	return true
}

// resent is a message sent again after an APPEND in doubt.
type resent struct {
	b     *batch
	m     sources.Message
	uid   uint32 // the copy sent again
	floor uint32 // the folder's floor when the first copy was sent
}

// lateSweep runs dropRecovered for the messages sent again, from a new
// session (a fresh SELECT makes Dovecot finish any recovery before it
// lists the folder), when no APPEND of this account is in flight. A broken
// connection is retried like any other.
func (a *accountRun) lateSweep(ctx context.Context, stop <-chan struct{}) {
	a.mu.Lock()
	list := a.resent
	a.resent = nil
	a.mu.Unlock()
	if len(list) == 0 || a.r.cfg.OpenSink == nil {
		return
	}
	_, dstEP, err := a.endpoints()
	if err != nil {
		return
	}
	for attempt := 0; len(list) > 0 && attempt <= a.r.cfg.Retries; attempt++ {
		if attempt > 0 && !sleep(ctx, stop, backoff(a.r.cfg.RetryBase, attempt, 0)) {
			break
		}
		dst, err := a.r.cfg.OpenSink(ctx, dstEP)
		if err != nil {
			a.r.cfg.Log.Warn("late check after in-doubt APPENDs: cannot open the target", "account", a.acct.ID, "err", err)
			continue
		}
		for len(list) > 0 && a.dropRecovered(ctx, dst, list[0]) {
			list = list[1:]
			attempt = 0
		}
		dst.Close()
	}
	if len(list) > 0 {
		a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: %d message(s) were sent again after their first copy was in doubt, and the target could not be checked for that first copy; look for duplicates in %q", a.acct.ID, len(list), list[0].b.folder.Name))
	}
}
