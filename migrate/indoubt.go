package migrate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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

// resent is a message that may be on the target more than once: sent again
// after an in-doubt lookup did not find it, or found by a lookup beside
// another copy like it that is not ours (a run that died may have sent it
// twice). It ended up recorded as target message uid.
type resent struct {
	b     *batch
	m     sources.Message
	uid   uint32 // the copy recorded as the message's
	floor uint32 // the folder's floor when it was recorded: every APPEND of it since is above
}

// lateSweep looks, when the account is done, for extra copies of the
// messages sent more than once. An earlier APPEND of one may have reached
// the target after the lookup that did not find it: a server finishing
// what it had read from a dead connection, or recovering a half-saved file
// (Dovecot's sdbox rebuilds its index when the next save meets the
// orphaned file). Such a copy is not known as ours, lies above the floor
// the message was sent under, and is byte for byte equal to the copy
// recorded as the message's; it is removed, so the message is on the
// target once. This runs from a new session (a fresh SELECT makes Dovecot
// finish any recovery before it lists the folder) and only once no APPEND
// of the account is in flight, so an identical message's copy still
// waiting for its answer is never taken for a stray. A broken connection
// is retried like any other. What a run leaves unswept (it died, or the
// target could not be checked) stays in the checkpoints for the next run.
func (a *accountRun) lateSweep(ctx context.Context) {
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
	byFolder := map[string][]resent{}
	var order []string
	for _, r := range list {
		name := r.b.target.Name
		if byFolder[name] == nil {
			order = append(order, name)
		}
		byFolder[name] = append(byFolder[name], r)
	}
	// A folder that cannot be checked is left for the next run after its
	// retries; it does not hold up the others.
	var left []string
	attempt, openFails := 0, 0
	for len(order) > 0 && openFails <= a.r.cfg.Retries {
		if attempt > a.r.cfg.Retries {
			left, order, attempt = append(left, order[0]), order[1:], 0
			continue
		}
		if (attempt > 0 || openFails > 0) && !sleep(a.edge, backoff(a.r.cfg.RetryBase, a.r.cfg.RetryMax, max(attempt, openFails), 0)) {
			break
		}
		dst, err := a.r.cfg.OpenSink(ctx, dstEP)
		if err != nil {
			a.r.cfg.Log.Warn("late check after in-doubt APPENDs: cannot open the target", "account", a.acct.ID, "err", err)
			openFails++
			continue
		}
		openFails = 0
		for len(order) > 0 {
			if err := a.sweep(ctx, dst, byFolder[order[0]]); err != nil {
				a.r.cfg.Log.Warn("late check after in-doubt APPENDs failed", "account", a.acct.ID, "folder", order[0], "err", err)
				if fault.Classify(err) == fault.Retry {
					attempt++
					break
				}
				left, order, attempt = append(left, order[0]), order[1:], 0
				continue
			}
			a.swept(byFolder[order[0]])
			order, attempt = order[1:], 0
		}
		dst.Close()
	}
	order = append(left, order...)
	for _, name := range order {
		a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: %d message(s) of %q were sent more than once after in-doubt APPENDs, and the target could not be checked for extra copies yet; the next run of this account checks again", a.acct.ID, len(byFolder[name]), byFolder[name][0].b.folder.Name))
	}
}

