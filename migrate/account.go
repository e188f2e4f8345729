package migrate

import (
	"context"
	"errors"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// crashGrace is how long after a killed run's last sign of life a resumed
// account waits before it looks on the target for what that run sent: the
// server finishes an APPEND it had wholly received within it.
const crashGrace = 300 * time.Millisecond

// maxReasons bounds the failure reasons kept per folder (a folder that
// fails as a whole keeps one, FolderReason).
const maxReasons = 1000

// accountRun is one account being copied in one round.
type accountRun struct {
	r   *Runner
	job *state.Job
	// edge is the round's message boundary (see Runner.round): done with
	// cause errStopped when the account is to stop after the message in
	// progress, and whenever the round's connections are cut.
	edge context.Context

	// mu guards acct, the checkpoints (cps; a flush copies them under
	// it), dirty, acctDirty, listed, bare and everything in doubts. seen
	// is the folder listing's alone (one goroutine per pass).
	mu        sync.Mutex
	acct      *state.Account
	cps       map[string]*state.Checkpoint
	dirty     map[string]bool
	acctDirty bool
	// seen holds the cross-folder identities of messages in folders already
	// listed in this pass (DedupeAcrossFolders).
	seen map[string]bool
	// listed holds the folders listed at least once in this run: a pass that
	// lists one more than before made progress, even if no mail moved yet.
	listed map[string]bool
	// doubts is the in-doubt protocol (indoubt.go), under mu too.
	doubts *doubts
	// bare holds, per folder, messages whose keywords the target refused:
	// they are sent without them.
	bare map[string]map[uint32]bool
	// work is closed when the pass finds the first message to copy: the
	// lanes log in then, while the first folder is still being prepared.
	work     chan struct{}
	workOnce *sync.Once
	// place is the account's place among those copied at once.
	place *place
	// copying: the account reached the copy in this run (its event is
	// said once).
	copying bool
	// pat is the account's patience with failing passes and connections.
	pat *patience
	// stopEdge ends this account alone at its next message boundary (the
	// admin's pause or abandon of one account: accountcontrol.go); hold
	// (under mu) is what it becomes then, nil when resumed meanwhile, and
	// held says a request stopped it.
	stopEdge context.CancelCauseFunc
	hold     *accountHold
	held     bool
	// resumed: a resume came once it had stopped paused (by resumedBy).
	resumed   bool
	resumedBy string
}

// batch is one FETCH worth of messages of one folder.
type batch struct {
	folder mail.Folder
	target sinks.Folder
	cp     *state.Checkpoint
	msgs   []mail.Message
	// doubt are messages of msgs that may already be on the target (from
	// an interrupted run or pass): the lane looks them up before it sends
	// anything. Messages alike in date and size are never split between
	// batches, so two lanes never match one target copy.
	doubt []mail.Message
}

// progress grows with every message settled and every folder listed for
// the first time in this run.
func (a *accountRun) progress() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acct.Counts.Imported + a.acct.Counts.Failed + int64(len(a.listed))
}

func (r *Runner) newAccountRun(job *state.Job, a *state.Account, edge context.Context) *accountRun {
	edge, stop := context.WithCancelCause(edge)
	ar := &accountRun{r: r, job: job, edge: edge, stopEdge: stop, acct: a, dirty: map[string]bool{}, place: &place{}}
	ar.doubts = newDoubts(&ar.mu, func(folder string) { ar.dirty[folder] = true })
	r.mu.Lock()
	r.live[a.ID] = ar
	r.mu.Unlock()
	return ar
}

func (a *accountRun) snapshot() *state.Account {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := *a.acct
	return &c
}

func (a *accountRun) takeProgress() (state.Progress, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.acctDirty && len(a.dirty) == 0 {
		return state.Progress{}, false
	}
	p := state.Progress{Job: a.job.ID}
	acct := *a.acct
	p.Account = &acct
	for name := range a.dirty {
		c := *a.cps[name]
		c.Done = append(state.Ranges(nil), c.Done...)
		c.Confirmed = append(state.Ranges(nil), c.Confirmed...)
		c.Failed = append(state.Ranges(nil), c.Failed...)
		c.Skipped = append(state.Ranges(nil), c.Skipped...)
		c.Resent = append([]state.Resent(nil), c.Resent...)
		c.Reasons = maps.Clone(c.Reasons)
		c.Sizes = maps.Clone(c.Sizes)
		c.Dates = maps.Clone(c.Dates)
		p.Checkpoints = append(p.Checkpoints, &c)
	}
	a.dirty = map[string]bool{}
	a.acctDirty = false
	return p, true
}

