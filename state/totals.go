package state

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A job of 100,000 accounts cannot be summed, nor one page of it found,
// by decoding every account on every request (that took seconds). So every
// write of an account also keeps, in the same transaction:
//
//   - totals/<job>: the job's Totals (accounts by state, summed counts);
//   - bystate/<job>/<state>/<account>: an empty key per account, so one
//     page of the accounts in a state is found by a cursor without reading
//     the others;
//   - bytarget/<new address, lower case> NUL <job> NUL <account>: which
//     jobs move into a new mailbox (the portal's sign-in, and the check
//     that one new address is in one job at a time).
//
// Both are derived from the accounts bucket and never the other way round:
// Open builds them for a file written before they existed, and a job whose
// totals are missing is summed by reading its accounts.

var (
	bTotals   = []byte("totals")
	bByState  = []byte("bystate")
	bByTarget = []byte("bytarget")
)

// Totals sum a job's accounts.
type Totals struct {
	Accounts int
	N        map[AccountState]int
	Counts   Counts
	// NoSecret counts the accounts not started that hold no old password:
	// in a member-triggered job, the members who have not started.
	NoSecret int
}

// Count adds (n = 1) or takes away (n = -1) one account.
func (t *Totals) Count(a *Account, n int) {
	if t.N == nil {
		t.N = map[AccountState]int{}
	}
	t.Accounts += n
	t.N[a.State] += n
	if t.N[a.State] == 0 {
		delete(t.N, a.State)
	}
	c := a.Counts
	if n < 0 {
		c = Counts{-c.ToImport, -c.Imported, -c.Failed, -c.Skipped, -c.Bytes}
	}
	t.Counts.Add(c)
	if a.State == AccountNotStarted && len(a.SourceSecret) == 0 {
		t.NoSecret += n
	}
}

// Waiting counts the members of job j who have not started (see
// Job.AwaitingMember).
func (t *Totals) Waiting(j *Job) int {
	if j.ModeOf() != ModeMember {
		return 0
	}
	return t.NoSecret
}

// tally is the totals and state index kept up to date by one write
// transaction: loaded when a job's first account is written, stored when
// the transaction ends.
type tally struct {
	tx   *bolt.Tx
	jobs map[string]*Totals
}

func newTally(tx *bolt.Tx) *tally { return &tally{tx: tx, jobs: map[string]*Totals{}} }

// put notes that account a of job replaces the record old (nil: a new
// account).
func (t *tally) put(job string, old []byte, a *Account) error {
	tot, ok := t.jobs[job]
	if !ok {
		var err error
		if tot, err = loadTotals(t.tx, job); err != nil {
			return err
		}
		t.jobs[job] = tot
	}
	idx, err := t.tx.Bucket(bByState).CreateBucketIfNotExists([]byte(job))
	if err != nil {
		return err
	}
	if old != nil {
		var was Account
		if err := json.Unmarshal(old, &was); err != nil {
			return fmt.Errorf("account %q of job %q: %w", a.ID, job, err)
		}
		tot.Count(&was, -1)
		if b := idx.Bucket(stateKey(was.State)); b != nil {
			if err := b.Delete([]byte(a.ID)); err != nil {
				return err
			}
		}
		if err := t.tx.Bucket(bByTarget).Delete(targetKey(was.Target, job, a.ID)); err != nil {
			return err
		}
	}
	if err := t.tx.Bucket(bByTarget).Put(targetKey(a.Target, job, a.ID), nil); err != nil {
		return err
	}
	tot.Count(a, 1)
	b, err := idx.CreateBucketIfNotExists(stateKey(a.State))
	if err != nil {
		return err
	}
	return b.Put([]byte(a.ID), nil)
}

// stateKey names a state's bucket in the index (bbolt wants a name even
// for a record written without a state).
func stateKey(st AccountState) []byte {
	if st == "" {
		return []byte("-")
	}
	return []byte(st)
}

func (t *tally) store() error {
	for job, tot := range t.jobs {
		if err := put(t.tx.Bucket(bTotals), job, tot); err != nil {
			return err
		}
	}
	return nil
}

// loadTotals reads a job's totals, or sums its accounts when it has none
// yet but has accounts (a file from before totals were kept).
func loadTotals(tx *bolt.Tx, job string) (*Totals, error) {
	var tot Totals
	if v := tx.Bucket(bTotals).Get([]byte(job)); v != nil {
		if err := json.Unmarshal(v, &tot); err != nil {
			return nil, fmt.Errorf("totals of job %q: %w", job, err)
		}
		return &tot, nil
	}
	b, _ := accountBucket(tx, job, false)
	if b == nil {
		return &tot, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var a Account
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("account %q of job %q: %w", k, job, err)
		}
		tot.Count(&a, 1)
		return nil
	})
	return &tot, err
}