// sweep is lateSweep for the messages of one folder: one listing, and
// bodies fetched only for copies alike in date and size to ours.
func (a *accountRun) sweep(ctx context.Context, dst sinks.Sink, list []resent) error {
	ex, ok := dst.(sinks.Expunger)
	if !ok {
		return nil
	}
	name := list[0].b.target.Name
	tf, err := dst.Prepare(ctx, name)
	if err != nil {
		return err
	}
	// Entries recorded in another incarnation of the folder (recreated
	// since: its UIDs start over) name nothing of ours here.
	kept := list[:0:0]
	for _, r := range list {
		if r.b.target.Validity == 0 || tf.Validity == 0 || r.b.target.Validity == tf.Validity {
			kept = append(kept, r)
		}
	}
	list = kept
	if len(list) == 0 {
		return nil
	}
	b := list[0].b
	floor := list[0].floor
	for _, r := range list {
		floor = min(floor, r.floor)
	}
	a.mu.Lock()
	known := a.copiesInLocked(name, tf.Validity, nil)
	a.mu.Unlock()
	for _, r := range list {
		// A recorded copy is never a stray, whatever the checkpoints say.
		known.Add(r.uid)
	}
	cands, err := dst.Messages(ctx, b.target.Name, floor)
	if err != nil {
		return err
	}
	at := map[uint32]sinks.Message{}
	for _, c := range cands {
		at[c.UID] = c
	}
	// Ours, by what a stray copy of each would share with it.
	mine := map[twinKey][]resent{}
	for _, r := range list {
		if c, ok := at[r.uid]; ok {
			k := twinKey{c.Date.Unix(), c.Size}
			mine[k] = append(mine[k], r)
		}
	}
	var strays, fetch []uint32
	queued := map[uint32]bool{}
	for _, c := range cands {
		k := twinKey{c.Date.Unix(), c.Size}
		if known.Contains(c.UID) || len(mine[k]) == 0 {
			continue
		}
		strays = append(strays, c.UID)
		fetch = append(fetch, c.UID)
		for _, r := range mine[k] {
			if !queued[r.uid] {
				queued[r.uid] = true
				fetch = append(fetch, r.uid)
			}
		}
	}
	if len(strays) == 0 {
		return nil
	}
	digests := map[uint32]string{}
	err = dst.Fetch(ctx, b.target.Name, fetch, func(uid uint32, r io.Reader) error {
		d, err := digest(r)
		digests[uid] = d
		return err
	})
	if err != nil {
		return err
	}
	whose := map[string]resent{}
	for _, rs := range mine {
		for _, r := range rs {
			if d, ok := digests[r.uid]; ok {
				whose[d] = r
			}
		}
	}
	var extra []uint32
	var of []resent
	for _, u := range strays {
		if r, ok := whose[digests[u]]; ok && digests[u] != "" {
			extra = append(extra, u)
			of = append(of, r)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	if err := ex.Expunge(ctx, b.target.Name, extra); err != nil {
		if fault.Classify(err) == fault.Retry {
			return err
		}
		a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: %d extra copies in %q of messages sent more than once could not be removed: %s", a.acct.ID, len(extra), b.folder.Name, fault.Reason(err)))
		return nil
	}
	for _, r := range of {
		a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: the target kept an interrupted copy of message UID %d in %q after it was sent more than once; the extra copy was removed", a.acct.ID, r.m.UID, r.b.folder.Name))
	}
	return nil
}

// loadSweeps queues for the late sweep the messages that an earlier run
// sent more than once and did not live to sweep, for every folder with a
// checkpoint (also one no longer on the source, or skipped now). Each is
// looked for in the target folder its copies went to then (cp.Target),
// whatever the folders map to now.
func (a *accountRun) loadSweeps() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sweepsLoaded {
		return
	}
	a.sweepsLoaded = true
	for _, cp := range a.cps {
		if len(cp.Resent) == 0 || cp.Target == "" {
			continue
		}
		b := &batch{folder: sources.Folder{Name: cp.Folder}, target: sinks.Folder{Name: cp.Target, Validity: cp.TargetValidity}, cp: cp}
		for _, r := range cp.Resent {
			a.resent = append(a.resent, resent{b: b, m: sources.Message{UID: r.UID}, uid: r.Copy, floor: r.Floor})
		}
	}
}

// queueSweepLocked queues m, copied as target UID uid, for the late sweep,
// in memory and in its checkpoint (once). Caller holds mu.
func (a *accountRun) queueSweepLocked(b *batch, m sources.Message, uid uint32) {
	cp := b.cp
	for _, e := range cp.Resent {
		if e.UID == m.UID {
			return
		}
	}
	a.resent = append(a.resent, resent{b: b, m: m, uid: uid, floor: cp.Floor})
	cp.Resent = append(cp.Resent, state.Resent{UID: m.UID, Copy: uid, Floor: cp.Floor})
	a.dirty[cp.Folder] = true
}

// alikeUnknown reports whether cands hold a message alike in date and size
// to target message uid that is not known as a copy of ours.
func alikeUnknown(cands []sinks.Message, uid uint32, known state.Ranges) bool {
	var k twinKey
	found := false
	for _, c := range cands {
		if c.UID == uid {
			k, found = twinKey{c.Date.Unix(), c.Size}, true
			break
		}
	}
	if !found {
		return false
	}
	for _, c := range cands {
		if c.UID != uid && (twinKey{c.Date.Unix(), c.Size}) == k && !known.Contains(c.UID) {
			return true
		}
	}
	return false
}

// dropSweepsLocked gives up every sweep of target folder name, in memory
// and in the checkpoints, and says how many messages it was for. Caller
// holds mu.
func (a *accountRun) dropSweepsLocked(name string) int {
	n := 0
	keep := a.resent[:0]
	for _, r := range a.resent {
		if r.b.target.Name == name {
			n++
		} else {
			keep = append(keep, r)
		}
	}
	a.resent = keep
	for _, c := range a.cps {
		if c.Target == name && len(c.Resent) > 0 {
			c.Resent = nil
			a.dirty[c.Folder] = true
		}
	}
	return n
}

// swept drops from the checkpoints the messages whose late sweep is done.
func (a *accountRun) swept(list []resent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range list {
		cp := r.b.cp
		keep := cp.Resent[:0]
		for _, e := range cp.Resent {
			if e.UID != r.m.UID {
				keep = append(keep, e)
			}
		}
		cp.Resent = keep
		if len(keep) == 0 {
			cp.Resent = nil
		}
		a.dirty[cp.Folder] = true
	}
}

// forget drops what this run knows of a folder's copies on the target, when
// the source or target folder was renumbered. Caller holds mu.
func (a *accountRun) forget(folder string) {
	if cp := a.cps[folder]; cp != nil {
		cp.Resent = nil
	}
	delete(a.unsure, folder)
	delete(a.again, folder)
	keep := a.resent[:0]
	for _, r := range a.resent {
		if r.b.folder.Name != folder {
			keep = append(keep, r)
		}
	}
	a.resent = keep
}

// sentAgain records that a message is being sent again after an in-doubt
// lookup did not find it.
func (a *accountRun) sentAgain(folder string, uid uint32) { a.mark(&a.again, folder, uid) }

// markUnsure records a message whose APPEND was in doubt; doneLocked
// clears it.
func (a *accountRun) markUnsure(folder string, uid uint32) { a.mark(&a.unsure, folder, uid) }

// mark adds a folder's message to one of the per-folder sets.
func (a *accountRun) mark(set *map[string]map[uint32]bool, folder string, uid uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if *set == nil {
		*set = map[string]map[uint32]bool{}
	}
	if (*set)[folder] == nil {
		(*set)[folder] = map[uint32]bool{}
	}
	(*set)[folder][uid] = true
}

// claim records m as copied by the target message uid found in an in-doubt
// lookup, unless that copy was taken meanwhile for another message.
func (a *accountRun) claim(b *batch, m sources.Message, uid uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k := a.knownLocked(b.cp); k.Contains(uid) {
		return false
	}
	a.doneLocked(b, m, sinks.Appended{UID: uid, Validity: b.target.Validity})
	return true
}

// fly counts APPENDs of msgs into b's target folder as sent (n = 1) or
// answered (n = -1).
func (a *accountRun) fly(b *batch, n int, msgs ...sources.Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.flying == nil {
		a.flying = map[string]map[twinKey]int{}
	}
	t := a.flying[b.target.Name]
	if t == nil {
		t = map[twinKey]int{}
		a.flying[b.target.Name] = t
	}
	for _, m := range msgs {
		k := keyOf(m)
		if t[k] += n; t[k] <= 0 {
			delete(t, k)
		}
	}
}

// inFlight says whether a message alike to m is on its way to b's target
// folder.
func (a *accountRun) inFlight(b *batch, m sources.Message) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flying[b.target.Name][keyOf(m)] > 0
}

