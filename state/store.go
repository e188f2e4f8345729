// Package state keeps jobs, accounts, per-folder checkpoints, counts and the
// event log in one bbolt file, so a migration survives crashes and restarts.
// Checkpoints are UID ranges, not one key per message, and progress is
// written in batches rather than one fsync per message.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/wording"
)

// JobState is a job's state, worded as the job table (docs/requirements.md R6, R9).
type JobState string

const (
	JobCreated   JobState = "created"   // 未启动
	JobRunning   JobState = "running"   // 搬家中
	JobPaused    JobState = "paused"    // 搬家已暂停
	JobCompleted JobState = "completed" // 搬家已结束 (as ended): every account finished; a re-run copies only new mail
	JobEnded     JobState = "ended"     // 搬家已结束: ended by the admin, the rest abandoned
)

// AccountState is an account's state, worded as the account list (R7).
type AccountState string

const (
	AccountNotStarted AccountState = "not_started" // 未启动
	AccountPreparing  AccountState = "preparing"   // 准备中
	AccountRunning    AccountState = "in_progress" // 进行中
	AccountPaused     AccountState = "paused"      // 搬家已暂停: paused by the admin, waiting to be resumed
	AccountSucceeded  AccountState = "succeeded"   // 搬家成功: every selected message is on the target
	AccountPartial    AccountState = "partial"     // 部分失败: finished, but some messages or folders were not copied
	AccountFailed     AccountState = "failed"      // 搬家失败
	AccountAbandoned  AccountState = "abandoned"   // 放弃
)

// Finished reports whether the state is final for this run.
func (s AccountState) Finished() bool {
	return s == AccountSucceeded || s == AccountPartial || s == AccountFailed || s == AccountAbandoned
}

// States lists the account states in the order tables show them.
var States = []AccountState{AccountNotStarted, AccountPreparing, AccountRunning, AccountPaused, AccountSucceeded, AccountPartial, AccountFailed, AccountAbandoned}

// Options are a job's choices about what to copy.
type Options struct {
	// Since, when set, copies only messages that arrived at or after it.
	Since time.Time `json:",omitempty"`
	// SkipJunkTrash leaves Junk and Trash folders behind.
	SkipJunkTrash bool `json:",omitempty"`
	// SkipCustomFolders copies only INBOX and the special folders.
	SkipCustomFolders bool `json:",omitempty"`
	// DedupeAcrossFolders copies a message found in several folders once
	// (Gmail labels): the All Mail folder goes last and keeps only what no
	// other folder had.
	DedupeAcrossFolders bool `json:",omitempty"`
	// MaxMessageSize, when > 0, skips larger messages (counted as skipped).
	MaxMessageSize int64 `json:",omitempty"`
	// Renames maps source folder names to target names.
	Renames map[string]string `json:",omitempty"`
	// Excludes are glob patterns of source folder names left behind
	// (migrate.FolderExcluded says how they match).
	Excludes []string `json:",omitempty"`
	// Window, when set ("22:00-07:00"), is the daily span in which the job
	// copies, in TimeZone (an IANA name; "" is the machine's own).
	Window   string `json:",omitempty"`
	TimeZone string `json:",omitempty"`
	// MaxRate and MaxRatePerHost cap the bytes read from the old servers
	// per second, for the whole job and per old server (0: no cap).
	MaxRate        int64 `json:",omitempty"`
	MaxRatePerHost int64 `json:",omitempty"`
	// KeepSystemFolders copies the folders a source calls system folders
	// (mail.Folder.System: Exchange's Outbox, Sync Issues and below) as
	// user folders; by default they stay behind, named in each account's
	// LeftBehind.
	KeepSystemFolders bool `json:",omitempty"`
}

// PeriodStart turns the date ranges of R21 (全部/2年/1年/3个月/30天) into a
// start date, fixed when the job is created.
func PeriodStart(p string, now time.Time) (time.Time, error) {
	switch strings.ToLower(p) {
	case "all", "":
		return time.Time{}, nil
	case "2y":
		return now.AddDate(-2, 0, 0), nil
	case "1y":
		return now.AddDate(-1, 0, 0), nil
	case "3m":
		return now.AddDate(0, -3, 0), nil
	case "30d":
		return now.AddDate(0, 0, -30), nil
	}
	return time.Time{}, fmt.Errorf("period %q: want all, 2y, 1y, 3m or 30d", p)
}