// buildDerived writes the totals and the state index of every job that has
// accounts but no totals: once, for a file from before they were kept.
func buildDerived(tx *bolt.Tx) error {
	var jobs [][]byte
	err := tx.Bucket(bAccounts).ForEach(func(k, v []byte) error {
		if v == nil && tx.Bucket(bTotals).Get(k) == nil {
			jobs = append(jobs, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, job := range jobs {
		if err := tx.Bucket(bByState).DeleteBucket(job); err != nil && err != bolt.ErrBucketNotFound {
			return err
		}
		t := newTally(tx)
		t.jobs[string(job)] = &Totals{}
		err := tx.Bucket(bAccounts).Bucket(job).ForEach(func(k, v []byte) error {
			var a Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("account %q of job %q: %w", k, job, err)
			}
			return t.put(string(job), nil, &a)
		})
		if err != nil {
			return err
		}
		if err := t.store(); err != nil {
			return err
		}
	}
	return nil
}

func dropDerived(tx *bolt.Tx, job string) error {
	if b, _ := accountBucket(tx, job, false); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var a Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("account %q of job %q: %w", k, job, err)
			}
			return tx.Bucket(bByTarget).Delete(targetKey(a.Target, job, a.ID))
		})
		if err != nil {
			return err
		}
	}
	if err := tx.Bucket(bTotals).Delete([]byte(job)); err != nil {
		return err
	}
	if err := tx.Bucket(bByState).DeleteBucket([]byte(job)); err != nil && err != bolt.ErrBucketNotFound {
		return err
	}
	return nil
}

// Totals sums a job's accounts as stored, without reading them.
func (s *Store) Totals(job string) (*Totals, error) {
	var tot *Totals
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		tot, err = loadTotals(tx, job)
		return err
	})
	return tot, err
}

// AccountPage lists count accounts of a job in ID order, skipping the
// first skip, of the given states (none: all). Only the accounts listed
// are read: a page is found by stepping over keys.
func (s *Store) AccountPage(job string, states []AccountState, skip, count int) ([]*Account, error) {
	var out []*Account
	err := s.view(func(tx *bolt.Tx) error {
		b, _ := accountBucket(tx, job, false)
		if b == nil || count <= 0 {
			return nil
		}
		ids := pageIDs(tx, b, job, states, skip, count)
		for _, id := range ids {
			v := b.Get(id)
			if v == nil {
				continue
			}
			a, err := s.decodeAccount(v)
			if err != nil {
				return fmt.Errorf("account %q of job %q: %w", id, job, err)
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// pageIDs walks the accounts bucket (all states) or merges the state
// index's buckets in ID order.
func pageIDs(tx *bolt.Tx, accts *bolt.Bucket, job string, states []AccountState, skip, count int) [][]byte {
	var curs []*bolt.Cursor
	if len(states) == 0 {
		curs = append(curs, accts.Cursor())
	} else if idx := tx.Bucket(bByState).Bucket([]byte(job)); idx != nil {
		for _, st := range states {
			if b := idx.Bucket(stateKey(st)); b != nil {
				curs = append(curs, b.Cursor())
			}
		}
	}
	keys := make([][]byte, len(curs))
	for i, c := range curs {
		keys[i], _ = c.First()
	}
	var out [][]byte
	for len(out) < count {
		low := -1
		for i, k := range keys {
			if k != nil && (low < 0 || bytes.Compare(k, keys[low]) < 0) {
				low = i
			}
		}
		if low < 0 {
			break
		}
		if skip > 0 {
			skip--
		} else {
			out = append(out, bytes.Clone(keys[low]))
		}
		keys[low], _ = curs[low].Next()
	}
	return out
}

// decodeAccount reads an account record, counting the work for
// AccountsRead.
func (s *Store) decodeAccount(v []byte) (*Account, error) {
	s.decoded.Add(1)
	var a Account
	err := json.Unmarshal(v, &a)
	return &a, err
}

// AccountsRead is how many account records this store has decoded: what
// a page or a scrape costs, for tests and measurements.
func (s *Store) AccountsRead() int64 { return s.decoded.Load() }

// LatestEvents lists a job's newest events, newest first, reading the
// job's index backwards from its end rather than the whole history.
func (s *Store) LatestEvents(job string, limit int) ([]*Event, error) {
	p, err := s.QueryEvents(EventQuery{Job: job, Limit: limit})
	if err != nil {
		return nil, err
	}
	return p.Events, nil
}

// TotalsWith is Totals with the stored records of some of the job's
// accounts, read in one transaction: a caller holding fresher copies of
// those accounts swaps them in without counting a write twice or never.
func (s *Store) TotalsWith(job string, ids []string) (*Totals, map[string]*Account, error) {
	var tot *Totals
	accts := map[string]*Account{}
	err := s.view(func(tx *bolt.Tx) error {
		b, _ := accountBucket(tx, job, false)
		var err error
		if tot, err = loadTotals(tx, job); err != nil || b == nil {
			return err
		}
		for _, id := range ids {
			if v := b.Get([]byte(id)); v != nil {
				a, err := s.decodeAccount(v)
				if err != nil {
					return fmt.Errorf("account %q of job %q: %w", id, job, err)
				}
				accts[id] = a
			}
		}
		return nil
	})
	return tot, accts, err
}

// EventSeq is the sequence number of the newest event of any job: a
// reader that has seen the log up to it asks Events for what follows.
func (s *Store) EventSeq() uint64 {
	var seq uint64
	s.view(func(tx *bolt.Tx) error {
		seq = tx.Bucket(bEvents).Sequence()
		return nil
	})
	return seq
}
