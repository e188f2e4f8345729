package state

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The event log is keyed by sequence number, in the order events happen;
// a job's or an account's history, or a day of it, is found by cursor
// ranges over three indexes written in the same transaction as the event:
//
//   - evtime/<time><seq>: every event by time;
//   - evjob/<job> NUL <time><seq>: a job's events by time;
//   - evacct/<job> NUL <account> NUL <time><seq>: an account's.
//
// <time> is the event's Unix nanoseconds and <seq> its key in events, 8
// bytes big-endian each, so keys sort by time and a key names its event.
// The values are empty. Open builds the indexes once for a file written
// before they existed.

var (
	bEvTime = []byte("evtime")
	bEvJob  = []byte("evjob")
	bEvAcct = []byte("evacct")
)

// MaxEventPage caps one page of the log.
const MaxEventPage = 1000

func eventSuffix(e *Event) []byte {
	var k [16]byte
	// UnixNano is undefined outside 1678-2262 (a zero time is year 1).
	var n int64
	switch {
	case e.Time.Before(time.Unix(0, 0)):
	case e.Time.After(time.Unix(0, math.MaxInt64)):
		n = math.MaxInt64
	default:
		n = e.Time.UnixNano()
	}
	binary.BigEndian.PutUint64(k[:8], uint64(n))
	binary.BigEndian.PutUint64(k[8:], e.Seq)
	return k[:]
}

func jobPrefix(job string) []byte { return append([]byte(job), 0) }

func accountPrefix(job, account string) []byte {
	return append(append(jobPrefix(job), account...), 0)
}

// indexKeys are the index entries of an event, by bucket.
func indexKeys(e *Event) map[string][]byte {
	suf := eventSuffix(e)
	out := map[string][]byte{string(bEvTime): suf}
	if e.Job != "" {
		out[string(bEvJob)] = append(jobPrefix(e.Job), suf...)
	}
	if e.Account != "" {
		out[string(bEvAcct)] = append(accountPrefix(e.Job, e.Account), suf...)
	}
	return out
}

