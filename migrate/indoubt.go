package migrate

import (
	"errors"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/state"
)

// The in-doubt protocol keeps the engine's promise: every message is on the
// target once, none lost and none copied twice, even when a run dies or a
// connection breaks between the target's OK to an APPEND and our record of
// it. Such an APPEND may or may not have stored the message: recording it
// as done could lose it, sending it again could copy it twice. So the
// message is in doubt until it is looked up on the target, and everything
// the lookups need survives in the checkpoint.
//
// A message of a source folder moves through these states. "Memory" dies
// with the run; "checkpoint" is on disk (state.Checkpoint).
//
//	state    what it means                  moved on by                          recorded in
//	-------  -----------------------------  -----------------------------------  -------------------------------
//	pending  listed, not copied             the folder's preparation: a suspect  checkpoint: not in Done
//	                                        if it is unsure, or alike in date
//	                                        or size to an unknown target
//	                                        message at or above the floor;
//	                                        else sent (flying)
//	suspect  may be on the target already   a lane's lookup (settleDoubts):      batch.doubt, the lane's list;
//	                                        found -> claimed; not found ->       the floor held (checkpoint)
//	                                        again; a twin flying -> wait
//	flying   APPEND sent, not answered      the answer: OK -> copied;            doubts.flying (memory)
//	                                        lost -> unsure
//	unsure   its answer was lost            a lookup: by its lane before it is   doubts.unsure (memory); the
//	                                        sent again, or by the next pass      floor held (checkpoint)
//	again    looked up, not found, sent     the answer: OK -> copied, resent     doubts.again (memory)
//	         once more
//	claimed  found on the target            -                                    Done, Confirmed (checkpoint)
//	copied   the target said OK             -                                    Done, Confirmed (checkpoint)
//	resent   copied after more than one     the late sweep, once the account's   doubts.resent (memory),
//	         APPEND, or claimed beside an   lanes are done: extra copies are     Resent (checkpoint)
//	         unknown copy alike to it       removed -> swept
//	swept    extra copies looked for        -                                    its Resent entry is dropped
//
// Invariants:
//
//   - The floor never rises while anything is in doubt. Every APPEND of a
//     folder that is not recorded yet landed at or above its floor; the
//     floor rises to the target's UIDNEXT only when a folder's preparation
//     finds no suspect, so a first copy that appears late still lies above
//     it. A new folder, a reset or a renumbered folder starts at 1.
//   - Confirmed holds the target UIDs of our copies of the folder (answered
//     or claimed) in the target folder it names (Target, TargetValidity).
//     It is added to when a message is copied or claimed and never shrinks
//     while the checkpoint stands (a reset starts it over). Lookups never
//     match a UID that any checkpoint landing in the same target folder
//     confirms, so one copy is never claimed for two messages, and a check
//     below a risen floor never takes our own copy for a stray.
//   - Identical messages (alike in date and size) are never split across
//     batches, and a lookup waits while an alike APPEND into the same
//     target folder is flying: two lanes looking at once could claim one
//     copy twice, or one could claim the other's unanswered copy.
//   - Lookups pair target copies with messages one to one by a digest of
//     their content, never by Message-ID (duplicates and messages without
//     one are common).
//   - A Resent entry lives in its checkpoint from the moment the message is
//     recorded until its sweep is done, or until the target folder it names
//     is given up (the folder goes elsewhere, is reset or renumbered). A run
//     that dies before its sweep leaves it to the next one.
//
// Words:
//
//	floor    the target UID at or above which an unrecorded APPEND of the
//	         folder may have landed (Checkpoint.Floor)
//	suspect  a pending message that may already be on the target
//	unsure   a message whose APPEND's answer was lost in this run
//	again    a message a lookup did not find, so it is sent once more
//	twin     a message alike to another in date (to the second) and size
//	fly      an APPEND on its way, not answered yet
//	known    a target UID some checkpoint confirms as our copy
//	claim    record a found target copy as a message's, unless known
//	settle   look suspects up on the target and claim what is found
//	sweep    look, when the account is done, for extra copies of resent
//	         messages and remove them
//
// Locking: one lock, the account's (accountRun.mu), guards the checkpoints
// and every field of doubts, since a transition changes both and the flush
// copies the checkpoints under it. Methods of doubts named ...Locked expect
// it held; the others take it.