// Job modes: who supplies the old mailbox's password.
const (
	ModePasswords = "passwords" // the admin, in a CSV or one by one
	ModeDelegated = "delegated" // nobody: a migration admin opens every mailbox (无感搬家)
	ModeMember    = "member"    // each member, in the portal (成员登录后输入旧密码)
)

// EnrollWindow is how long after its creation a job takes new accounts
// (R2: accounts added in the next 30 days).
const EnrollWindow = 30 * 24 * time.Hour

// Job moves one source domain into one target domain.
type Job struct {
	ID   string
	Name string
	// Mode is ModePasswords, ModeDelegated or ModeMember ("" reads as
	// passwords, or delegated when Delegation is set).
	Mode string `json:",omitempty"`
	// Domain and NewDomain are the old and new mail domains; a member of
	// NewDomain may enroll in a member-triggered job.
	Domain    string `json:",omitempty"`
	NewDomain string `json:",omitempty"`
	// EnrollUntil is when the job stops taking new accounts; zero means
	// no window (only the accounts given).
	EnrollUntil time.Time     `json:",omitempty"`
	Source      mail.Endpoint // template: User comes from each account
	Target      mail.Endpoint
	Options     Options
	// Admin logins (a target master user, a delegated source admin) whose
	// passwords are sealed here instead of in the endpoints.
	SourceAdminSecret []byte `json:",omitempty"`
	// Delegation, for a delegated job, says how Source.User (the migration
	// admin) opens each member's mailbox.
	Delegation        *mail.Delegation `json:",omitempty"`
	TargetAdminSecret []byte           `json:",omitempty"`
	State             JobState
	Created           time.Time
	Updated           time.Time
	// Cutover (see cutover.go): how long stored credentials are kept
	// for syncs, and the job's phase.
	Cutover
	// Shard, when set, says this state file holds one shard of the job
	// (shard.go): only the accounts whose old address hashes to it.
	Shard *Shard `json:",omitempty"`
}

// ModeOf is the job's mode, with older records read by what they hold.
func (j *Job) ModeOf() string {
	switch {
	case j.Mode != "":
		return j.Mode
	case j.Delegation != nil:
		return ModeDelegated
	}
	return ModePasswords
}

// Enrolling reports whether the job takes new accounts at t.
func (j *Job) Enrolling(t time.Time) bool {
	return j.State != JobEnded && j.Closed.IsZero() && !j.EnrollUntil.IsZero() && t.Before(j.EnrollUntil)
}

// AwaitingMember reports whether an account waits for its member to type
// the old password in the portal before anything can start.
func (j *Job) AwaitingMember(a *Account) bool {
	return j.ModeOf() == ModeMember && a.State == AccountNotStarted && len(a.SourceSecret) == 0
}

// Counts are an account's or a job's message counts.
type Counts struct {
	ToImport int64 // messages in scope on the source
	Imported int64 // copied (or found already on the target)
	Failed   int64
	Skipped  int64 // out of scope: filtered by options, or gone from the source
	Bytes    int64 // bytes copied
}

// Add sums counts.
func (c *Counts) Add(o Counts) {
	c.ToImport += o.ToImport
	c.Imported += o.Imported
	c.Failed += o.Failed
	c.Skipped += o.Skipped
	c.Bytes += o.Bytes
}