func (a *accountRun) markDirty(cps []*state.Checkpoint) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acctDirty = true
	for _, c := range cps {
		a.dirty[c.Folder] = true
	}
}

// recount derives the account's counts from its checkpoints. Caller holds mu.
func (a *accountRun) recount() {
	var c state.Counts
	for _, cp := range a.cps {
		c.ToImport += cp.Total - cp.Skipped.Count()
		c.Imported += cp.Done.Count()
		c.Failed += cp.Failed.Count()
		c.Skipped += cp.Skipped.Count()
		c.Bytes += cp.Bytes
	}
	a.acct.Counts = c
	a.acctDirty = true
}

func (a *accountRun) setState(st state.AccountState, why wording.Reason) {
	a.mu.Lock()
	a.acct.State = st
	a.acct.SetReason(why)
	now := time.Now().UTC()
	if st == state.AccountPreparing && a.acct.Started.IsZero() {
		a.acct.Started = now
	}
	if st.Finished() {
		a.acct.Finished = now
	}
	a.acctDirty = true
	a.mu.Unlock()
}

func (a *accountRun) done(b *batch, m mail.Message, res sinks.Appended) {
	a.mu.Lock()
	again := a.doneLocked(b, m, res)
	a.mu.Unlock()
	if again {
		a.r.cfg.Log.Info("message sent again after an in-doubt APPEND", "account", a.acct.ID, "folder", b.folder.Name, "uid", m.UID, "target_uid", res.UID)
		// On disk at once, not at the next flush: a run that dies now must
		// leave the sweep for this message to the next run. Rare enough to
		// cost nothing; if the write fails, the flush tries again.
		if err := a.saveNow(); err != nil {
			a.r.cfg.Log.Warn("cannot record a message sent again", "account", a.acct.ID, "err", err)
		}
	}
}

// doneLocked is done with a.mu held. It also settles the message's doubts
// (storedLocked); again says it was sent more than once.
func (a *accountRun) doneLocked(b *batch, m mail.Message, res sinks.Appended) (again bool) {
	a.copiedLocked(b, m)
	return a.doubts.storedLocked(b, m, res)
}

// copiedLocked counts m as copied. Caller holds mu.
func (a *accountRun) copiedLocked(b *batch, m mail.Message) {
	cp := b.cp
	cp.Done.Add(m.UID)
	cp.Failed.Remove(m.UID)
	delete(cp.Reasons, m.UID)
	delete(cp.Sizes, m.UID)
	delete(cp.Dates, m.UID)
	cp.Bytes += m.Size
	a.acct.Counts.Imported++
	a.acct.Counts.Failed = a.failedCount()
	a.acct.Counts.Bytes += m.Size
	a.dirty[cp.Folder] = true
	a.acctDirty = true
}

// claim records m as copied by the target message uid found by a lookup,
// unless that copy was taken meanwhile for another message.
func (a *accountRun) claim(b *batch, m mail.Message, uid uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.doubts.claimLocked(b, m, uid) {
		return false
	}
	a.copiedLocked(b, m)
	return true
}

func (a *accountRun) failedCount() int64 {
	var n int64
	for _, cp := range a.cps {
		n += cp.Failed.Count()
	}
	return n
}

func (a *accountRun) failed(b *batch, m mail.Message, why wording.Reason) {
	reason := why.String()
	a.mu.Lock()
	cp := b.cp
	cp.Failed.Add(m.UID)
	if cp.Reasons == nil {
		cp.Reasons = map[uint32]string{}
	}
	if len(cp.Reasons) < maxReasons {
		cp.Reasons[m.UID] = reason
		cp.NoteReason(why)
	}
	noteFailedLocked(cp, m)
	a.acct.Counts.Failed = a.failedCount()
	a.dirty[cp.Folder] = true
	a.acctDirty = true
	a.mu.Unlock()
	a.r.eventOf(a.job.ID, a.acct.ID, "message.failed", wording.New("ev.message.failed", "id", a.acct.ID, "uid", strconv.FormatUint(uint64(m.UID), 10),
		"folder", cp.Folder, "size", strconv.FormatInt(m.Size, 10)).Because(why))
}

