package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A job's life around the MX switch (docs/cutover.md):
//
//	first pass ──(MX switched)──> sync, sync, ... ──> closed
//
// The first pass copies every account; each sync copies only what arrived
// since; close wipes every stored credential and freezes the job. The
// credentials (members' old and new passwords, the migration and target
// admins' passwords) stay sealed in the state file between the first pass
// and the close, but never past the retention the admin chose at create.

// DefaultKeepCredentials is how long credentials are kept when the admin
// does not say: two weeks covers an MX switch, its TTL and a few syncs.
const DefaultKeepCredentials = 14 * 24 * time.Hour

// MaxKeepCredentials bounds the retention: a cutover that takes longer
// than three months is a new job, not a reason to keep passwords.
const MaxKeepCredentials = 90 * 24 * time.Hour

// Phases of a job, as Job.Phase names them.
const (
	PhaseFirstPass = "first_pass" // copying, or copied once: no sync yet
	PhaseSynced    = "synced"     // at least one sync completed
	PhaseClosed    = "closed"     // credentials wiped; no sync or start any more
)

// Cutover is the part of a job record about syncs and the close.
type Cutover struct {
	// KeepCredentials is the retention of stored credentials; 0 in a
	// record older than it reads as DefaultKeepCredentials.
	KeepCredentials time.Duration `json:",omitempty"`
	// CredentialsUntil is when the job's own secrets (admin passwords) are
	// wiped at the latest; accounts have their own SecretsUntil.
	CredentialsUntil time.Time `json:",omitempty"`
	// CredentialsWiped is when the retention passed and the stored
	// credentials were wiped (a sync is then impossible); zero if not.
	CredentialsWiped time.Time `json:",omitempty"`
	// Synced is when the last sync completed; Syncs how many did.
	Synced time.Time `json:",omitempty"`
	Syncs  int       `json:",omitempty"`
	// Closed is when the admin closed the job.
	Closed time.Time `json:",omitempty"`
}

// Keep is the job's retention of stored credentials.
func (c Cutover) Keep() time.Duration {
	if c.KeepCredentials <= 0 {
		return DefaultKeepCredentials
	}
	return c.KeepCredentials
}

// Phase is the job's phase: PhaseFirstPass, PhaseSynced or PhaseClosed.
func (c Cutover) Phase() string {
	switch {
	case !c.Closed.IsZero():
		return PhaseClosed
	case !c.Synced.IsZero():
		return PhaseSynced
	}
	return PhaseFirstPass
}

// PhaseText is the phase as the job table says it: "first pass", "synced
// at 2026-12-03 10:00 UTC", "closed at ...".
func (c Cutover) PhaseText(lang string) string {
	w := words[Lang(lang)]
	switch c.Phase() {
	case PhaseClosed:
		return fmt.Sprintf(w["phase.closed"], c.Closed.UTC().Format("2006-01-02 15:04 MST"))
	case PhaseSynced:
		return fmt.Sprintf(w["phase.synced"], c.Synced.UTC().Format("2006-01-02 15:04 MST"))
	}
	return w["phase.first_pass"]
}

// SecretsDeadline is when the account's stored secrets are wiped at the
// latest: its own deadline, else (records older than it) the job's.
func (j *Job) SecretsDeadline(a *Account) time.Time {
	if !a.SecretsUntil.IsZero() {
		return a.SecretsUntil
	}
	return j.JobSecretsDeadline()
}

// JobSecretsDeadline is when the job's own secrets are wiped at the latest;
// zero (no deadline) only for a record with no creation time.
func (j *Job) JobSecretsDeadline() time.Time {
	if !j.CredentialsUntil.IsZero() || j.Created.IsZero() {
		return j.CredentialsUntil
	}
	return j.Created.Add(j.Keep())
}

// Expired reports whether a secrets deadline has passed at now; a zero
// deadline never does.
func Expired(deadline, now time.Time) bool { return !deadline.IsZero() && !now.Before(deadline) }

// HasSecrets reports whether the account holds a stored secret.
func (a *Account) HasSecrets() bool { return len(a.SourceSecret) > 0 || len(a.TargetSecret) > 0 }

// WipeSecrets drops the account's stored secrets; the store scrubs the
// file once the record is written (scrub.go).
func (a *Account) WipeSecrets() { a.SourceSecret, a.TargetSecret = nil, nil }

// WipeSecrets drops the job's stored admin secrets.
func (j *Job) WipeSecrets() { j.SourceAdminSecret, j.TargetAdminSecret = nil, nil }

// UpdateJob changes a job's record in one transaction: fn gets the stored
// record as it is now (not a copy read earlier, whose secrets or state may
// be out of date).
func (s *Store) UpdateJob(id string, fn func(*Job) error) error {
	dropped := false
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
		if err := fn(&j); err != nil {
			return err
		}
		j.Updated = time.Now().UTC()
		dropped = secretsDropped(v, j.SourceAdminSecret, j.TargetAdminSecret)
		return put(b, id, &j)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return writeError(s.Path, err)
	}
	if dropped {
		s.wiped()
	}
	return nil
}