// Account is one mailbox moving from the old system to the new one.
type Account struct {
	ID     string // the old address; unique within the job
	Source string // login on the old system
	Target string // login on the new system
	// Server is the account's own old server, host or host:port, when its
	// mailbox is not on the job's (a domain spread over several servers).
	Server string `json:",omitempty"`
	// Phone is the member's mobile number for reminder texts (提醒短信).
	Phone  string `json:",omitempty"`
	State  AccountState
	Reason string `json:",omitempty"`
	// Why is Reason as a catalogue code and its parameters, for reading in
	// another language (ReasonIn); files from before the codes have none.
	Why    *wording.Reason `json:",omitempty"`
	Counts Counts
	// Sealed secrets: never printed; kept for syncs until the job is
	// closed or SecretsUntil (Job.SecretsDeadline) passes, then wiped.
	SourceSecret []byte `json:",omitempty"`
	TargetSecret []byte `json:",omitempty"`
	// SecretsUntil is when this account's secrets are wiped at the
	// latest: when they were stored plus the job's KeepCredentials.
	SecretsUntil time.Time `json:",omitempty"`
	Started      time.Time
	Finished     time.Time
	Updated      time.Time
	// Lang is the language the member chose in the portal, for their mail.
	Lang string `json:",omitempty"`
	// Invited is when the member was asked by mail to start their move.
	Invited time.Time `json:",omitempty"`
	// First is when the admin moved the account to the front of the
	// queue: the latest goes first.
	First time.Time `json:",omitempty"`
	// LeftBehind are the source folders the last run did not copy because
	// they are system folders ("/" between levels, as --exclude names
	// them), with why, so that nothing stays behind unsaid.
	LeftBehind []LeftFolder `json:",omitempty"`
}

// LeftFolder is a source folder a run left behind, and why.
type LeftFolder struct {
	Folder string
	Reason string
}

// Checkpoint is how far one source folder has been copied.
type Checkpoint struct {
	Folder   string
	Validity uint64
	// UIDNext and Total are the folder's UIDNEXT and message count when it was
	// last listed in full; if both are unchanged and nothing is pending, a
	// re-run does not list the folder again.
	UIDNext uint32
	Total   int64
	Target  string
	// TargetValidity and Floor: the target folder's UIDVALIDITY and its
	// UIDNEXT when the latest session began appending. Any target message at
	// or above Floor that is not in Confirmed may be an APPEND whose OK was
	// lost in a crash, and is checked before anything is copied again.
	TargetValidity uint32
	Floor          uint32
	Done           Ranges            // source UIDs copied or found on the target
	Confirmed      Ranges            // target UIDs of our copies (APPENDUID, in-doubt matches); kept below Floor too
	Failed         Ranges            // source UIDs that failed in the latest run
	Skipped        Ranges            // source UIDs out of scope
	Reasons        map[uint32]string `json:",omitempty"` // why, for failed UIDs (bounded)
	// ReasonWhys are the codes of the texts in Reasons, one per distinct
	// text (bounded too), for reading them in another language.
	ReasonWhys map[string]*wording.Reason `json:",omitempty"`
	// Sizes and Dates of failed UIDs, for the report (bounded like Reasons).
	Sizes map[uint32]int64     `json:",omitempty"`
	Dates map[uint32]time.Time `json:",omitempty"`
	// FolderReason says why the whole folder could not be copied (the
	// target refused to create it): every message of Failed failed for it.
	FolderReason string `json:",omitempty"`
	// FolderWhy is FolderReason as a catalogue code and its parameters.
	FolderWhy *wording.Reason `json:",omitempty"`
	// Wanted is the target name the folder map chose when Target differs
	// from it: the target refused that name and Target is the one it took.
	Wanted string `json:",omitempty"`
	Bytes  int64
	// Resent are messages that may be on the target more than once (sent
	// again after an in-doubt APPEND) whose extra copies are still to be
	// looked for (the late sweep). Kept here so a run that dies before the
	// sweep leaves it to the next run; the Confirmed of every checkpoint
	// with the same Target names the copies of ours it must keep.
	Resent []Resent `json:",omitempty"`
}

// Resent is one message sent more than once: source UID, the target UID
// recorded as its copy, and the folder's Floor when it was recorded (an
// earlier copy of it can only be above).
type Resent struct {
	UID, Copy, Floor uint32
}

// Pending reports whether anything is left to copy in this folder as last listed.
func (c *Checkpoint) Pending() bool {
	return c.Done.Count()+c.Failed.Count()+c.Skipped.Count() < c.Total
}