func indexEvent(tx *bolt.Tx, e *Event) error {
	for b, k := range indexKeys(e) {
		if err := tx.Bucket([]byte(b)).Put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// openEventIndex makes the indexes, indexing every event of a file
// written before they were kept.
func openEventIndex(tx *bolt.Tx) error {
	if tx.Bucket(bEvTime) != nil {
		return nil
	}
	for _, b := range [][]byte{bEvTime, bEvJob, bEvAcct} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	evs := tx.Bucket(bEvents)
	if evs == nil {
		return nil
	}
	return evs.ForEach(func(k, v []byte) error {
		e, err := decodeEvent(k, v)
		if err != nil {
			return err
		}
		return indexEvent(tx, e)
	})
}

// dropJobEvents deletes a job's events and their index entries, found by
// the job's index rather than by reading the whole log.
func dropJobEvents(tx *bolt.Tx, job string) error {
	evs, jb := tx.Bucket(bEvents), tx.Bucket(bEvJob)
	prefix := jobPrefix(job)
	var keys [][]byte
	c := jb.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		seq := k[len(k)-8:]
		if v := evs.Get(seq); v != nil {
			if e, err := decodeEvent(seq, v); err == nil {
				for b, ik := range indexKeys(e) {
					if err := tx.Bucket([]byte(b)).Delete(ik); err != nil {
						return err
					}
				}
			}
			if err := evs.Delete(seq); err != nil {
				return err
			}
		}
		if err := jb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// EventPage is one page of the log.
type EventPage struct {
	Events []*Event
	// Next, when not "", is the query's From for the following page.
	Next string `json:",omitempty"`
	// Read counts the events decoded to find the page: what it cost.
	Read int
}

// QueryEvents reads one page of the events q picks: q.Limit of them (at
// most MaxEventPage; 0 is 100), newest first unless q.Oldest.
func (s *Store) QueryEvents(q EventQuery) (*EventPage, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > MaxEventPage {
		q.Limit = MaxEventPage
	}
	page := &EventPage{}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		page.Next, page.Read, err = walkEvents(tx, q, func(e *Event) error {
			page.Events = append(page.Events, e)
			return nil
		})
		return err
	})
	return page, err
}

// EachEvent gives fn every event q picks (all of them when q.Limit is 0),
// in one read transaction: an export streams the log without holding it.
func (s *Store) EachEvent(q EventQuery, fn func(*Event) error) error {
	return s.view(func(tx *bolt.Tx) error {
		_, _, err := walkEvents(tx, q, fn)
		return err
	})
}

// walkEvents steps over the narrowest index for q between its time
// bounds and gives fn the events that match; it returns where the next
// page starts (when it stopped at q.Limit) and how many events it read.
func walkEvents(tx *bolt.Tx, q EventQuery, fn func(*Event) error) (next string, read int, err error) {
	var b *bolt.Bucket
	var prefix []byte
	switch {
	case q.Account != "" && q.Job != "":
		b, prefix = tx.Bucket(bEvAcct), accountPrefix(q.Job, q.Account)
	case q.Job != "":
		b, prefix = tx.Bucket(bEvJob), jobPrefix(q.Job)
	default:
		b, prefix = tx.Bucket(bEvTime), nil
	}
	bound := func(t *Event) []byte { return append(bytes.Clone(prefix), eventSuffix(t)...) }
	lo := bound(&Event{Time: q.Since})
	var hi []byte // exclusive; nil: the prefix's end
	if !q.Until.IsZero() {
		hi = bound(&Event{Time: q.Until})
	}
	if q.From != "" {
		from, err := hex.DecodeString(q.From)
		if err != nil || len(from) != 16 {
			return "", 0, fmt.Errorf("page %q: not one this log gave", q.From)
		}
		at := append(bytes.Clone(prefix), from...)
		if q.Oldest {
			if bytes.Compare(at, lo) > 0 {
				lo = at
			}
		} else if hi == nil || bytes.Compare(at, hi) < 0 {
			hi = at
		}
	}
	evs := tx.Bucket(bEvents)
	c := b.Cursor()
	var k []byte
	if q.Oldest {
		k, _ = c.Seek(lo)
		if q.From != "" && k != nil && bytes.Equal(k, lo) {
			// From is the last event of the page before.
			k, _ = c.Next()
		}
	} else {
		if hi == nil {
			k = lastWithPrefix(c, prefix)
		} else if k, _ = c.Seek(hi); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
	}
	n := 0
	for ; k != nil && bytes.HasPrefix(k, prefix); k = step(c, q.Oldest) {
		if q.Oldest && hi != nil && bytes.Compare(k, hi) >= 0 || !q.Oldest && bytes.Compare(k, lo) < 0 {
			break
		}
		seq := k[len(k)-8:]
		v := evs.Get(seq)
		if v == nil {
			continue
		}
		read++
		e, err := decodeEvent(seq, v)
		if err != nil {
			return "", read, err
		}
		if !q.Match(e) {
			continue
		}
		if err := fn(e); err != nil {
			return "", read, err
		}
		if n++; q.Limit > 0 && n >= q.Limit {
			return hex.EncodeToString(k[len(prefix):]), read, nil
		}
	}
	return "", read, nil
}

func step(c *bolt.Cursor, forward bool) []byte {
	if forward {
		k, _ := c.Next()
		return k
	}
	k, _ := c.Prev()
	return k
}

// lastWithPrefix places c on the last key starting with prefix (or where
// no such key is, a key that does not).
func lastWithPrefix(c *bolt.Cursor, prefix []byte) []byte {
	if len(prefix) == 0 {
		k, _ := c.Last()
		return k
	}
	// The prefix ends in NUL: the same bytes ending in 1 sort right after
	// every key under it.
	after := bytes.Clone(prefix)
	after[len(after)-1] = 1
	k, _ := c.Seek(after)
	if k == nil {
		k, _ = c.Last()
		return k
	}
	k, _ = c.Prev()
	return k
}