// doubts is the in-doubt protocol's state for one account run.
type doubts struct {
	mu *sync.Mutex
	// touch marks a folder's checkpoint as changed for the next flush.
	touch func(folder string)
	// cps are the account's checkpoints (the same map as accountRun.cps),
	// nil until loaded.
	cps map[string]*state.Checkpoint

	// unsure holds, per source folder, messages whose answer was lost and
	// that are not found or copied yet; kept across passes of the run.
	unsure map[string]map[uint32]bool
	// again holds, per source folder, messages a lookup did not find and
	// that are being sent once more.
	again map[string]map[uint32]bool
	// flying counts, per target folder, our unanswered APPENDs by date and
	// size, across the account's source folders (two may land in one
	// target folder).
	flying map[string]map[twinKey]int
	// resent are the messages to sweep, each also in its checkpoint's
	// Resent.
	resent []resent
}

func newDoubts(mu *sync.Mutex, touch func(folder string)) *doubts {
	return &doubts{mu: mu, touch: touch}
}

// loadLocked takes the account's checkpoints, and queues for the sweep the
// messages an earlier run sent more than once and did not live to sweep:
// for every folder with a checkpoint (also one no longer on the source, or
// skipped now), in the target folder its copies went to then, whatever the
// folders map to now.
func (d *doubts) loadLocked(cps map[string]*state.Checkpoint) {
	d.cps = cps
	for _, cp := range cps {
		if len(cp.Resent) == 0 || cp.Target == "" {
			continue
		}
		b := &batch{folder: mail.Folder{Name: cp.Folder}, target: sinks.Folder{Name: cp.Target, Validity: cp.TargetValidity}, cp: cp}
		for _, r := range cp.Resent {
			d.resent = append(d.resent, resent{b: b, m: mail.Message{UID: r.UID}, uid: r.Copy, floor: r.Floor})
		}
	}
}

// sent: an APPEND of m into b's target folder is on its way (flying).
func (d *doubts) sent(b *batch, m mail.Message) { d.fly(b, 1, m) }

// answered: the answers to these APPENDs came, or were lost; either way
// they are no longer on their way.
func (d *doubts) answered(b *batch, msgs ...mail.Message) { d.fly(b, -1, msgs...) }

func (d *doubts) fly(b *batch, n int, msgs ...mail.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flying == nil {
		d.flying = map[string]map[twinKey]int{}
	}
	t := d.flying[b.target.Name]
	if t == nil {
		t = map[twinKey]int{}
		d.flying[b.target.Name] = t
	}
	for _, m := range msgs {
		k := keyOf(m)
		if t[k] += n; t[k] <= 0 {
			delete(t, k)
		}
	}
}

// lostAnswer: m's APPEND may have stored it, and we will not hear (the
// connection broke, or the pass ended before the answer). It is unsure,
// and the folder keeps its floor until it is settled.
func (d *doubts) lostAnswer(b *batch, m mail.Message) { d.mark(&d.unsure, b.folder.Name, m.UID) }

// notFound: a lookup did not find m, so it is sent again; an earlier APPEND
// of it may still land, so once copied it is swept.
func (d *doubts) notFound(b *batch, m mail.Message) { d.mark(&d.again, b.folder.Name, m.UID) }

func (d *doubts) mark(set *map[string]map[uint32]bool, folder string, uid uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if *set == nil {
		*set = map[string]map[uint32]bool{}
	}
	if (*set)[folder] == nil {
		(*set)[folder] = map[uint32]bool{}
	}
	(*set)[folder][uid] = true
}