// Event is one line of the audit log (搬家查询).
type Event struct {
	Seq     uint64
	Time    time.Time
	Job     string
	Account string `json:",omitempty"`
	Kind    string // job.created, job.started, job.paused, job.resumed, job.ended, job.completed, account.started, account.succeeded, account.failed, account.abandoned, warning
	Message string
	// Why is Message as a catalogue code and its parameters (Text).
	Why *wording.Reason `json:",omitempty"`
	// Who acted (an Actor: "admin:alice", "cli:root@host", "banjia", ...).
	Who string `json:",omitempty"`
}

// ErrLocked says another process holds the state file.
var ErrLocked = errors.New("the state file is in use by another banjia process")

// ErrNoState is returned by OpenExisting when there is no state file.
var ErrNoState = errors.New("no state file")

// OpenExisting is Open for commands that only read or change what is
// there: a mistyped path gets an error instead of a new, empty state file.
func OpenExisting(path string) (*Store, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: nothing was created there (banjia job create, banjia migrate and banjia serve make one; --state or BANJIA_STATE says where)", ErrNoState, path)
	}
	return Open(path)
}

// ErrNotFound is returned for unknown jobs and accounts.
var ErrNotFound = errors.New("not found")

var (
	bJobs     = []byte("jobs")
	bAccounts = []byte("accounts")
	bFolders  = []byte("folders")
	bEvents   = []byte("events")
	bKeys     = []byte("keys")
)

// Store is an open state file.
type Store struct {
	// mu guards db, which a scrub replaces with a compacted copy: every
	// transaction holds it shared, the swap holds it alone.
	mu     sync.RWMutex
	db     *bolt.DB
	closed bool
	key    []byte
	Path   string
	scrub  scrubber
	// decoded counts account records read (AccountsRead).
	decoded atomic.Int64
	// mailRetried tells the outbox's sender of an admin's retry (outbox.go).
	mailRetried chan struct{}
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Update(fn)
}

// Open opens (or creates) the state file; its key file is path + ".key".
// A second process gets ErrLocked within a second instead of hanging.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%s: %w (a job is running: use banjia job pause/resume/end/status, which talk to it)", path, ErrLocked)
		}
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	// A scrub cut short by a crash leaves its copy: the state file is whole.
	if err := os.Remove(scrubPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	// bbolt keeps the mode of an existing file; secrets inside must stay private.
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	key, err := loadKey(path + ".key")
	if err != nil {
		db.Close()
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bByTarget) == nil && tx.Bucket(bTotals) != nil {
			// Totals from before the new-address index: all rebuilt.
			if err := tx.DeleteBucket(bTotals); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bJobs, bAccounts, bFolders, bEvents, bKeys, bTotals, bByState, bByTarget} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := openEventIndex(tx); err != nil {
			return err
		}
		return buildDerived(tx)
	})
	if err != nil {
		db.Close()
		return nil, writeError(path, err)
	}
	return &Store{db: db, key: key, Path: path, mailRetried: make(chan struct{}, 1)}, nil
}

// Close closes the file, first scrubbing it if a secret was dropped since
// the last scrub: a copy taken after banjia stopped holds no wiped password.
func (s *Store) Close() error {
	serr := s.closeScrub()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if err := s.db.Close(); err != nil {
		return err
	}
	return serr
}

func writeError(path string, err error) error {
	return fmt.Errorf("cannot write the state file %s (disk full or read-only?): %w", path, err)
}

func put(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// PutJob creates or replaces a job.
func (s *Store) PutJob(j *Job) error {
	j.Updated = time.Now().UTC()
	dropped := false
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bJobs)
		dropped = secretsDropped(b.Get([]byte(j.ID)), j.SourceAdminSecret, j.TargetAdminSecret)
		return put(b, j.ID, j)
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	if dropped {
		s.wiped()
	}
	return nil
}

// Job loads a job.
func (s *Store) Job(id string) (*Job, error) {
	var j Job
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bJobs).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("job %q: %w", id, ErrNotFound)
		}
		return json.Unmarshal(v, &j)
	})
	return &j, err
}

// Jobs lists every job, oldest first.
func (s *Store) Jobs() ([]*Job, error) {
	var out []*Job
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bJobs).ForEach(func(k, v []byte) error {
			var j Job
			if err := json.Unmarshal(v, &j); err != nil {
				return err
			}
			out = append(out, &j)
			return nil
		})
	})
	sort.Slice(out, func(i, k int) bool { return out[i].Created.Before(out[k].Created) })
	return out, err
}

