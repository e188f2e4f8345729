package state

import (
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Shard says which part of a job's accounts a state file holds when one
// job runs as several processes (docs/scale-out.md): shard Index of Count,
// 0 <= Index < Count. An account belongs to the shard ShardOf gives its
// old address; the rule never changes while a job lives, so an account
// added later lands where every process expects it.
type Shard struct {
	Index int
	Count int
}

// ShardOf is the shard of an account among n: FNV-1a (32 bit) of the old
// address in lower case, modulo n. FNV-1a is in the standard library, the
// same on every platform and version, and spreads addresses that differ in
// one character; lower case because an address is one mailbox however an
// admin spells it.
func ShardOf(oldAddress string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(strings.TrimSpace(oldAddress))))
	return int(h.Sum32() % uint32(n))
}

// Owns says whether the account with this old address is the shard's.
// A nil shard owns every account.
func (s *Shard) Owns(oldAddress string) bool {
	return s == nil || ShardOf(oldAddress, s.Count) == s.Index
}

func (s *Shard) String() string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// MaxShards bounds the shard count: far past any cluster that would share
// one old server's connection limit.
const MaxShards = 10000

// ParseShard reads "i/N" (0 <= i < N).
func ParseShard(v string) (*Shard, error) {
	is, ns, ok := strings.Cut(strings.TrimSpace(v), "/")
	if !ok {
		return nil, fmt.Errorf("shard %q: want INDEX/COUNT, such as 0/8 (the index counts from 0)", v)
	}
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("shard %q: want INDEX/COUNT with whole numbers, such as 0/8", v)
	}
	return NewShard(i, n)
}

// NewShard checks a shard index and count.
func NewShard(i, n int) (*Shard, error) {
	if n < 1 || n > MaxShards {
		return nil, fmt.Errorf("shard count %d: want 1 to %d", n, MaxShards)
	}
	if i < 0 || i >= n {
		return nil, fmt.Errorf("shard index %d of %d: want 0 to %d (the index counts from 0)", i, n, n-1)
	}
	return &Shard{Index: i, Count: n}, nil
}

// ShardPath is where export puts shard i's state file in dir.
func ShardPath(dir string, i int) string {
	return strings.TrimRight(dir, "/") + "/shard-" + strconv.Itoa(i) + ".db"
}

// ExportShard writes a new state file (and returns how many accounts it holds) at path holding job jobID as shard
// sh: the job's record (marked with the shard), the accounts of that shard
// with their secrets sealed as they are here, and their checkpoints and
// message keys, so a job that already moved mail goes on where it stood.
// The file gets this file's key (path + ".key", 0600) unless the key comes
// from the environment, where the shard's process finds it too. An
// existing file is never overwritten.
func (s *Store) ExportShard(jobID, path string, sh *Shard) (int, error) {
	job, err := s.Job(jobID)
	if err != nil {
		return 0, err
	}
	if job.Shard != nil {
		return 0, fmt.Errorf("job %s is already shard %s of a job: export shards from the job's own state file", jobID, job.Shard)
	}
	if _, err := os.Stat(path); err == nil {
		return 0, fmt.Errorf("%s exists: export shards into an empty folder", path)
	}
	if strings.TrimSpace(os.Getenv(KeyEnv)) == "" {
		f, err := os.OpenFile(path+".key", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return 0, fmt.Errorf("shard key file: %w", err)
		}
		_, err = f.WriteString(base64.StdEncoding.EncodeToString(s.key) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, fmt.Errorf("shard key file: %w", err)
		}
	}
	accts, err := s.Accounts(jobID)
	if err != nil {
		return 0, err
	}
	var mine []*Account
	for _, a := range accts {
		if sh.Owns(a.ID) {
			mine = append(mine, a)
		}
	}
	out, err := Open(path)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	shard := *sh
	job.Shard = &shard
	if err := out.PutJob(job); err != nil {
		return 0, err
	}
	count := len(mine)
	// In slices: one transaction for 100,000 accounts would hold them all
	// in memory at once.
	for len(mine) > 0 {
		n := min(len(mine), 1000)
		if err := out.PutAccounts(jobID, mine[:n]...); err != nil {
			return 0, err
		}
		if err := s.copyProgress(out, jobID, mine[:n]); err != nil {
			return 0, err
		}
		mine = mine[n:]
	}
	return count, nil
}

// copyProgress copies the checkpoints and message keys of accts into out.
func (s *Store) copyProgress(out *Store, jobID string, accts []*Account) error {
	return s.view(func(src *bolt.Tx) error {
		return out.update(func(dst *bolt.Tx) error {
			for _, root := range [][]byte{bFolders, bKeys} {
				from := src.Bucket(root).Bucket([]byte(jobID))
				if from == nil {
					continue
				}
				for _, a := range accts {
					fb := from.Bucket([]byte(a.ID))
					if fb == nil {
						continue
					}
					jb, err := dst.Bucket(root).CreateBucketIfNotExists([]byte(jobID))
					if err != nil {
						return err
					}
					tb, err := jb.CreateBucket([]byte(a.ID))
					if err != nil {
						return err
					}
					if err := copyBucket(fb, tb); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}

// copyBucket copies every key and nested bucket of from into to, with
// their sequences (the next key numbers of AssignUIDs).
func copyBucket(from, to *bolt.Bucket) error {
	if err := to.SetSequence(from.Sequence()); err != nil {
		return err
	}
	return from.ForEach(func(k, v []byte) error {
		if v != nil {
			return to.Put(k, v)
		}
		sub := from.Bucket(k)
		if sub == nil {
			return errors.New("state: bucket entry without value or bucket")
		}
		nb, err := to.CreateBucket(k)
		if err != nil {
			return err
		}
		return copyBucket(sub, nb)
	})
}

// WrongShardError says an account belongs to another shard of the job.
type WrongShardError struct {
	Account string
	Here    Shard
	Right   int
}

func (e *WrongShardError) Error() string {
	return fmt.Sprintf("%s belongs to shard %d/%d of this job, not to this state file's shard %s: add it there (its state file is shard-%d.db of the exported set)",
		e.Account, e.Right, e.Here.Count, e.Here.String(), e.Right)
}

// CheckShard refuses an account whose old address belongs to another shard
// than the job's (nil for a job that is not sharded).
func (j *Job) CheckShard(oldAddress string) error {
	if j.Shard.Owns(oldAddress) {
		return nil
	}
	return &WrongShardError{Account: oldAddress, Here: *j.Shard, Right: ShardOf(oldAddress, j.Shard.Count)}
}