// storedLocked: m is on the target as res (the target's OK, or a claim).
// Its copy is confirmed, it is no longer unsure, and if it was sent again
// it is queued for the sweep (resend says so).
func (d *doubts) storedLocked(b *batch, m mail.Message, res sinks.Appended) (resend bool) {
	if res.UID != 0 && (res.Validity == 0 || res.Validity == b.target.Validity) {
		b.cp.Confirmed.Add(res.UID)
	}
	delete(d.unsure[b.folder.Name], m.UID)
	if d.again[b.folder.Name][m.UID] {
		delete(d.again[b.folder.Name], m.UID)
		d.sweepLaterLocked(b, m, res.UID)
		return true
	}
	return false
}

// claimLocked: a lookup found m on the target as uid. It is recorded as
// m's copy (storedLocked) unless known: taken meanwhile for another
// message. The caller counts the message as copied when it reports true.
func (d *doubts) claimLocked(b *batch, m mail.Message, uid uint32) bool {
	if d.knownLocked(b.cp).Contains(uid) {
		return false
	}
	d.storedLocked(b, m, sinks.Appended{UID: uid, Validity: b.target.Validity})
	return true
}

// sweepLaterLocked queues m, copied as target UID uid, for the sweep, in
// memory and in its checkpoint (once).
func (d *doubts) sweepLaterLocked(b *batch, m mail.Message, uid uint32) {
	cp := b.cp
	for _, e := range cp.Resent {
		if e.UID == m.UID {
			return
		}
	}
	d.resent = append(d.resent, resent{b: b, m: m, uid: uid, floor: cp.Floor})
	cp.Resent = append(cp.Resent, state.Resent{UID: m.UID, Copy: uid, Floor: cp.Floor})
	d.touch(cp.Folder)
}

// sweepLater is sweepLaterLocked for a caller without the lock.
func (d *doubts) sweepLater(b *batch, m mail.Message, uid uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweepLaterLocked(b, m, uid)
}

// takeSweeps hands the queued sweeps to the late sweep; what it cannot do
// stays in the checkpoints for the next run.
func (d *doubts) takeSweeps() []resent {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := d.resent
	d.resent = nil
	return list
}

// swept: the sweep of these messages is done; their Resent entries go.
func (d *doubts) swept(list []resent) {
	d.mu.Lock()
	defer d.mu.Unlock()
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
		d.touch(cp.Folder)
	}
}

// dropSweepsLocked gives up every sweep of target folder name, in memory
// and in the checkpoints, and says how many messages it was for: used when
// no checkpoint will name that folder any more, so a sweep there could
// take our own copies for strays.
func (d *doubts) dropSweepsLocked(name string) int {
	n := 0
	keep := d.resent[:0]
	for _, r := range d.resent {
		if r.b.target.Name == name {
			n++
		} else {
			keep = append(keep, r)
		}
	}
	d.resent = keep
	for _, c := range d.cps {
		if c.Target == name && len(c.Resent) > 0 {
			c.Resent = nil
			d.touch(c.Folder)
		}
	}
	return n
}

// forgetLocked drops what this run knows of a folder's copies on the
// target, when the source or target folder was renumbered: the UIDs it
// names mean nothing any more.
func (d *doubts) forgetLocked(folder string) {
	if cp := d.cps[folder]; cp != nil {
		cp.Resent = nil
	}
	delete(d.unsure, folder)
	delete(d.again, folder)
	keep := d.resent[:0]
	for _, r := range d.resent {
		if r.b.folder.Name != folder {
			keep = append(keep, r)
		}
	}
	d.resent = keep
}

// targetLocked records the target folder a folder's copies go to as it
// was prepared now. recreated says it is another incarnation than the one
// the checkpoint confirms copies in: they are not there any more.
func (d *doubts) targetLocked(cp *state.Checkpoint, tf sinks.Folder) (recreated bool) {
	if cp.TargetValidity != 0 && cp.TargetValidity != tf.Validity {
		return true
	}
	cp.TargetValidity = tf.Validity
	return false
}