// SetJobState changes a job's state.
func (s *Store) SetJobState(id string, st JobState) error {
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bJobs)
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("job %q: %w", id, ErrNotFound)
		}
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return err
		}
		j.State, j.Updated = st, time.Now().UTC()
		return put(b, id, &j)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return writeError(s.Path, err)
	}
	return err
}

// DeleteJob removes a job that never ran (one whose creation failed half
// way): its record and its accounts. Checkpoints are never deleted.
func (s *Store) DeleteJob(id string) error {
	// The job's and its accounts' secrets go with them: scrubbed too.
	defer s.wiped()
	err := s.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bJobs).Delete([]byte(id)); err != nil {
			return err
		}
		if err := dropDerived(tx, id); err != nil {
			return err
		}
		if err := dropNotices(tx, id); err != nil {
			return err
		}
		if tx.Bucket(bAccounts).Bucket([]byte(id)) != nil {
			return tx.Bucket(bAccounts).DeleteBucket([]byte(id))
		}
		return nil
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	return nil
}

func accountBucket(tx *bolt.Tx, job string, create bool) (*bolt.Bucket, error) {
	if create {
		return tx.Bucket(bAccounts).CreateBucketIfNotExists([]byte(job))
	}
	return tx.Bucket(bAccounts).Bucket([]byte(job)), nil
}

