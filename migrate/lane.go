package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/fault"
)

// lane copies batches over its own source and sink sessions.
func (a *accountRun) lane(ctx, edge context.Context, srcEP, dstEP sources.Endpoint, batches *batchQueue) error {
	place := &lanePlace{}
	defer batches.leave(place)
	var src sources.Source
	var dst sinks.Sink
	slot := a.r.hostSlot(srcEP.Host)
	held := false
	closeAll := func() {
		if src != nil {
			src.Close()
			src = nil
		}
		if dst != nil {
			dst.Close()
			dst = nil
		}
		if held {
			<-a.r.lanes
			<-slot
			held = false
		}
	}
	defer closeAll()
	// next is a batch taken early (prefetched); noMore says the queue
	// was found closed and empty meanwhile.
	var next *batch
	noMore := false
	// Log in as soon as there is work, not when the first batch is cut;
	// with nothing to copy the lanes never log in.
	select {
	case <-a.work:
		if err := a.connect(ctx, edge, slot, &held, &src, &dst, srcEP, dstEP); err != nil {
			// The batch loop connects again and handles the error.
			closeAll()
		}
	case <-batches.finished():
		return nil
	case <-edge.Done():
	}
	poison := 0
	// The lane gives up (a message, or the account when it cannot even
	// connect) only after RetryFor without progress: a link that breaks
	// often but still moves mail is ridden out.
	pat := newPatience(a.r.cfg.Retries, a.r.cfg.RetryFor)
	// The account's servers answered when its pass began: a lane's waits
	// stop growing sooner than an account's that cannot reach them at all.
	// Waits of 30 s on a link that breaks every few hundred kilobytes left
	// a lane about ten tries in its budget to look up what it had in doubt
	// over the whole folder, and the account failed.
	linkUp := min(a.r.cfg.RetryMax, 16*a.r.cfg.RetryBase)
	for {
		var b *batch
		var ok bool
		if next != nil {
			b, ok, next = next, true, nil
		} else if noMore {
			return nil
		} else {
			var err error
			if b, ok, err = batches.take(edge, place); err != nil {
				return err
			}
		}
		if !ok {
			return nil
		}
		remaining := b.msgs
		noProgress, connectFails, throttled := 0, 0, 0
		twinWait := twinWaitFirst
		// doubt holds messages that may be on the target already: sent in
		// full in this batch with their answers lost, or suspected by the
		// folder's preparation.
		doubt := append([]sources.Message(nil), b.doubt...)
		earlier := len(doubt)
		for len(remaining) > 0 {
			if edge.Err() != nil {
				return context.Cause(edge)
			}
			if d := a.r.hostDelay(srcEP.Host, dstEP.Host); d > 0 && !sleep(edge, d) {
				return context.Cause(edge)
			}
			err := a.connect(ctx, edge, slot, &held, &src, &dst, srcEP, dstEP)
			processed := map[uint32]bool{}
			var asked []sources.Message
			if err == nil && len(doubt) > 0 {
				// Answers were lost with the connection: look on the target
				// before sending those messages again. Those found are
				// recorded as copied at once, even if a later lookup fails.
				var found map[uint32]bool
				unsettled := len(doubt)
				doubt, found, err = a.settleDoubts(ctx, src, dst, b, doubt)
				if len(doubt) < unsettled {
					connectFails = 0
					pat.progress()
				}
				if len(found) > 0 {
					remaining = without(remaining, found)
					if earlier > 0 {
						// Found for the folder's preparation: the operator
						// learns that an interrupted run had copied them.
						n := 0
						for _, m := range b.doubt {
							if found[m.UID] {
								n++
							}
						}
						if n > 0 {
							a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: %d message(s) of %q were already on the target from an interrupted run; not copied again", a.acct.ID, n, b.folder.Name))
						}
					}
				}
				if len(doubt) == 0 {
					earlier = 0
				}
				if errors.Is(err, errTwinInFlight) {
					// Found ones are recorded above; look for the rest again
					// once that APPEND is answered. Each look lists the
					// folder, so a long APPEND (a large message on a slow
					// link) is waited for ever more patiently.
					d := twinWait
					twinWait = min(2*twinWait, twinWaitMax)
					if !sleep(edge, d) {
						return context.Cause(edge)
					}
					continue
				}
			}
			if err != nil && fault.Classify(err) == fault.Retry && fault.Wait(err) > 0 {
				// The server is throttling: slow every lane on it down for as
				// long as it asks; not the message's fault.
				closeAll()
				if err := a.throttledBy(err, srcEP.Host, &throttled); err != nil {
					return err
				}
				continue
			}
			if err != nil && fault.Classify(err) == fault.Retry {
				// Not the message's fault: wait and connect again, for a while.
				closeAll()
				connectFails++
				a.r.cfg.Log.Warn("lane cannot connect; retrying", "account", a.acct.ID, "n", connectFails, "err", err)
				if pat.failed() {
					return fault.New(fault.Account, "cannot keep a connection: "+fault.Reason(err), err)
				}
				if !sleep(edge, backoff(a.r.cfg.RetryBase, linkUp, connectFails, fault.Wait(err))) {
					return context.Cause(edge)
				}
				continue
			}
			connectFails = 0
			// record takes the target's answer for one message.
			bare := map[uint32]bool{}
			record := func(m sources.Message, res sinks.Appended, err error) error {
				if err != nil && errors.Is(err, sinks.ErrKeywordsRefused) && ctx.Err() == nil {
					// Refused, so not stored: it goes again in this batch,
					// without its keywords.
					bare[m.UID] = true
					a.sendBare(b, m, err)
					return nil
				}
				if err != nil {
					if ctx.Err() != nil {
						// Cut short because the pass is ending, not refused:
						// the message may have been stored. The next pass
						// looks for it before sending it again.
						a.doubts.lostAnswer(b, m)
						return err
					}
					if fault.Classify(err) == fault.Message {
						processed[m.UID] = true
						a.failed(b, m, fault.Reason(err))
						return nil
					}
					if errors.Is(err, sinks.ErrInDoubt) {
						doubt = append(doubt, m)
						a.doubts.lostAnswer(b, m)
					}
					return err
				}
				processed[m.UID] = true
				a.done(b, m, res)
				return nil
			}
			if err == nil {
				asked = without(remaining, processed)
				if noProgress > 0 && len(asked) > 1 {
					// After a failure, ask for the failing message alone: a
					// whole batch streamed ahead would ride on the same
					// connection, and a reset discards what was buffered.
					asked = asked[:1]
				}
				if len(asked) == 0 {
					remaining = nil
					continue
				}
				pipe, _ := dst.(sinks.Pipeliner)
				// flew are the APPENDs of this round: answered (or in doubt)
				// once the round is flushed.
				var flew []sources.Message
				err = src.Fetch(ctx, b.folder, asked, func(body *sources.Body) error {
					if edge.Err() != nil {
						return context.Cause(edge)
					}
					m := body.Message
					a.doubts.sent(b, m)
					flew = append(flew, m)
					flags := body.Flags
					if a.isBare(b.folder.Name, m.UID) {
						flags = systemFlags(flags)
					}
					if pipe != nil {
						// No round trip per message: the answer is recorded
						// when it comes, at the latest by Flush below.
						return pipe.Send(ctx, b.target, body.Reader, body.Size, flags, body.Date,
							func(res sinks.Appended, err error) error { return record(m, res, err) })
					}
					res, err := dst.Append(ctx, b.target, body.Reader, body.Size, flags, body.Date)
					return record(m, res, err)
				})
				if pf, ok := src.(sources.Prefetcher); ok && err == nil && pipe != nil && next == nil && !noMore && len(asked) == len(remaining) {
					// While the target answers for this batch, ask the source
					// for the next one.
					if nb, more := batches.tryTake(place); nb != nil {
						next = nb
						pf.Prefetch(ctx, nb.folder, nb.msgs)
					} else if !more {
						noMore = true
					}
				}
				if pipe != nil {
					// Whatever ended the fetch, the answers owed are recorded
					// before the batch is looked at again.
					if ferr := pipe.Flush(ctx); err == nil {
						err = ferr
					}
				}
				a.doubts.answered(b, flew...)
			}
			if len(processed) > 0 {
				noProgress, poison, throttled = 0, 0, 0
				pat.progress()
				rest := remaining[:0:0]
				for _, m := range remaining {
					if !processed[m.UID] {
						rest = append(rest, m)
					}
				}
				remaining = rest
			}
			var me *sources.MessageError
			if errors.As(err, &me) {
				// One unreadable message: fail it alone, go on with the rest.
				a.failed(b, me.Message, fault.Reason(me.Err))
				rest := remaining[:0:0]
				for _, m := range remaining {
					if m.UID != me.Message.UID {
						rest = append(rest, m)
					}
				}
				remaining = rest
				continue
			}
			if err == nil {
				// The source did not return these: they were expunged meanwhile.
				gone := map[uint32]bool{}
				for _, m := range asked {
					if !processed[m.UID] && !bare[m.UID] {
						a.vanished(b, m)
						gone[m.UID] = true
					}
				}
				remaining = without(remaining, gone)
				continue
			}
			if errors.Is(err, errStopped) {
				return errStopped
			}
			if edge.Err() != nil {
				return context.Cause(edge)
			}
			if fault.Classify(err) == fault.Account || errors.Is(err, sources.ErrValidityChanged) {
				return err
			}
			if fault.Wait(err) > 0 && len(processed) == 0 {
				closeAll()
				if err := a.throttledBy(err, srcEP.Host, &throttled); err != nil {
					return err
				}
				continue
			}
			closeAll()
			giveUp := false
			if len(processed) == 0 {
				noProgress++
				giveUp = pat.failed()
			}
			if giveUp {
				// The same message keeps breaking the session: give it up.
				a.failed(b, remaining[0], fmt.Sprintf("failed %d times over %v: %s", noProgress, time.Since(pat.since).Round(time.Second), fault.Reason(err)))
				remaining = remaining[1:]
				noProgress = 0
				pat.progress()
				poison++
				if poison >= 3 {
					return fault.New(fault.Account, "the connection keeps failing: "+fault.Reason(err), err)
				}
			}
			if len(remaining) == 0 {
				// The batch is settled after all (its last answers came in
				// before the connection failed, or its last message was
				// given up): nothing to retry.
				continue
			}
			a.r.cfg.Log.Warn("lane retry", "account", a.acct.ID, "folder", b.folder.Name, "first", remaining[0].UID, "n", noProgress, "err", err)
			wait := backoff(a.r.cfg.RetryBase, linkUp, noProgress, fault.Wait(err))
			if len(doubt) > 0 {
				wait = max(wait, doubtGrace(doubt))
			}
			if !sleep(edge, wait) {
				return context.Cause(edge)
			}
		}
	}
}

