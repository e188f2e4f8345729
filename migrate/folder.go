package migrate

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// folder lists one source folder, settles anything in doubt from an earlier
// crash, records the target's floor, and queues the rest for the lanes.
// Its listing and target calls run under ctx; waiting for room in the
// queue ends at edge.
func (a *accountRun) folder(ctx, edge context.Context, src sources.Source, dst sinks.Sink,
	f mail.Folder, target string, onTarget map[string]mail.Folder, batches *batchQueue) error {
	cp, target, exists, unchanged := a.checkpointFor(f, target, onTarget)
	if unchanged {
		return nil
	}
	msgs, dup, err := a.list(ctx, src, f)
	if err != nil {
		return err
	}
	pending := a.reconcile(cp, f, target, msgs, dup)
	if len(pending) == 0 && exists {
		return nil
	}
	if len(pending) > 0 {
		a.workOnce.Do(func() { close(a.work) })
	}
	tf, ok, err := a.prepare(ctx, dst, f, cp, pending, exists)
	if err != nil || !ok || len(pending) == 0 {
		return err
	}
	doubtful, err := a.findSuspects(ctx, dst, f, cp, tf, pending)
	if err != nil {
		return err
	}
	if dropped := droppedFlags(tf, pending); len(dropped) > 0 {
		a.r.eventOf(a.job.ID, a.acct.ID, "warning", wording.New("ev.flags.dropped", "id", a.acct.ID, "folder", tf.Name, "flags", strings.Join(dropped, " ")))
	}
	for _, c := range cutBatches(pending, doubtful, a.r.cfg.BatchMessages, a.r.cfg.BatchBytes) {
		if err := batches.put(edge, &batch{folder: f, target: tf, cp: cp, msgs: c.msgs, doubt: c.doubt}); err != nil {
			return err
		}
	}
	return nil
}

// checkpointFor finds (or starts) f's checkpoint and holds it against the
// folder as the source lists it now: a renumbered folder (UIDVALIDITY
// changed) starts over. It says which target folder the copies go to,
// whether that exists, and whether nothing changed since the last full
// listing, so the folder is skipped without listing (unless its identities
// are needed to deduplicate later folders).
func (a *accountRun) checkpointFor(f mail.Folder, target string, onTarget map[string]mail.Folder) (cp *state.Checkpoint, to string, exists, unchanged bool) {
	a.mu.Lock()
	cp = a.cps[f.Name]
	if cp == nil {
		cp = &state.Checkpoint{Folder: f.Name}
		a.cps[f.Name] = cp
	}
	if cp.Wanted != "" && cp.Wanted == target && cp.Target != "" {
		// The target refused the name the map chose; it took this one.
		target = cp.Target
	}
	_, exists = onTarget[target]
	revalidated := cp.Validity != 0 && cp.Validity != f.Validity
	if revalidated {
		// Every recorded UID is void; the in-doubt check (from the target
		// folder's first message) finds what is already there.
		*cp = state.Checkpoint{Folder: f.Name, Target: cp.Target, Wanted: cp.Wanted, TargetValidity: cp.TargetValidity, Floor: 1}
		a.doubts.forgetLocked(f.Name)
	}
	cp.Validity = f.Validity
	unchanged = a.seen == nil && !revalidated && exists && f.UIDNext != 0 && cp.UIDNext == f.UIDNext && int64(f.Messages) == cp.Total && !cp.Pending() && cp.Failed.Count() == 0 && cp.FolderReason == ""
	a.mu.Unlock()
	if revalidated {
		a.r.eventOf(a.job.ID, a.acct.ID, "warning", wording.New("ev.renumbered", "id", a.acct.ID, "folder", f.Name))
	}
	return cp, target, exists, unchanged
}

