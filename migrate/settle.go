package migrate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// Settling is the lookup half of the in-doubt protocol (see indoubt.go):
// it decides which suspects are on the target already, matching copies to
// messages one to one by their content.

// settleChunk is how many messages in doubt are looked up at once: a few,
// so that a link that keeps failing still makes progress.
const settleChunk = 4

// settleDoubts looks up on the target the messages that may be there
// already, a few at a time, and records those found as copied (with the
// target UID they matched, so later lookups do not match it again). It
// returns the ones not looked up yet and the ones found; those looked up
// and not found are for the caller to send again. The folder is listed
// once per call: the floor stays low while anything is in doubt, and a
// listing per chunk would grow with the folder.
func (a *accountRun) settleDoubts(ctx context.Context, src sources.Source, dst sinks.Sink, b *batch,
	doubt []mail.Message) ([]mail.Message, map[uint32]bool, error) {
	stored := map[uint32]bool{}
	var later []mail.Message
	ready := doubt[:0:0]
	for _, m := range doubt {
		if a.doubts.inFlight(b, m) {
			later = append(later, m)
		} else {
			ready = append(ready, m)
		}
	}
	doubt = ready
	floor := a.doubts.floor(b.cp)
	cands, err := dst.Messages(ctx, b.target.Name, floor)
	if err != nil {
		return append(doubt, later...), stored, err
	}
	at := make(map[uint32]sinks.Message, len(cands))
	for _, c := range cands {
		at[c.UID] = c
	}
	for len(doubt) > 0 {
		chunk := doubt[:min(len(doubt), settleChunk)]
		found, err := settle(ctx, src, dst, b.folder, b.target, cands, a.doubts.known(b.cp), chunk)
		if err != nil {
			return append(doubt, later...), stored, err
		}
		for i, m := range chunk {
			t := found[m.UID]
			if t != 0 {
				if err := a.restoreFlags(ctx, dst, b, m, at[t]); err != nil {
					// Still in doubt: looked up again, flags checked again.
					return append(doubt[i:], later...), stored, err
				}
			}
			if t != 0 && a.claim(b, m, t) {
				stored[m.UID] = true
				a.r.cfg.Log.Info("in-doubt message was stored", "account", a.acct.ID, "folder", b.folder.Name, "uid", m.UID, "target_uid", t)
				if alikeUnknown(cands, t, a.doubts.known(b.cp)) {
					// More copies of it than ours: a run that died may
					// have sent it twice before it could record either.
					a.doubts.sweepLater(b, m, t)
				}
			} else {
				a.doubts.notFound(b, m)
				a.r.cfg.Log.Info("in-doubt message not on the target; sending it again", "account", a.acct.ID, "folder", b.folder.Name, "uid", m.UID, "floor", floor)
			}
		}
		doubt = doubt[len(chunk):]
	}
	if len(later) > 0 {
		return later, stored, errTwinInFlight
	}
	return nil, stored, nil
}

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
func settle(ctx context.Context, src sources.Source, dst sinks.Sink, f mail.Folder,
	tf sinks.Folder, cands []sinks.Message, known state.Ranges, pending []mail.Message) (map[uint32]uint32, error) {
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
	var check []mail.Message
	for _, m := range pending {
		if tDates[m.Date.Unix()] || tSizes[m.Size] {
			check = append(check, m)
		}
	}
	found := map[uint32]uint32{}
	err = src.Fetch(ctx, f, check, func(b *mail.Body) error {
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

// restoreFlags gives a copy found stored after its APPEND was in doubt the
// source message's flags again when the target lost some of them. The
// target is the truth, and a session killed while it saved can leave a copy
// whose flags the server did not keep: Dovecot's sdbox keeps flags only in
// its index, so a message whose file was written but not indexed comes back
// without them; its maildir names keywords by letters in the file name, and
// a letter its dovecot-keywords does not list shows as "unknown-0" instead
// of the keyword. Only flags the folder keeps are wanted (system flags only
// for a message sent without its refused keywords), compared without regard
// to case; when one is missing the copy's flags are replaced by them. A
// broken connection is returned, so the message stays in doubt and is
// looked up (and checked) again; a refusal is reported and the copy kept as
// it is.
func (a *accountRun) restoreFlags(ctx context.Context, dst sinks.Sink, b *batch, m mail.Message, got sinks.Message) error {
	fs, ok := dst.(sinks.FlagSetter)
	if !ok || got.UID == 0 {
		return nil
	}
	want, _ := sinks.KeepFlags(b.target, m.Flags)
	if a.isBare(b.folder.Name, m.UID) {
		want = systemFlags(want)
	}
	has := map[string]bool{}
	for _, f := range got.Flags {
		has[strings.ToLower(f)] = true
	}
	var missing []string
	for _, f := range want {
		if !has[strings.ToLower(f)] {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.SetFlags(ctx, b.target.Name, got.UID, want); err != nil {
		if fault.Classify(err) == fault.Retry {
			return err
		}
		a.r.eventOf(a.job.ID, a.acct.ID, "warning", wording.New("ev.flags.lost", "id", a.acct.ID, "uid", strconv.FormatUint(uint64(m.UID), 10),
			"folder", b.folder.Name, "flags", strings.Join(missing, " ")).Because(fault.WhyOf(err)))
		return nil
	}
	a.r.cfg.Log.Info("in-doubt message was stored without some of its flags; set again", "account", a.acct.ID, "folder", b.folder.Name, "uid", m.UID, "target_uid", got.UID, "missing", strings.Join(missing, " "), "had", strings.Join(got.Flags, " "))
	return nil
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
