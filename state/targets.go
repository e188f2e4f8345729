package state

import (
	"bytes"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// TargetRef is an account that moves into a given new mailbox.
type TargetRef struct {
	Job     string
	Account string // the old address
}

func targetKey(target, job, account string) []byte {
	return []byte(strings.ToLower(target) + "\x00" + job + "\x00" + account)
}

// ByTarget lists the accounts, of every job, whose new address is target
// (any case), by job and old address: found in the index, without reading
// any account.
func (s *Store) ByTarget(target string) ([]TargetRef, error) {
	var out []TargetRef
	prefix := []byte(strings.ToLower(target) + "\x00")
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bByTarget).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			job, account, _ := strings.Cut(string(k[len(prefix):]), "\x00")
			out = append(out, TargetRef{Job: job, Account: account})
		}
		return nil
	})
	return out, err
}
