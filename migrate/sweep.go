package migrate

import (
	"context"
	"io"
	"strconv"

	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/wording"
)

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
//
// It reports whether a stop cut it short with copies left to check: the
// account is then not finished, so that the next run (which resumes it)
// checks them; a finished account is not run again.
func (a *accountRun) lateSweep(ctx context.Context) (cut bool) {
	list := a.doubts.takeSweeps()
	if len(list) == 0 || a.r.cfg.OpenSink == nil {
		return false
	}
	_, dstEP, err := a.endpoints()
	if err != nil {
		return false
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
	// A folder that cannot be checked for a reason retrying does not cure
	// is left for the next run; it does not hold up the others. A target
	// that keeps breaking gets the patience a lane gets (Retries tries and
	// RetryFor without progress): the copies in question are what a
	// faulty target leaves behind, so giving up after a few quick tries
	// would leave them exactly when they are likely.
	var left []string
	pat := newPatience(a.r.cfg.Retries, a.r.cfg.RetryFor)
	limit := min(a.r.cfg.RetryMax, 16*a.r.cfg.RetryBase)
	for len(order) > 0 {
		if pat.tries > 0 && !sleep(a.edge, backoff(a.r.cfg.RetryBase, limit, pat.tries, 0)) {
			break
		}
		dst, err := a.r.cfg.OpenSink(ctx, dstEP)
		if err != nil {
			a.r.cfg.Log.Warn("late check after in-doubt APPENDs: cannot open the target", "account", a.acct.ID, "err", err)
			if pat.failed() {
				break
			}
			continue
		}
		gaveUp := false
		for len(order) > 0 {
			if err := a.sweep(ctx, dst, byFolder[order[0]]); err != nil {
				a.r.cfg.Log.Warn("late check after in-doubt APPENDs failed", "account", a.acct.ID, "folder", order[0], "err", err)
				if fault.Classify(err) == fault.Retry {
					gaveUp = pat.failed()
					break
				}
				left, order = append(left, order[0]), order[1:]
				continue
			}
			a.doubts.swept(byFolder[order[0]])
			order = order[1:]
			pat.progress()
		}
		dst.Close()
		if gaveUp {
			break
		}
	}
	if len(order) > 0 && (ctx.Err() != nil || a.edge.Err() != nil) {
		return true
	}
	order = append(left, order...)
	for _, name := range order {
		a.r.eventOf(a.job.ID, a.acct.ID, "warning", wording.New("ev.sweep.later", "id", a.acct.ID, "n", strconv.Itoa(len(byFolder[name])), "folder", byFolder[name][0].b.folder.Name))
	}
	return false
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
	known := a.doubts.copiesInLocked(name, tf.Validity, nil)
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
		a.r.eventOf(a.job.ID, a.acct.ID, "warning", wording.New("ev.sweep.failed", "id", a.acct.ID, "n", strconv.Itoa(len(extra)), "folder", b.folder.Name).Because(fault.WhyOf(err)))
		return nil
	}
	for _, r := range of {
		a.r.eventOf(a.job.ID, a.acct.ID, "warning", wording.New("ev.sweep.removed", "id", a.acct.ID, "uid", strconv.FormatUint(uint64(r.m.UID), 10), "folder", r.b.folder.Name))
	}
	return nil
}
