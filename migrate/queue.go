package migrate

import (
	"context"
	"sync"
)

// batchQueue hands an account's batches to its lanes, keeping each lane in
// a target folder of its own while there is one: two sessions appending
// into one mailbox make the server take the mailbox's index lock in turn
// and read the other session's changes before each save. Dovecot spent
// measurably more on each message that way (about 2 more read calls per
// message with two lanes in one folder than with one lane a folder; see
// docs/performance.md). Lanes share a folder only when no other folder has
// work left, so an account with a single large folder still uses them all.
//
// The folder listing runs ahead of the lanes by at most as many folders as
// there are lanes: a folder's batches hold only the message list, already
// in memory once the folder is listed.
type batchQueue struct {
	lanes int

	mu      sync.Mutex
	pending []*batch       // in the order queued; within a folder, the order to copy
	holds   map[string]int // target folder -> lanes working in it
	closed  bool
	changed chan struct{} // closed and replaced on every change
}

func newBatchQueue(lanes int) *batchQueue {
	return &batchQueue{lanes: max(lanes, 1), holds: map[string]int{}, changed: make(chan struct{})}
}

// lanePlace is what one lane holds in the queue.
type lanePlace struct{ folder string }

func (q *batchQueue) notifyLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// wait blocks until the queue changes, or the run ends.
func (q *batchQueue) wait(ctx context.Context, stop <-chan struct{}, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-stop:
		return errStopped
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// foldersLocked counts the folders with queued batches, other than except.
func (q *batchQueue) foldersLocked(except string) int {
	seen := map[string]bool{}
	for _, b := range q.pending {
		if k := b.target.Name; k != except {
			seen[k] = true
		}
	}
	return len(seen)
}

// put queues a batch. It waits while batches of as many other folders as
// there are lanes are queued: more would only hold listings in memory.
func (q *batchQueue) put(ctx context.Context, stop <-chan struct{}, b *batch) error {
	for {
		q.mu.Lock()
		if q.foldersLocked(b.target.Name) < q.lanes {
			q.pending = append(q.pending, b)
			q.notifyLocked()
			q.mu.Unlock()
			return nil
		}
		ch := q.changed
		q.mu.Unlock()
		if err := q.wait(ctx, stop, ch); err != nil {
			return err
		}
	}
}

// close says no more batches come.
func (q *batchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.notifyLocked()
	q.mu.Unlock()
}

// drained waits until every batch is with a lane.
func (q *batchQueue) drained(ctx context.Context, stop <-chan struct{}) error {
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.mu.Unlock()
			return nil
		}
		ch := q.changed
		q.mu.Unlock()
		if err := q.wait(ctx, stop, ch); err != nil {
			return err
		}
	}
}

// take gives the lane its next batch, waiting for one; ok is false once
// the queue is closed and empty. What the lane held before is given up.
func (q *batchQueue) take(ctx context.Context, stop <-chan struct{}, p *lanePlace) (b *batch, ok bool, err error) {
	for {
		q.mu.Lock()
		b, done := q.pickLocked(p)
		ch := q.changed
		q.mu.Unlock()
		if b != nil {
			return b, true, nil
		}
		if done {
			return nil, false, nil
		}
		// Nothing to take: what the lane was in is no longer its own.
		q.leave(p)
		if err := q.wait(ctx, stop, ch); err != nil {
			return nil, false, err
		}
	}
}

// tryTake is take without waiting; more is false once the queue is closed
// and empty.
func (q *batchQueue) tryTake(p *lanePlace) (b *batch, more bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	b, done := q.pickLocked(p)
	return b, !done
}

// leave gives up what the lane holds (the lane is ending).
func (q *batchQueue) leave(p *lanePlace) {
	q.mu.Lock()
	q.releaseLocked(p)
	q.mu.Unlock()
}

func (q *batchQueue) releaseLocked(p *lanePlace) {
	if p.folder == "" {
		return
	}
	if q.holds[p.folder]--; q.holds[p.folder] <= 0 {
		delete(q.holds, p.folder)
	}
	p.folder = ""
	q.notifyLocked()
}

// pickLocked chooses for a lane: the next batch of the folder it was in if
// no other lane is there, else the first batch of a folder no lane is in,
// else the first batch queued. done is true when nothing is queued and
// nothing more will be.
func (q *batchQueue) pickLocked(p *lanePlace) (b *batch, done bool) {
	if len(q.pending) == 0 {
		return nil, q.closed
	}
	prev := p.folder
	q.releaseLocked(p)
	i := -1
	if prev != "" && q.holds[prev] == 0 {
		for k, c := range q.pending {
			if c.target.Name == prev {
				i = k
				break
			}
		}
	}
	if i < 0 {
		for k, c := range q.pending {
			if q.holds[c.target.Name] == 0 {
				i = k
				break
			}
		}
	}
	if i < 0 {
		i = 0
	}
	b = q.pending[i]
	q.pending = append(q.pending[:i], q.pending[i+1:]...)
	p.folder = b.target.Name
	q.holds[p.folder]++
	q.notifyLocked()
	return b, false
}

// finished is closed once the queue is closed and empty: with nothing
// queued ever, a lane waiting for work can end without logging in.
func (q *batchQueue) finished() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for {
			q.mu.Lock()
			done := q.closed && len(q.pending) == 0
			changed := q.changed
			q.mu.Unlock()
			if done {
				close(ch)
				return
			}
			<-changed
		}
	}()
	return ch
}