func (a *accountRun) connect(ctx, edge context.Context, slot chan struct{}, held *bool,
	src *sources.Source, dst *sinks.Sink, srcEP, dstEP sources.Endpoint) error {
	if !*held {
		// The source host's limit, then the lanes' (see Runner.lanes).
		select {
		case slot <- struct{}{}:
		case <-edge.Done():
			return context.Cause(edge)
		}
		select {
		case a.r.lanes <- struct{}{}:
			*held = true
		case <-edge.Done():
			<-slot
			return context.Cause(edge)
		}
	}
	// Both logins at once: each is a few round trips.
	var srcErr, dstErr error
	var wg sync.WaitGroup
	if *src == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := a.r.cfg.OpenSource(ctx, srcEP)
			if err == nil {
				*src = s
			}
			srcErr = err
		}()
	}
	if *dst == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := a.r.cfg.OpenSink(ctx, dstEP)
			if err == nil {
				*dst = d
			}
			dstErr = err
		}()
	}
	wg.Wait()
	if srcErr != nil {
		return srcErr
	}
	return dstErr
}

// maxThrottled bounds how many throttling replies in a row a lane accepts
// before it gives the account up.
const maxThrottled = 200

func (a *accountRun) throttledBy(err error, host string, n *int) error {
	a.r.slowHost(host, fault.Wait(err))
	if *n++; *n > maxThrottled {
		return fault.New(fault.Account, "the server kept throttling requests: "+fault.Reason(err), err)
	}
	a.r.cfg.Log.Info("throttled", "account", a.acct.ID, "host", host, "wait", fault.Wait(err))
	return nil
}