// noteFailedLocked keeps a failed message's size and date for the report.
func noteFailedLocked(cp *state.Checkpoint, m mail.Message) {
	if cp.Sizes == nil {
		cp.Sizes, cp.Dates = map[uint32]int64{}, map[uint32]time.Time{}
	}
	if len(cp.Sizes) < maxReasons {
		cp.Sizes[m.UID], cp.Dates[m.UID] = m.Size, m.Date
	}
}

// folderFailed records that none of a folder's pending messages can be
// copied, for one reason: one event, not one per message.
func (a *accountRun) folderFailed(cp *state.Checkpoint, pending []mail.Message, why wording.Reason) {
	a.mu.Lock()
	for _, m := range pending {
		cp.Failed.Add(m.UID)
		delete(cp.Reasons, m.UID)
		noteFailedLocked(cp, m)
	}
	cp.SetFolderReason(why)
	a.acct.Counts.Failed = a.failedCount()
	a.dirty[cp.Folder] = true
	a.acctDirty = true
	a.mu.Unlock()
	a.r.eventOf(a.job.ID, a.acct.ID, "folder.failed", wording.New("ev.folder.failed", "id", a.acct.ID, "folder", cp.Folder, "n", strconv.Itoa(len(pending))).Because(why))
}

func (a *accountRun) vanished(b *batch, m mail.Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b.cp.Skipped.Add(m.UID)
	a.acct.Counts.Skipped++
	a.acct.Counts.ToImport--
	a.dirty[b.cp.Folder] = true
	a.acctDirty = true
}

// saveNow writes this account's progress at once, durably: used before the
// first APPEND into a folder so its in-doubt floor is on disk.
func (a *accountRun) saveNow() error {
	a.r.saveMu.Lock()
	defer a.r.saveMu.Unlock()
	p, ok := a.takeProgress()
	if !ok {
		return nil
	}
	if err := a.r.store.Save([]state.Progress{p}); err != nil {
		a.markDirty(p.Checkpoints)
		return fault.Coded(fault.Account, wording.New("state.write"), err)
	}
	return nil
}