// list lists f's messages, with what the job's options need of them (dates
// for Since; identities for DedupeAcrossFolders, where dup are those a
// folder listed earlier in this pass already holds).
func (a *accountRun) list(ctx context.Context, src sources.Source, f mail.Folder) (msgs []mail.Message, dup map[uint32]bool, err error) {
	if msgs, err = src.Messages(ctx, f); err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	if a.listed == nil {
		a.listed = map[string]bool{}
	}
	a.listed[f.Name] = true
	a.mu.Unlock()
	if err := a.assignUIDs(f, msgs); err != nil {
		return nil, nil, err
	}
	if d, ok := src.(sources.Dater); ok && !a.job.Options.Since.IsZero() {
		if err := d.Dates(ctx, f, msgs); err != nil {
			return nil, nil, err
		}
	}
	if a.seen == nil {
		return msgs, nil, nil
	}
	if id, ok := src.(sources.Identifier); ok {
		if err := id.Identities(ctx, f, msgs); err != nil {
			return nil, nil, err
		}
	}
	dup = map[uint32]bool{}
	for _, m := range msgs {
		if m.ID != "" && a.seen[m.ID] {
			dup[m.UID] = true
		}
	}
	for _, m := range msgs {
		if m.ID != "" {
			a.seen[m.ID] = true
		}
	}
	return msgs, dup, nil
}

// reconcile holds f's checkpoint against its listing: what is no longer
// listed is forgotten, what the options leave out is skipped, and the
// rest not copied yet is pending. It records the target folder the copies
// go to now.
func (a *accountRun) reconcile(cp *state.Checkpoint, f mail.Folder, target string, msgs []mail.Message, dup map[uint32]bool) (pending []mail.Message) {
	opts := a.job.Options
	a.mu.Lock()
	defer a.mu.Unlock()
	listed := make(map[uint32]bool, len(msgs))
	for _, m := range msgs {
		listed[m.UID] = true
	}
	cp.Done = keepListed(cp.Done, listed)
	cp.Failed = keepListed(cp.Failed, listed)
	cp.Skipped = nil
	for _, m := range msgs {
		switch {
		case cp.Done.Contains(m.UID):
		case !opts.Since.IsZero() && m.Date.Before(opts.Since),
			opts.MaxMessageSize > 0 && m.Size > opts.MaxMessageSize,
			dup[m.UID]:
			cp.Skipped.Add(m.UID)
		default:
			pending = append(pending, m)
		}
	}
	cp.Total = int64(len(msgs))
	cp.UIDNext = f.UIDNext
	if cp.Target != "" && cp.Target != target {
		// This folder's copies so far stay in the old target folder, but
		// its checkpoint no longer says so: a sweep there could take them
		// for strays. Sweeps of that folder are given up (a message sent
		// twice may stay there twice) rather than risk a copy.
		if n := a.doubts.dropSweepsLocked(cp.Target); n > 0 {
			a.r.cfg.Log.Warn("folder now goes to another target folder; extra copies in the old one are not looked for", "account", a.acct.ID, "folder", f.Name, "old", cp.Target, "new", target, "messages", n)
		}
	}
	if cp.Wanted != "" && cp.Target != target {
		cp.Wanted = ""
	}
	cp.Target = target
	a.dirty[f.Name] = true
	a.recount()
	return pending
}

// findSuspects decides which pending messages the lanes look up before
// sending (see suspects), and raises the floor when there are none. The
// floor is on disk before the first APPEND into the folder.
func (a *accountRun) findSuspects(ctx context.Context, dst sinks.Sink, f mail.Folder, cp *state.Checkpoint,
	tf sinks.Folder, pending []mail.Message) (map[uint32]bool, error) {
	a.mu.Lock()
	if a.doubts.targetLocked(cp, tf) {
		// The target folder was recreated since the pass began: what we
		// recorded as copied is not there. The pass starts again and
		// copies the folder anew (recheck).
		a.resetLocked(cp)
		a.mu.Unlock()
		return nil, fault.New(fault.Retry, fmt.Sprintf("target folder %q was recreated while the account was being copied", tf.Name), nil)
	}
	floor := cp.Floor
	a.mu.Unlock()
	unsure := a.doubts.unsureIn(f.Name)
	var doubtful map[uint32]bool
	if floor != 0 {
		// Only a listing here: the lookups themselves go to the lanes, which
		// keep the connections that work. A pass that had to fetch every
		// candidate over its one connection could not get through a link
		// that breaks every few hundred kilobytes.
		cands, err := dst.Messages(ctx, tf.Name, floor)
		if err != nil {
			return nil, err
		}
		doubtful = suspects(pending, cands, a.doubts.known(cp), unsure)
	}
	a.mu.Lock()
	a.doubts.raiseFloorLocked(cp, doubtful, tf.UIDNext)
	a.dirty[f.Name] = true
	a.mu.Unlock()
	return doubtful, a.saveNow()
}

