package state

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RemoveJob deletes a job and everything the state file holds of it: its
// record (with the sealed admin secrets), its accounts (with their sealed
// passwords), their checkpoints and message keys, and its events. The
// caller makes sure no run holds the job. The freed pages still hold the
// sealed secrets until the scrub that this schedules (or Scrub) rewrites
// the file.
func (s *Store) RemoveJob(id string) error {
	defer s.wiped()
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bJobs).Get([]byte(id)) == nil {
			return fmt.Errorf("job %q: %w", id, ErrNotFound)
		}
		if err := tx.Bucket(bJobs).Delete([]byte(id)); err != nil {
			return err
		}
		// The totals and indexes first: they are read from the accounts.
		if err := dropDerived(tx, id); err != nil {
			return err
		}
		for _, name := range [][]byte{bAccounts, bFolders, bKeys} {
			if tx.Bucket(name).Bucket([]byte(id)) != nil {
				if err := tx.Bucket(name).DeleteBucket([]byte(id)); err != nil {
					return err
				}
			}
		}
		// Events are keyed by sequence; the job's index finds its own.
		return dropJobEvents(tx, id)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return writeError(s.Path, err)
	}
	return nil
}