// errTwinInFlight defers an in-doubt lookup while an identical message is
// on its way to the same target folder.
var errTwinInFlight = errors.New("an identical message is being copied into the same folder")

// A lookup deferred by errTwinInFlight is tried again after twinWaitFirst,
// then after twice as long each time, up to twinWaitMax.
const (
	twinWaitFirst = 20 * time.Millisecond
	twinWaitMax   = time.Second
)

// known is what in-doubt lookups for cp's folder must not match: every
// message of its target folder already taken as the copy of a source
// message, of this folder or of another that lands there too ("Sent Items"
// and "已发送" both go to the target's Sent).
func (a *accountRun) known(cp *state.Checkpoint) state.Ranges {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.knownLocked(cp)
}

func (a *accountRun) knownLocked(cp *state.Checkpoint) state.Ranges {
	return a.copiesInLocked(cp.Target, cp.TargetValidity, cp)
}

// copiesInLocked is every copy of ours the checkpoints name in target
// folder name as it is now, and self's whatever its target. A checkpoint
// whose Confirmed is from before that folder was recreated (another
// UIDVALIDITY; 0 is unknown) names UIDs that mean something else there.
// Caller holds mu.
func (a *accountRun) copiesInLocked(name string, validity uint32, self *state.Checkpoint) state.Ranges {
	var out state.Ranges
	for _, c := range a.cps {
		same := name != "" && c.Target == name && (validity == 0 || c.TargetValidity == 0 || c.TargetValidity == validity)
		if c != self && !same {
			continue
		}
		for _, r := range c.Confirmed {
			out.AddRange(r.Lo, r.Hi)
		}
	}
	return out
}