// cut is one batch's messages, before it has a folder.
type cut struct {
	msgs, doubt []mail.Message
}

// cutBatches cuts a folder's pending messages into batches of about
// maxMsgs messages or maxBytes bytes, suspects first (looked up before
// anything of theirs is sent). Messages alike in date and size (a folder
// can hold identical copies) go to one batch, looked up by one lane in
// turn: two lanes at once could both take one target copy, or one could
// take the other's copy while its answer is still on the way. A group of
// twins may make a batch larger than the limits.
func cutBatches(pending []mail.Message, doubtful map[uint32]bool, maxMsgs int, maxBytes int64) []cut {
	twins := map[twinKey][]mail.Message{}
	for _, m := range pending {
		k := keyOf(m)
		twins[k] = append(twins[k], m)
	}
	var out []cut
	var cur *cut
	var curBytes int64
	send := func() {
		if cur != nil {
			out = append(out, *cur)
			cur, curBytes = nil, 0
		}
	}
	queue := func(list []mail.Message, doubt bool) {
		for _, m := range list {
			g, ok := twins[keyOf(m)]
			if !ok {
				continue // went out with an earlier twin
			}
			delete(twins, keyOf(m))
			if cur == nil {
				cur = &cut{}
			}
			cur.msgs = append(cur.msgs, g...)
			if doubt {
				cur.doubt = append(cur.doubt, g...)
			}
			for _, t := range g {
				curBytes += t.Size
			}
			if len(cur.msgs) >= maxMsgs || curBytes >= maxBytes {
				send()
			}
		}
		send()
	}
	var plain, doubt []mail.Message
	for _, m := range pending {
		if doubtful[m.UID] {
			doubt = append(doubt, m)
		} else {
			plain = append(plain, m)
		}
	}
	queue(doubt, true)
	queue(plain, false)
	return out
}

// prepare creates (if need be) and selects a folder's target folder. A
// name the target refuses is tried once more with the characters servers
// commonly refuse replaced, and the change is logged; a folder the target
// refuses altogether fails as a whole (ok is false), and the account goes
// on. A folder created here is subscribed unless the member had
// unsubscribed it on the source.
func (a *accountRun) prepare(ctx context.Context, dst sinks.Sink, f mail.Folder, cp *state.Checkpoint,
	pending []mail.Message, exists bool) (tf sinks.Folder, ok bool, err error) {
	target := cp.Target
	tf, err = dst.Prepare(ctx, target)
	if err != nil && fault.Classify(err) == fault.Message {
		refused := err
		safe := sinks.SafeName(target, dst.Namespace())
		if safe != target {
			if tf, err = dst.Prepare(ctx, safe); err == nil {
				a.mu.Lock()
				cp.Wanted, cp.Target = target, safe
				a.dirty[cp.Folder] = true
				a.mu.Unlock()
				a.r.eventOf(a.job.ID, a.acct.ID, "folder.renamed", wording.New("ev.folder.renamed", "id", a.acct.ID, "folder", f.Name,
					"as", safe, "wanted", target).Because(fault.WhyOf(refused)))
				target = safe
			}
		}
		if err != nil && fault.Classify(err) == fault.Message {
			// The target refuses this folder (its name, most often): the
			// folder fails once, with the server's reason.
			a.folderFailed(cp, pending, fault.WhyOf(refused))
			return tf, false, nil
		}
	}
	if err != nil {
		return tf, false, err
	}
	a.mu.Lock()
	if cp.FolderReason != "" {
		cp.FolderReason = ""
		a.dirty[cp.Folder] = true
	}
	a.mu.Unlock()
	if !exists && !f.Unsubscribed && !strings.EqualFold(target, "INBOX") {
		if err := dst.Subscribe(ctx, target); err != nil {
			if fault.Classify(err) != fault.Message {
				return tf, false, err
			}
			a.r.eventOf(a.job.ID, a.acct.ID, "warning", wording.New("ev.subscribe", "id", a.acct.ID, "folder", target).Because(fault.WhyOf(err)))
		}
	}
	return tf, true, nil
}