// run copies the account over connections that live as long as ctx; it
// reports whether the account reached a final state.
func (a *accountRun) run(ctx context.Context) bool {
	defer func() {
		a.r.flush()
		a.r.mu.Lock()
		delete(a.r.live, a.acct.ID)
		a.r.mu.Unlock()
	}()
	id, job := a.acct.ID, a.job.ID
	prev := a.acct.State
	// A sync of an account that had succeeded says so in its own event:
	// the member is not told again that the move finished.
	resync, importedBefore := a.r.cfg.sync && prev == state.AccountSucceeded, a.acct.Counts.Imported
	a.setState(state.AccountPreparing, wording.Reason{})
	if prev == state.AccountNotStarted {
		a.r.eventOf(job, id, "account.started", wording.New("ev.account.started", "id", id, "from", a.acct.Source, "to", a.acct.Target))
	} else {
		a.r.eventOf(job, id, "account.resumed", wording.New("ev.account.resumed", "id", id, "state", string(prev)))
	}

	if prev == state.AccountRunning || prev == state.AccountPreparing {
		// A run that was killed may have left pipelined APPENDs in the
		// target server's hands; one it had fully read is still stored
		// after we are gone. Looking for them before the server is done
		// would miss it and send the message again.
		if wait := time.Until(a.acct.Updated.Add(a.r.cfg.FlushEvery + crashGrace)); wait > 0 {
			sleep(a.edge, wait)
		}
	}

	var err error
	a.pat = newPatience(a.r.cfg.Retries, a.r.cfg.ConnectFor)
	start := a.progress()
	for attempt := 1; ; attempt++ {
		before := a.progress()
		err = a.pass(ctx)
		if err == nil || errors.Is(err, errStopped) || a.edge.Err() != nil {
			break
		}
		if a.progress() > before {
			// A flaky link that still moves mail is not a reason to give up.
			attempt = 1
			a.pat.progress()
		}
		if a.progress() > start {
			// Once mail moves, the servers were reachable: an outage is
			// ridden out as long as a lane would.
			a.pat.budget = a.r.cfg.RetryFor
		}
		if fault.Classify(err) != fault.Retry || a.pat.failed() {
			break
		}
		a.r.cfg.Log.Warn("account pass failed; retrying", "account", id, "err", err)
		if !sleep(a.edge, backoff(a.r.cfg.RetryBase, a.r.cfg.RetryMax, attempt, fault.Wait(err))) {
			break
		}
	}
	if ctx.Err() == nil {
		// Every lane is done: whatever the outcome, look for first copies
		// of the messages sent again.
		if a.lateSweep(ctx) && err == nil {
			err = errStopped
		}
	}
	switch {
	case err == nil:
		a.mu.Lock()
		a.recount()
		c := a.acct.Counts
		reason := countsWhy(c)
		groups := FailureGroups(a.cps)
		if len(groups) > 0 {
			reason = leftWhy(c, groups)
		}
		if c.Failed > 0 || len(groups) > 0 {
			// 搬家成功 only when every selected message is on the target.
			// The passwords stay sealed for the retry (banjia job retry).
			a.mu.Unlock()
			a.setState(state.AccountPartial, reason)
			a.r.eventOf(job, id, "account.partial", wording.New("ev.account.partial", "id", id).Because(reason))
			return true
		}
		// The passwords stay sealed for the syncs after the MX switch,
		// until the job is closed or their retention runs out (cutover.go).
		a.mu.Unlock()
		a.setState(state.AccountSucceeded, reason)
		if resync {
			n := max(c.Imported-importedBefore, 0)
			code := "ev.account.synced"
			if n == 1 {
				code += ".1"
			}
			a.r.eventOf(job, id, "account.synced", wording.New(code, "id", id, "n", strconv.FormatInt(n, 10)).Because(reason))
			return true
		}
		a.r.eventOf(job, id, "account.succeeded", wording.New("ev.account.succeeded", "id", id).Because(reason))
		return true
	case errors.Is(err, errStopped) || a.edge.Err() != nil:
		if h := a.takeHold(); h != nil {
			a.mu.Lock()
			if a.cps != nil {
				a.recount()
			}
			a.mu.Unlock()
			a.setState(h.to, h.reason())
			a.r.eventOfBy(h.who, job, id, h.kind(), h.line(id))
			return h.to.Finished()
		}
		a.setState(state.AccountRunning, wording.Reason{})
		return false
	default:
		reason := fault.WhyOf(err)
		a.mu.Lock()
		if a.cps != nil {
			a.recount()
		}
		a.mu.Unlock()
		a.setState(state.AccountFailed, reason)
		a.r.eventOf(job, id, "account.failed", wording.New("ev.account.failed", "id", id).Because(reason))
		return true
	}
}

func (a *accountRun) endpoints() (src, dst mail.Endpoint, err error) {
	src, dst = a.job.Source, a.job.Target
	src.User, dst.User = a.acct.Source, a.acct.Target
	// A credential past its retention is not used, even before the wipe
	// between rounds reaches it.
	now := time.Now()
	acctSecrets := !state.Expired(a.job.SecretsDeadline(a.acct), now)
	jobSecrets := !state.Expired(a.job.JobSecretsDeadline(), now)
	if acctSecrets {
		if src.Password, err = a.r.store.Unseal(a.acct.SourceSecret); err != nil {
			return src, dst, fault.New(fault.Account, "cannot read the stored old password", err)
		}
		if dst.Password, err = a.r.store.Unseal(a.acct.TargetSecret); err != nil {
			return src, dst, fault.New(fault.Account, "cannot read the stored new password", err)
		}
	}
	if dst.Password == "" && len(a.job.TargetAdminSecret) > 0 && jobSecrets {
		// Target reached through an admin (e.g. a Dovecot master user): act as the member.
		dst.User, dst.AuthzID = a.job.Target.User, a.acct.Target
		if dst.Password, err = a.r.store.Unseal(a.job.TargetAdminSecret); err != nil {
			return src, dst, fault.New(fault.Account, "cannot read the stored target admin password", err)
		}
	}
	if src.Password == "" && len(a.job.SourceAdminSecret) > 0 && jobSecrets {
		// Delegated (无感搬家): the migration admin opens the member's mailbox.
		secret, err := a.r.store.Unseal(a.job.SourceAdminSecret)
		if err != nil {
			return src, dst, fault.New(fault.Account, "cannot read the stored source admin password", err)
		}
		d := a.job.Delegation
		if d == nil {
			d = &mail.Delegation{Method: mail.DelegateAuthzID}
		}
		src = d.For(a.job.Source, a.acct.Source, secret)
	}
	src = OnServer(src, a.acct.Server)
	if src.Password == "" {
		return src, dst, fault.Coded(fault.Account, wording.New("nopassword"), nil)
	}
	return src, dst, nil
}