// PutAccounts stores accounts of a job in one transaction.
func (s *Store) PutAccounts(job string, accts ...*Account) error {
	now := time.Now().UTC()
	dropped := false
	err := s.update(func(tx *bolt.Tx) error {
		b, err := accountBucket(tx, job, true)
		if err != nil {
			return err
		}
		t := newTally(tx)
		for _, a := range accts {
			a.Updated = now
			if err := putAccount(t, job, b, a, &dropped); err != nil {
				return err
			}
		}
		return t.store()
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	if dropped {
		s.wiped()
	}
	return nil
}

// putAccount stores an account of job (in bucket b), counts it in t, and
// notes in dropped whether a secret the stored record held is gone from
// it (wiped, or replaced by a new one).
func putAccount(t *tally, job string, b *bolt.Bucket, a *Account, dropped *bool) error {
	old := b.Get([]byte(a.ID))
	if secretsDropped(old, a.SourceSecret, a.TargetSecret) {
		*dropped = true
	}
	if err := t.put(job, old, a); err != nil {
		return err
	}
	return put(b, a.ID, a)
}

// Accounts lists a job's accounts in ID order.
func (s *Store) Accounts(job string) ([]*Account, error) {
	var out []*Account
	err := s.view(func(tx *bolt.Tx) error {
		b, _ := accountBucket(tx, job, false)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			a, err := s.decodeAccount(v)
			if err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// Account loads one account.
func (s *Store) Account(job, id string) (*Account, error) {
	var a Account
	err := s.view(func(tx *bolt.Tx) error {
		b, _ := accountBucket(tx, job, false)
		var v []byte
		if b != nil {
			v = b.Get([]byte(id))
		}
		if v == nil {
			return fmt.Errorf("account %q of job %q: %w", id, job, ErrNotFound)
		}
		s.decoded.Add(1)
		return json.Unmarshal(v, &a)
	})
	return &a, err
}

func folderBucket(tx *bolt.Tx, job, account string, create bool) (*bolt.Bucket, error) {
	root := tx.Bucket(bFolders)
	if !create {
		jb := root.Bucket([]byte(job))
		if jb == nil {
			return nil, nil
		}
		return jb.Bucket([]byte(account)), nil
	}
	jb, err := root.CreateBucketIfNotExists([]byte(job))
	if err != nil {
		return nil, err
	}
	return jb.CreateBucketIfNotExists([]byte(account))
}

// Checkpoints loads every folder checkpoint of an account, by source folder name.
func (s *Store) Checkpoints(job, account string) (map[string]*Checkpoint, error) {
	out := map[string]*Checkpoint{}
	err := s.view(func(tx *bolt.Tx) error {
		b, _ := folderBucket(tx, job, account, false)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var c Checkpoint
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("checkpoint %q: %w", k, err)
			}
			out[string(k)] = &c
			return nil
		})
	})
	return out, err
}

// Progress is one batch of writes for one account: its record and the
// checkpoints that changed. The runner collects them and saves many at once.
type Progress struct {
	Job         string
	Account     *Account
	Checkpoints []*Checkpoint
}

// Save writes many accounts' progress in one transaction (one fsync).
func (s *Store) Save(batch []Progress) error {
	if len(batch) == 0 {
		return nil
	}
	now := time.Now().UTC()
	dropped := false
	err := s.update(func(tx *bolt.Tx) error {
		t := newTally(tx)
		for _, p := range batch {
			if p.Account != nil {
				b, err := accountBucket(tx, p.Job, true)
				if err != nil {
					return err
				}
				p.Account.Updated = now
				if err := putAccount(t, p.Job, b, p.Account, &dropped); err != nil {
					return err
				}
			}
			if len(p.Checkpoints) > 0 {
				b, err := folderBucket(tx, p.Job, p.Account.ID, true)
				if err != nil {
					return err
				}
				for _, c := range p.Checkpoints {
					if err := put(b, c.Folder, c); err != nil {
						return err
					}
				}
			}
		}
		return t.store()
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	if dropped {
		s.wiped()
	}
	return nil
}

// AddEvent appends to the audit log.
func (s *Store) AddEvent(e *Event) error { return s.AddEvents(e) }

// AddEvents appends events to the audit log in one transaction (one
// fsync), in the order given.
func (s *Store) AddEvents(evs ...*Event) error {
	now := time.Now().UTC()
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bEvents)
		for _, e := range evs {
			if e.Time.IsZero() {
				e.Time = now
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			e.Seq = seq
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], seq)
			data, err := encodeEvent(e)
			if err != nil {
				return err
			}
			if err := b.Put(k[:], data); err != nil {
				return err
			}
			if err := indexEvent(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	return nil
}

// Events lists events after seq (0: from the start), of one job or all ("").
func (s *Store) Events(job string, after uint64, limit int) ([]*Event, error) {
	var out []*Event
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], after+1)
		for key, v := c.Seek(k[:]); key != nil; key, v = c.Next() {
			e, err := decodeEvent(key, v)
			if err != nil {
				return err
			}
			if job != "" && e.Job != job {
				continue
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// AssignUIDs gives sources whose messages have string keys (POP3 UIDL, Graph
// ids) stable numeric UIDs, in the order given, so checkpoints stay UID
// ranges whatever the source. Known keys keep their UID; new keys get the
// next numbers, in one transaction.
func (s *Store) AssignUIDs(job, account, folder string, keys []string) ([]uint32, error) {
	out := make([]uint32, len(keys))
	missing := 0
	err := s.view(func(tx *bolt.Tx) error {
		b := keyBucket(tx, job, account, folder)
		for i, k := range keys {
			if b != nil {
				if v := b.Get([]byte(k)); len(v) == 4 {
					out[i] = binary.BigEndian.Uint32(v)
					continue
				}
			}
			missing++
		}
		return nil
	})
	if err != nil || missing == 0 {
		return out, err
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bKeys)
		for _, name := range []string{job, account, folder} {
			var err error
			if b, err = b.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		for i, k := range keys {
			if out[i] != 0 {
				continue
			}
			if v := b.Get([]byte(k)); len(v) == 4 {
				out[i] = binary.BigEndian.Uint32(v)
				continue
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if seq > 1<<32-1 {
				return fmt.Errorf("folder %q has more than 2^32 keys", folder)
			}
			var v [4]byte
			binary.BigEndian.PutUint32(v[:], uint32(seq))
			if err := b.Put([]byte(k), v[:]); err != nil {
				return err
			}
			out[i] = uint32(seq)
		}
		return nil
	})
	if err != nil {
		return nil, writeError(s.Path, err)
	}
	return out, nil
}

func keyBucket(tx *bolt.Tx, job, account, folder string) *bolt.Bucket {
	b := tx.Bucket(bKeys)
	for _, name := range []string{job, account, folder} {
		if b = b.Bucket([]byte(name)); b == nil {
			return nil
		}
	}
	return b
}
