package migrate

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/wording"
)

// A lane copies an account's batches over its own source and sink
// sessions. For each batch it goes round: connect, settle (look up on the
// target what is in doubt), copy (fetch, append, record each answer), and
// after a failure ask its pacer what to do next.
type lane struct {
	a *accountRun
	// io carries the sessions: cut when the pass fails, or Grace after a
	// stop. edge is the message boundary: done at a stop, and with io.
	io, edge     context.Context
	srcEP, dstEP mail.Endpoint
	batches      *batchQueue
	place        *lanePlace
	slot         chan struct{} // the source host's connections
	held         bool          // a place in slot and among the runner's lanes
	src          sources.Source
	dst          sinks.Sink
	// next is a batch taken early (prefetched); noMore says the queue
	// was found closed and empty meanwhile.
	next   *batch
	noMore bool
	pace   *pacer
}

// work is the batch in a lane's hands.
type work struct {
	b *batch
	// remaining are the messages not settled yet.
	remaining []mail.Message
	// doubt are messages that may be on the target already: sent in full
	// in this batch with their answers lost, or suspected by the folder's
	// preparation. They are looked up before anything is sent.
	doubt []mail.Message
	// earlier says doubt still holds suspects of the folder's preparation
	// (an interrupted run's).
	earlier bool
}

// round is what one copy round did.
type round struct {
	asked     []mail.Message
	processed map[uint32]bool // settled: copied or failed
	bare      map[uint32]bool // their keywords refused: sent again without
}

// lane copies batches until the queue is closed and empty, or it must end.
func (a *accountRun) lane(io, edge context.Context, srcEP, dstEP mail.Endpoint, batches *batchQueue) error {
	l := &lane{a: a, io: io, edge: edge, srcEP: srcEP, dstEP: dstEP, batches: batches,
		place: &lanePlace{}, slot: a.r.hostSlot(throttleKey(srcEP)), pace: newPacer(&a.r.cfg)}
	defer batches.leave(l.place)
	defer l.hangUp()
	// Log in as soon as there is work, not when the first batch is cut;
	// with nothing to copy the lanes never log in.
	select {
	case <-a.work:
		if err := l.connect(); err != nil {
			// The batch loop connects again and handles the error.
			l.hangUp()
		}
	case <-batches.finished():
		return nil
	case <-edge.Done():
	}
	for {
		b, ok, err := l.take()
		if err != nil || !ok {
			return err
		}
		if err := l.copyBatch(b); err != nil {
			return err
		}
	}
}

func (l *lane) take() (*batch, bool, error) {
	if b := l.next; b != nil {
		l.next = nil
		return b, true, nil
	}
	if l.noMore {
		return nil, false, nil
	}
	return l.batches.take(l.edge, l.place)
}

// copyBatch goes round until every message of b is settled.
func (l *lane) copyBatch(b *batch) error {
	w := &work{b: b, remaining: b.msgs, doubt: append([]mail.Message(nil), b.doubt...)}
	w.earlier = len(w.doubt) > 0
	l.pace.batch()
	for len(w.remaining) > 0 {
		if l.edge.Err() != nil {
			return context.Cause(l.edge)
		}
		if d := l.a.r.hostDelay(throttleKey(l.srcEP), l.dstEP.Host); d > 0 && !sleep(l.edge, d) {
			return context.Cause(l.edge)
		}
		err := l.connect()
		if err == nil && len(w.doubt) > 0 {
			if err = l.settle(w); errors.Is(err, errTwinInFlight) {
				// Found ones are recorded; look for the rest again once
				// that APPEND is answered.
				if !sleep(l.edge, l.pace.twinWait()) {
					return context.Cause(l.edge)
				}
				continue
			}
		}
		if err != nil && fault.Classify(err) == fault.Retry {
			// Not the message's fault: wait and connect again, for a while.
			l.hangUp()
			d := l.pace.connectFailed(err)
			if d.act != throttle {
				l.a.r.cfg.Log.Warn("lane cannot connect; retrying", "account", l.a.acct.ID, "n", l.pace.connectFails, "err", err)
			}
			if err := l.obey(d, w); err != nil {
				return err
			}
			if d.act == retry && !sleep(l.edge, d.wait) {
				return context.Cause(l.edge)
			}
			continue
		}
		l.pace.connected()
		var r round
		if err == nil {
			if r, err = l.copyRound(w); len(r.asked) == 0 && err == nil {
				w.remaining = nil
				continue
			}
		}
		if len(r.processed) > 0 {
			l.pace.moved()
			w.remaining = without(w.remaining, r.processed)
		}
		var me *mail.MessageError
		if errors.As(err, &me) {
			// One unreadable message: fail it alone, go on with the rest.
			l.a.failed(b, me.Message, fault.WhyOf(me.Err))
			w.remaining = without(w.remaining, map[uint32]bool{me.Message.UID: true})
			continue
		}
		if err == nil {
			l.vanished(w, r)
			continue
		}
		d := l.pace.afterRound(err, context.Cause(l.edge), len(r.processed) > 0, w.doubt)
		if d.act == stop || d.act == failAccount {
			return d.err
		}
		l.hangUp()
		if err := l.obey(d, w); err != nil {
			return err
		}
		if d.act == throttle || len(w.remaining) == 0 {
			// The batch is settled after all (its last answers came in
			// before the connection failed, or its last message was
			// given up): nothing to retry.
			continue
		}
		l.a.r.cfg.Log.Warn("lane retry", "account", l.a.acct.ID, "folder", b.folder.Name, "first", w.remaining[0].UID, "n", l.pace.noProgress, "err", err)
		if !sleep(l.edge, d.wait) {
			return context.Cause(l.edge)
		}
	}
	return nil
}