// sendBare records that the target refused a message's keywords: it is
// sent again without them, and the event log names what was dropped.
func (a *accountRun) sendBare(b *batch, m sources.Message, err error) {
	a.mu.Lock()
	if a.bare == nil {
		a.bare = map[string]map[uint32]bool{}
	}
	if a.bare[b.folder.Name] == nil {
		a.bare[b.folder.Name] = map[uint32]bool{}
	}
	a.bare[b.folder.Name][m.UID] = true
	a.mu.Unlock()
	var kw []string
	for _, f := range m.Flags {
		if !strings.HasPrefix(f, `\`) {
			kw = append(kw, f)
		}
	}
	a.r.event(a.job.ID, a.acct.ID, "warning", fmt.Sprintf("%s: message UID %d in %q is copied without its keywords %s: %s",
		a.acct.ID, m.UID, b.folder.Name, strings.Join(kw, " "), fault.Reason(err)))
}

func (a *accountRun) isBare(folder string, uid uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bare[folder][uid]
}

// systemFlags is flags without keywords.
func systemFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			out = append(out, f)
		}
	}
	return out
}

func without(msgs []sources.Message, drop map[uint32]bool) []sources.Message {
	if len(drop) == 0 {
		return msgs
	}
	out := make([]sources.Message, 0, len(msgs))
	for _, m := range msgs {
		if !drop[m.UID] {
			out = append(out, m)
		}
	}
	return out
}

// sleep waits d unless ctx (a boundary) is done first; it reports whether
// the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
