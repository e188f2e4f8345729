package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A wiped secret is not gone from a bbolt file: the page that held it is
// only put on the free list, and a copy of the file with its key file
// decrypts it. So when a record loses a sealed secret (wiped after success,
// abandoned, replaced by a new password, or its job deleted), the store
// scrubs the file: it copies the live data into a fresh file and renames
// that over the state file, leaving no free page behind. A scrub blocks
// writers while it copies, so it runs a few seconds after a wipe, and
// never takes more than about a twentieth of the time, however many
// accounts finish.
//
// Rotating the key instead would not do: sealed secrets live on in memory
// (running accounts, portal sessions) and would be written back under the
// old key, and a key given in BANJIA_STATE_KEY cannot be rotated at all.

// scrubSoon is how long after a wipe the scrub runs at the earliest: the
// wipes of accounts that finish together share one scrub.
var scrubSoon = 5 * time.Second

// scrubShare bounds the share of time spent scrubbing: after a scrub that
// took d, the next waits at least scrubShare*d.
const scrubShare = 20

type scrubber struct {
	mu      sync.Mutex
	pending bool // a secret was dropped since the last scrub began
	timer   *time.Timer
	ended   time.Time     // when the last scrub ended
	took    time.Duration // how long it took
	closed  bool
	running sync.Mutex // one scrub at a time
}

// wiped notes that a committed change dropped a sealed secret and
// schedules a scrub.
func (s *Store) wiped() {
	c := &s.scrub
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = true
	if c.timer != nil || c.closed {
		return
	}
	delay := scrubSoon
	if next := time.Until(c.ended.Add(scrubShare * c.took)); next > delay {
		delay = next
	}
	c.timer = time.AfterFunc(delay, func() {
		// A failed scrub stays pending: the next wipe or Close tries again.
		_ = s.Scrub()
	})
}

// Scrub rewrites the state file without free pages if a sealed secret was
// dropped since the last scrub, so that no copy of the file taken from now
// on holds it. Writers wait while it runs.
func (s *Store) Scrub() error {
	c := &s.scrub
	c.running.Lock()
	defer c.running.Unlock()
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !c.pending {
		c.mu.Unlock()
		return nil
	}
	c.pending = false
	c.mu.Unlock()
	start := time.Now()
	err := s.compact()
	c.mu.Lock()
	c.ended, c.took = time.Now(), time.Since(start)
	if err != nil {
		c.pending = true
	}
	c.mu.Unlock()
	return err
}

// closeScrub stops the scrubs to come and runs the one pending, if any.
func (s *Store) closeScrub() error {
	c := &s.scrub
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	return s.Scrub()
}

// compact copies the live data into a fresh file beside the state file and
// renames it over the state file. The fresh file is opened (and locked)
// before the rename, so no other process can take the state file between.
func (s *Store) compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("the state file is closed")
	}
	tmp := scrubPath(s.Path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("scrub the state file: %w", err)
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("scrub the state file: %w", err)
	}
	fail := func(err error) error {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("scrub the state file (wiped passwords stay on its free pages until the next scrub): %w", err)
	}
	// Committed in parts, so that a large file is not copied in memory.
	if err := bolt.Compact(dst, s.db, 32<<20); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		return fail(err)
	}
	if d, err := os.Open(filepath.Dir(s.Path)); err == nil {
		// The rename lasts through a crash.
		d.Sync()
		d.Close()
	}
	old := s.db
	s.db = dst
	return old.Close()
}

func scrubPath(path string) string { return path + ".scrub" }

// secretsDropped reports whether a stored record (JSON, nil when there is
// none) holds a sealed secret that is none of the record's new secrets.
func secretsDropped(old []byte, now ...[]byte) bool {
	if !bytes.Contains(old, []byte(`Secret"`)) {
		return false
	}
	var was struct {
		SourceSecret, TargetSecret, SourceAdminSecret, TargetAdminSecret []byte
	}
	if err := json.Unmarshal(old, &was); err != nil {
		// Unreadable: assume the worst, a scrub costs only time.
		return true
	}
	for _, w := range [][]byte{was.SourceSecret, was.TargetSecret, was.SourceAdminSecret, was.TargetAdminSecret} {
		if len(w) == 0 {
			continue
		}
		kept := false
		for _, n := range now {
			if bytes.Equal(w, n) {
				kept = true
			}
		}
		if !kept {
			return true
		}
	}
	return false
}