// obey does what a decision asks short of its wait; an error ends the lane.
func (l *lane) obey(d decision, w *work) error {
	switch d.act {
	case stop, failAccount:
		return d.err
	case throttle:
		// Slow every lane on the host (the mailbox, for Graph) down for as long as it asks; not the
		// message's fault.
		l.a.r.slowHost(throttleKey(l.srcEP), d.wait)
		if d.err != nil {
			return d.err
		}
		l.a.r.cfg.Log.Info("throttled", "account", l.a.acct.ID, "host", l.srcEP.Host, "wait", d.wait)
	case giveUp:
		l.a.failed(w.b, w.remaining[0], d.reason)
		w.remaining = w.remaining[1:]
		return d.err
	}
	return nil
}

// settle looks up on the target what is in doubt, before any of it is
// sent again: answers were lost with a connection. Those found are
// recorded as copied at once, even if a later lookup fails.
func (l *lane) settle(w *work) error {
	unsettled := len(w.doubt)
	doubt, found, err := l.a.settleDoubts(l.io, l.src, l.dst, w.b, w.doubt)
	w.doubt = doubt
	if len(w.doubt) < unsettled {
		l.pace.settled()
	}
	if len(found) > 0 {
		w.remaining = without(w.remaining, found)
		if w.earlier {
			// Found for the folder's preparation: the operator learns
			// that an interrupted run had copied them.
			n := 0
			for _, m := range w.b.doubt {
				if found[m.UID] {
					n++
				}
			}
			if n > 0 {
				l.a.r.eventOf(l.a.job.ID, l.a.acct.ID, "warning", wording.New("ev.already", "id", l.a.acct.ID, "n", strconv.Itoa(n), "folder", w.b.folder.Name))
			}
		}
	}
	if len(w.doubt) == 0 {
		w.earlier = false
	}
	return err
}

// copyRound fetches what is left of the batch and appends it, recording
// each answer as it comes; every answer owed is in before it returns.
func (l *lane) copyRound(w *work) (round, error) {
	r := round{asked: w.remaining, processed: map[uint32]bool{}, bare: map[uint32]bool{}}
	if l.pace.retrying() && len(r.asked) > 1 {
		r.asked = r.asked[:1]
	}
	if len(r.asked) == 0 {
		return r, nil
	}
	b := w.b
	pipe, _ := l.dst.(sinks.Pipeliner)
	// flew are the APPENDs of this round: answered (or in doubt) once the
	// round is flushed.
	var flew []mail.Message
	err := l.src.Fetch(l.io, b.folder, r.asked, func(body *mail.Body) error {
		if l.edge.Err() != nil {
			return context.Cause(l.edge)
		}
		m := body.Message
		l.a.doubts.sent(b, m)
		flew = append(flew, m)
		flags := body.Flags
		if l.a.isBare(b.folder.Name, m.UID) {
			flags = systemFlags(flags)
		}
		rd := l.a.r.rates.reader(l.io, l.srcEP.Host, body.Reader)
		if pipe != nil {
			// No round trip per message: the answer is recorded when it
			// comes, at the latest by Flush below.
			return pipe.Send(l.io, b.target, rd, body.Size, flags, body.Date,
				func(res sinks.Appended, err error) error { return l.record(w, &r, m, res, err) })
		}
		res, err := l.dst.Append(l.io, b.target, rd, body.Size, flags, body.Date)
		return l.record(w, &r, m, res, err)
	})
	if err == nil && pipe != nil && len(r.asked) == len(w.remaining) {
		l.prefetch()
	}
	if pipe != nil {
		// Whatever ended the fetch, the answers owed are recorded before
		// the batch is looked at again.
		if ferr := pipe.Flush(l.io); err == nil {
			err = ferr
		}
	}
	l.a.doubts.answered(b, flew...)
	return r, err
}

