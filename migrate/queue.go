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
	folders []*folderBatches // with batches waiting, in the order first queued
	holds   map[string]int   // target folder -> lanes working in it
	closed  bool
	changed chan struct{} // closed and replaced on every change
	done    chan struct{} // closed once the queue is closed and empty
}

// folderBatches are one target folder's batches, in the order to copy.
type folderBatches struct {
	name    string
	batches []*batch
}

func newBatchQueue(lanes int) *batchQueue {
	return &batchQueue{lanes: max(lanes, 1), holds: map[string]int{}, changed: make(chan struct{}), done: make(chan struct{})}
}

// lanePlace is what one lane holds in the queue.
type lanePlace struct{ folder string }

func (q *batchQueue) notifyLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
	if q.closed && len(q.folders) == 0 {
		select {
		case <-q.done:
		default:
			close(q.done)
		}
	}
}

// until runs try under the lock until it reports done, waiting for the
// queue to change in between, or until ctx (a boundary: see Runner.round)
// is done.
func (q *batchQueue) until(ctx context.Context, try func() bool) error {
	for {
		q.mu.Lock()
		ok := try()
		ch := q.changed
		q.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// put queues a batch. It waits while batches of as many other folders as
// there are lanes are queued: more would only hold listings in memory.
func (q *batchQueue) put(ctx context.Context, b *batch) error {
	return q.until(ctx, func() bool {
		for _, f := range q.folders {
			if f.name == b.target.Name {
				f.batches = append(f.batches, b)
				q.notifyLocked()
				return true
			}
		}
		if len(q.folders) >= q.lanes {
			return false
		}
		q.folders = append(q.folders, &folderBatches{name: b.target.Name, batches: []*batch{b}})
		q.notifyLocked()
		return true
	})
}

// close says no more batches come.
func (q *batchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.notifyLocked()
	q.mu.Unlock()
}

// drained waits until every batch is with a lane.
func (q *batchQueue) drained(ctx context.Context) error {
	return q.until(ctx, func() bool { return len(q.folders) == 0 })
}

// finished is closed once the queue is closed and empty: with nothing ever
// queued, a lane waiting for work ends without logging in.
func (q *batchQueue) finished() <-chan struct{} { return q.done }

// take gives the lane its next batch, waiting for one; ok is false once
// the queue is closed and empty. What the lane held before is given up.
func (q *batchQueue) take(ctx context.Context, p *lanePlace) (b *batch, ok bool, err error) {
	err = q.until(ctx, func() bool {
		if b = q.pickLocked(p); b != nil || q.closed {
			return true
		}
		// Nothing to take: what the lane was in is no longer its own.
		q.releaseLocked(p)
		return false
	})
	return b, b != nil, err
}

// tryTake is take without waiting; more is false once the queue is closed
// and empty.
func (q *batchQueue) tryTake(p *lanePlace) (b *batch, more bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	b = q.pickLocked(p)
	return b, b != nil || !q.closed
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
// else the first batch queued; nil when nothing is queued.
func (q *batchQueue) pickLocked(p *lanePlace) *batch {
	if len(q.folders) == 0 {
		return nil
	}
	prev := p.folder
	q.releaseLocked(p)
	i := -1
	for k, f := range q.folders {
		if f.name == prev && q.holds[prev] == 0 {
			i = k
			break
		}
		if i < 0 && q.holds[f.name] == 0 {
			i = k
		}
	}
	if i < 0 {
		i = 0
	}
	f := q.folders[i]
	b := f.batches[0]
	if f.batches = f.batches[1:]; len(f.batches) == 0 {
		q.folders = append(q.folders[:i], q.folders[i+1:]...)
	}
	p.folder = f.name
	q.holds[p.folder]++
	q.notifyLocked()
	return b
}