// pass is one attempt at the whole account: list folders, then copy every
// folder through the lanes.
func (a *accountRun) pass(ctx context.Context) error {
	srcEP, dstEP, err := a.endpoints()
	if err != nil {
		return err
	}
	// A retried pass keeps what the last one did in memory: reloading would
	// drop progress not yet flushed.
	a.mu.Lock()
	loaded := a.cps != nil
	a.mu.Unlock()
	if !loaded {
		cps, err := a.r.store.Checkpoints(a.job.ID, a.acct.ID)
		if err != nil {
			return fault.New(fault.Account, "cannot read checkpoints", err)
		}
		a.mu.Lock()
		a.cps = cps
		a.doubts.loadLocked(cps)
		a.mu.Unlock()
	}

	var src sources.Source
	var dst sinks.Sink
	err = a.retryConnect(ctx, srcEP.Addr(), func() (err error) {
		if src, err = a.r.cfg.OpenSource(ctx, srcEP); err != nil {
			src = nil
		}
		return err
	}, func() {
		src.Close()
		src = nil
	})
	if err != nil {
		if src != nil {
			src.Close()
		}
		return err
	}
	// Closed as soon as every folder is listed (the lanes have their own
	// sessions): the source then sees the account's session only while it
	// holds its place among the accounts copied at once.
	closeSrc := sync.OnceFunc(func() { src.Close() })
	defer closeSrc()
	err = a.retryConnect(ctx, dstEP.Addr(), func() (err error) {
		if dst, err = a.r.cfg.OpenSink(ctx, dstEP); err != nil {
			dst = nil
		}
		return err
	}, func() {
		dst.Close()
		dst = nil
	})
	if err != nil {
		if dst != nil {
			dst.Close()
		}
		return err
	}
	// Closed with the source's, for the same reason: the lanes have their
	// own.
	closeDst := sync.OnceFunc(func() { dst.Close() })
	defer closeDst()
	fm, err := mapFolders(ctx, src, dst, a.job.Options.Renames)
	if err != nil {
		return err
	}
	folders, names, onTarget := fm.folders, fm.names, fm.onTarget
	a.recheck(onTarget)
	a.noteLeftBehind(folders)
	// A source whose member never subscribed anything does not use
	// subscriptions: every folder is subscribed on the target, or clients
	// that show only subscribed folders would hide the mail.
	subscribeAll := true
	for _, f := range folders {
		if !f.Unsubscribed && !strings.EqualFold(f.Name, "INBOX") {
			subscribeAll = false
		}
	}
	a.setState(state.AccountRunning, wording.Reason{})
	if !a.copying {
		// Once a run: a pass tried again on a flaky link is not news.
		a.copying = true
		a.r.eventOf(a.job.ID, a.acct.ID, "account.copying", wording.New("ev.account.copying", "id", a.acct.ID, "n", strconv.Itoa(len(folders))))
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.work, a.workOnce = make(chan struct{}), &sync.Once{}
	batches := newBatchQueue(a.r.cfg.Lanes)
	g, gctx := errgroup.WithContext(ctx)
	// The lanes and the listing wait on edge: done at the account's
	// boundary, or when the pass fails.
	edge, release := boundary(gctx, a.edge)
	defer release()
	for i := 0; i < a.r.cfg.Lanes; i++ {
		g.Go(func() error { return atBoundary(a.lane(gctx, edge, srcEP, dstEP, batches)) })
	}
	if a.job.Options.DedupeAcrossFolders {
		// Labels first, All Mail last: it keeps only what no label had.
		sort.SliceStable(folders, func(i, j int) bool { return !isAllMail(folders[i]) && isAllMail(folders[j]) })
		a.seen = map[string]bool{}
	}
	g.Go(func() error {
		for _, f := range folders {
			if a.skipFolder(f) {
				continue
			}
			if subscribeAll {
				f.Unsubscribed = false
			}
			if err := a.folder(gctx, edge, src, dst, f, names[f.Name], onTarget, batches); err != nil {
				batches.close()
				return atBoundary(err)
			}
		}
		batches.close()
		closeSrc()
		closeDst()
		// Every batch is with a lane: the next account may start.
		if err := batches.drained(edge); err != nil {
			return atBoundary(err)
		}
		a.place.give()
		return nil
	})
	err = g.Wait()
	if err == nil && errors.Is(context.Cause(a.edge), errStopped) {
		return errStopped
	}
	return err
}

// atBoundary is nil for a stop at a message boundary: returned to the
// pass's errgroup as an error, it would cancel the other lanes' connections
// with an APPEND in flight, leaving that message in doubt. The pass sees
// the stop in its edge's cause.
func atBoundary(err error) error {
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

// boundary is a message boundary for work under io: done, with edge's
// cause, when edge is (the account stops after the message in progress),
// and with io's when io is (the connections are cut).
func boundary(io, edge context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(io)
	if edge.Err() != nil {
		// At once, not when AfterFunc's goroutine runs: a stop that came
		// first is seen by the first check.
		cancel(context.Cause(edge))
	}
	unhook := context.AfterFunc(edge, func() { cancel(context.Cause(edge)) })
	return ctx, func() {
		unhook()
		cancel(nil)
	}
}

func isAllMail(f mail.Folder) bool {
	if f.SpecialUse == mail.SpecialAll {
		return true
	}
	name := f.Name
	if f.Delim != 0 {
		if i := strings.LastIndex(name, string(f.Delim)); i >= 0 {
			name = name[i+1:]
		}
	}
	return strings.EqualFold(name, "All Mail") || name == "所有邮件"
}

// retryConnect tries to connect to addr with backoff while the failures are
// transient. It shares the account's patience with the passes: a server
// that cannot be reached fails the account after ConnectFor, not after
// ConnectFor for each pass; and it shares what other accounts learnt about
// addr (outages). While it waits to try again the account gives up its
// place, so accounts whose servers answer copy meanwhile; once connected it
// needs a place again, and if none is free it closes (shut) the session
// it just opened rather than hold it idle through the wait. A shard
// (shards.go) counts the account's source session among its places, so
// there the account keeps its place while it waits: its source session
// may be open (waiting for the target), and a place given up would let
// another account open one more.
func (a *accountRun) retryConnect(ctx context.Context, addr string, open func() error, shut func()) error {
	gaveUp := false
	for attempt := 1; ; attempt++ {
		err := a.r.outages.open(ctx, addr, a.r.cfg.ConnectFor, open)
		if err == nil {
			if !gaveUp || a.place.tryTake() {
				return nil
			}
			// No place is free: the new session would sit idle (and count
			// against the server's connections) for as long as the wait
			// lasts. It is closed, and opened again once the place is held.
			shut()
			if err := a.place.take(a.edge); err != nil {
				return err
			}
			gaveUp = false
			continue
		}
		if fault.Classify(err) != fault.Retry || a.pat.failed() {
			return err
		}
		a.r.cfg.Log.Warn("cannot connect; retrying", "account", a.acct.ID, "attempt", attempt, "err", err)
		if !a.r.placeFirst {
			gaveUp = a.place.give() || gaveUp
		}
		if !sleep(a.edge, backoff(a.r.cfg.RetryBase, a.r.cfg.RetryMax, attempt, fault.Wait(err))) {
			return context.Cause(a.edge)
		}
	}
}

func (a *accountRun) skipFolder(f mail.Folder) bool {
	role := sinks.Role(f)
	o := a.job.Options
	switch {
	case systemFolderLeft(f, o):
		return true
	case o.SkipJunkTrash && (role == mail.SpecialJunk || role == mail.SpecialTrash):
		return true
	case o.SkipCustomFolders && role == "" && !strings.EqualFold(f.Name, "INBOX"):
		return true
	case FolderExcluded(f, o.Excludes):
		return true
	}
	return false
}