// prefetch asks the source for the next batch while the target answers
// for this one.
func (l *lane) prefetch() {
	pf, ok := l.src.(sources.Prefetcher)
	if !ok || l.next != nil || l.noMore {
		return
	}
	if nb, more := l.batches.tryTake(l.place); nb != nil {
		l.next = nb
		pf.Prefetch(l.io, nb.folder, nb.msgs)
	} else if !more {
		l.noMore = true
	}
}

// record takes the target's answer for one message.
func (l *lane) record(w *work, r *round, m mail.Message, res sinks.Appended, err error) error {
	b := w.b
	if err != nil && errors.Is(err, sinks.ErrKeywordsRefused) && l.io.Err() == nil {
		// Refused, so not stored: it goes again in this batch, without
		// its keywords.
		r.bare[m.UID] = true
		l.a.sendBare(b, m, err)
		return nil
	}
	if err != nil {
		if l.io.Err() != nil {
			// Cut short because the pass is ending, not refused: the
			// message may have been stored. The next pass looks for it
			// before sending it again.
			l.a.doubts.lostAnswer(b, m)
			return err
		}
		if fault.Classify(err) == fault.Message {
			r.processed[m.UID] = true
			l.a.failed(b, m, fault.WhyOf(err))
			return nil
		}
		if errors.Is(err, sinks.ErrInDoubt) {
			w.doubt = append(w.doubt, m)
			l.a.doubts.lostAnswer(b, m)
		}
		return err
	}
	r.processed[m.UID] = true
	l.a.done(b, m, res)
	return nil
}

// vanished records the messages asked for that the source did not return:
// they were expunged meanwhile.
func (l *lane) vanished(w *work, r round) {
	gone := map[uint32]bool{}
	for _, m := range r.asked {
		if !r.processed[m.UID] && !r.bare[m.UID] {
			l.a.vanished(w.b, m)
			gone[m.UID] = true
		}
	}
	w.remaining = without(w.remaining, gone)
}

// connect logs in where the lane has no session, both at once (each is a
// few round trips), first taking its places: the source host's limit, then
// the lanes' (see Runner.lanes).
func (l *lane) connect() error {
	if !l.held {
		select {
		case l.slot <- struct{}{}:
		case <-l.edge.Done():
			return context.Cause(l.edge)
		}
		select {
		case l.a.r.lanes <- struct{}{}:
			l.held = true
		case <-l.edge.Done():
			<-l.slot
			return context.Cause(l.edge)
		}
	}
	var srcErr, dstErr error
	var wg sync.WaitGroup
	if l.src == nil {
		wg.Go(func() {
			if l.src, srcErr = l.a.r.cfg.OpenSource(l.io, l.srcEP); srcErr != nil {
				l.src = nil
			}
		})
	}
	if l.dst == nil {
		wg.Go(func() {
			if l.dst, dstErr = l.a.r.cfg.OpenSink(l.io, l.dstEP); dstErr != nil {
				l.dst = nil
			}
		})
	}
	wg.Wait()
	// A lane that gets through ends any outage other accounts see.
	if srcErr == nil {
		l.a.r.outages.reached(l.srcEP.Addr())
	}
	if dstErr == nil {
		l.a.r.outages.reached(l.dstEP.Addr())
	}
	if srcErr != nil {
		return srcErr
	}
	return dstErr
}

// hangUp closes the lane's sessions and gives up its places.
func (l *lane) hangUp() {
	if l.src != nil {
		l.src.Close()
		l.src = nil
	}
	if l.dst != nil {
		l.dst.Close()
		l.dst = nil
	}
	if l.held {
		<-l.a.r.lanes
		<-l.slot
		l.held = false
	}
}

// sendBare records that the target refused a message's keywords: it is
// sent again without them, and the event log names what was dropped.
func (a *accountRun) sendBare(b *batch, m mail.Message, err error) {
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
	a.r.eventOf(a.job.ID, a.acct.ID, "warning", wording.New("ev.keywords.dropped", "id", a.acct.ID, "uid", strconv.FormatUint(uint64(m.UID), 10),
		"folder", b.folder.Name, "keywords", strings.Join(kw, " ")).Because(fault.WhyOf(err)))
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

func without(msgs []mail.Message, drop map[uint32]bool) []mail.Message {
	if len(drop) == 0 {
		return msgs
	}
	out := make([]mail.Message, 0, len(msgs))
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