// recheck holds the checkpoints against the target as it is now: a target
// folder that was deleted, recreated (another UIDVALIDITY) or holds fewer
// messages than were copied into it has lost mail of ours, so every source
// folder that lands there is copied anew; the in-doubt lookups find what is
// still there, so nothing is copied twice. One listing of the target
// answers it, so a re-run with nothing new stays fast.
func (a *accountRun) recheck(onTarget map[string]mail.Folder) {
	a.mu.Lock()
	copied := map[string]int64{}
	validity := map[string]uint32{}
	for _, cp := range a.cps {
		if cp.Target == "" || cp.TargetValidity == 0 {
			continue
		}
		copied[cp.Target] += cp.Done.Count()
		if validity[cp.Target] == 0 {
			validity[cp.Target] = cp.TargetValidity
		}
	}
	var notes []string
	for name, n := range copied {
		st, ok := onTarget[name]
		var why string
		switch {
		case !ok:
			why = "was deleted"
		case uint32(st.Validity) != validity[name]:
			why = "was recreated (its UIDVALIDITY changed)"
		case int64(st.Messages) < n:
			why = fmt.Sprintf("holds %d messages, fewer than the %d copied into it", st.Messages, n)
		default:
			continue
		}
		for _, cp := range a.cps {
			if cp.Target == name {
				a.resetLocked(cp)
			}
		}
		notes = append(notes, fmt.Sprintf("%s: target folder %q %s: its mail is looked for and copied again where missing", a.acct.ID, name, why))
	}
	if len(notes) > 0 {
		a.recount()
	}
	a.mu.Unlock()
	sort.Strings(notes)
	for _, n := range notes {
		a.r.event(a.job.ID, a.acct.ID, "warning", n)
	}
}

// resetLocked forgets what a checkpoint says was copied, so the folder is
// listed and copied again; lookups from the target's first message find
// what is already there. Caller holds mu.
func (a *accountRun) resetLocked(cp *state.Checkpoint) {
	a.doubts.dropSweepsLocked(cp.Target)
	*cp = state.Checkpoint{Folder: cp.Folder, Validity: cp.Validity, Target: cp.Target, Wanted: cp.Wanted, Floor: 1}
	a.doubts.forgetLocked(cp.Folder)
	a.dirty[cp.Folder] = true
	a.acctDirty = true
}

// assignUIDs numbers messages of sources that key them by strings (POP3
// UIDL, Graph ids), through a mapping kept in the state, and sorts them by
// that number so they are copied in the source's order.
func (a *accountRun) assignUIDs(f mail.Folder, msgs []mail.Message) error {
	var keys []string
	for _, m := range msgs {
		if m.UID == 0 {
			keys = append(keys, m.Key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if len(keys) != len(msgs) {
		return fault.New(fault.Account, fmt.Sprintf("folder %q mixes numeric and string message keys", f.Name), nil)
	}
	uids, err := a.r.store.AssignUIDs(a.job.ID, a.acct.ID, f.Name, keys)
	if err != nil {
		return fault.New(fault.Account, "cannot write the state file", err)
	}
	for i := range msgs {
		msgs[i].UID = uids[i]
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].UID < msgs[j].UID })
	return nil
}

func keepListed(rs state.Ranges, listed map[uint32]bool) state.Ranges {
	var out state.Ranges
	for _, r := range rs {
		for u := r.Lo; ; u++ {
			if listed[u] {
				out.Add(u)
			}
			if u == r.Hi {
				break
			}
		}
	}
	return out
}

// droppedFlags lists the flags of msgs that the target folder will not keep.
func droppedFlags(tf sinks.Folder, msgs []mail.Message) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range msgs {
		_, dropped := sinks.KeepFlags(tf, m.Flags)
		for _, d := range dropped {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}