// twinKey is what identical copies of a message share.
type twinKey struct {
	date int64
	size int64
}

func keyOf(m sources.Message) twinKey { return twinKey{m.Date.Unix(), m.Size} }

// suspects are the pending messages that may already be on the target: one
// whose APPEND was in doubt earlier in this run (its copy may still appear),
// or one alike in date or size to a target message at or above the floor
// that is not known as the copy of another (an APPEND whose answer a crash
// or a broken connection lost).
func suspects(pending []sources.Message, cands []sinks.Message, known state.Ranges, unsure map[uint32]bool) map[uint32]bool {
	dates := map[int64]bool{}
	sizes := map[int64]bool{}
	for _, c := range cands {
		if !known.Contains(c.UID) {
			dates[c.Date.Unix()] = true
			sizes[c.Size] = true
		}
	}
	out := map[uint32]bool{}
	alike := map[twinKey]bool{}
	for _, m := range pending {
		if unsure[m.UID] || dates[m.Date.Unix()] || sizes[m.Size] {
			out[m.UID] = true
			alike[keyOf(m)] = true
		}
	}
	// A suspect's twins are looked up with it, never sent beside it.
	for _, m := range pending {
		if alike[keyOf(m)] {
			out[m.UID] = true
		}
	}
	return out
}

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
	doubt []sources.Message) ([]sources.Message, map[uint32]bool, error) {
	stored := map[uint32]bool{}
	var later []sources.Message
	ready := doubt[:0:0]
	for _, m := range doubt {
		if a.inFlight(b, m) {
			later = append(later, m)
		} else {
			ready = append(ready, m)
		}
	}
	doubt = ready
	a.mu.Lock()
	floor := b.cp.Floor
	a.mu.Unlock()
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
		found, err := a.settle(ctx, src, dst, b.folder, b.target, cands, a.known(b.cp), chunk)
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
				if alikeUnknown(cands, t, a.known(b.cp)) {
					// More copies of it than ours: a run that died may
					// have sent it twice before it could record either.
					a.mu.Lock()
					a.queueSweepLocked(b, m, t)
					a.mu.Unlock()
				}
			} else {
				a.sentAgain(b.folder.Name, m.UID)
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
func (a *accountRun) restoreFlags(ctx context.Context, dst sinks.Sink, b *batch, m sources.Message, got sinks.Message) error {
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
		a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: message UID %d of %q was found on the target without the flags %s, which could not be set again: %s", a.acct.ID, m.UID, b.folder.Name, strings.Join(missing, " "), fault.Reason(err)))
		return nil
	}
	a.r.cfg.Log.Info("in-doubt message was stored without some of its flags; set again", "account", a.acct.ID, "folder", b.folder.Name, "uid", m.UID, "target_uid", got.UID, "missing", strings.Join(missing, " "), "had", strings.Join(got.Flags, " "))
	return nil
}

// doubtGrace is how long to wait before looking up messages whose answers
// were lost: the server may still be storing what it had received when the
// connection went, and a message looked for too early would be sent twice.
// A base, plus the time to store what was in flight at a modest 32 MB/s.
func doubtGrace(doubt []sources.Message) time.Duration {
	var bytes int64
	for _, m := range doubt {
		bytes += m.Size
	}
	return 100*time.Millisecond + time.Duration(bytes)*time.Second/(32<<20)
}