// raiseFloorLocked raises the folder's floor to the target's UIDNEXT if
// none of its messages is a suspect, and reports whether it did.
// Confirmed stays whole: a check that looks below the new floor (the
// sweep, a lookup for another folder that lands in the same target folder)
// must never take our own copy for a stray, in this run or a later one.
func (d *doubts) raiseFloorLocked(cp *state.Checkpoint, suspects map[uint32]bool, uidNext uint32) bool {
	if len(suspects) > 0 {
		return false
	}
	cp.Floor = max(uidNext, 1)
	return true
}

// floor is cp's floor now.
func (d *doubts) floor(cp *state.Checkpoint) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return cp.Floor
}

// unsureIn is a copy of a folder's unsure messages.
func (d *doubts) unsureIn(folder string) map[uint32]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[uint32]bool{}
	for u := range d.unsure[folder] {
		out[u] = true
	}
	return out
}

// inFlight says whether a message alike to m is on its way to b's target
// folder.
func (d *doubts) inFlight(b *batch, m mail.Message) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flying[b.target.Name][keyOf(m)] > 0
}

// known is what lookups for cp's folder must not match: every message of
// its target folder already taken as the copy of a source message, of this
// folder or of another that lands there too ("Sent Items" and "已发送" both
// go to the target's Sent).
func (d *doubts) known(cp *state.Checkpoint) state.Ranges {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.knownLocked(cp)
}

func (d *doubts) knownLocked(cp *state.Checkpoint) state.Ranges {
	return d.copiesInLocked(cp.Target, cp.TargetValidity, cp)
}

// copiesInLocked is every copy of ours the checkpoints name in target
// folder name as it is now, and self's whatever its target. A checkpoint
// whose Confirmed is from before that folder was recreated (another
// UIDVALIDITY; 0 is unknown) names UIDs that mean something else there.
func (d *doubts) copiesInLocked(name string, validity uint32, self *state.Checkpoint) state.Ranges {
	var out state.Ranges
	for _, c := range d.cps {
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

// resent is a message that may be on the target more than once: sent again
// after an in-doubt lookup did not find it, or found by a lookup beside
// another copy like it that is not ours (a run that died may have sent it
// twice). It ended up recorded as target message uid.
type resent struct {
	b     *batch
	m     mail.Message
	uid   uint32 // the copy recorded as the message's
	floor uint32 // the folder's floor when it was recorded: every APPEND of it since is above
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

// errTwinInFlight defers an in-doubt lookup while an identical message is
// on its way to the same target folder.
var errTwinInFlight = errors.New("an identical message is being copied into the same folder")

// A lookup deferred by errTwinInFlight is tried again after twinWaitFirst,
// then after twice as long each time, up to twinWaitMax.
const (
	twinWaitFirst = 20 * time.Millisecond
	twinWaitMax   = time.Second
)

// twinKey is what identical copies of a message share.
type twinKey struct {
	date int64
	size int64
}

func keyOf(m mail.Message) twinKey { return twinKey{m.Date.Unix(), m.Size} }

// suspects are the pending messages that may already be on the target: one
// whose APPEND was in doubt earlier in this run (its copy may still appear),
// or one alike in date or size to a target message at or above the floor
// that is not known as the copy of another (an APPEND whose answer a crash
// or a broken connection lost).
func suspects(pending []mail.Message, cands []sinks.Message, known state.Ranges, unsure map[uint32]bool) map[uint32]bool {
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

// doubtGrace is how long to wait before looking up messages whose answers
// were lost: the server may still be storing what it had received when the
// connection went, and a message looked for too early would be sent twice.
// A base, plus the time to store what was in flight at a modest 32 MB/s.
func doubtGrace(doubt []mail.Message) time.Duration {
	var bytes int64
	for _, m := range doubt {
		bytes += m.Size
	}
	return 100*time.Millisecond + time.Duration(bytes)*time.Second/(32<<20)
}
