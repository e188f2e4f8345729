package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/banjia-mail/banjia/wording"
	bolt "go.etcd.io/bbolt"
)

// The outbox keeps every notification mail from the moment it is composed
// until the SMTP server has taken it: a mail server that is down, slow or
// refusing the login loses no mail, and a restart sends what was left.
//
// A mail is in one of three states:
//
//	waiting   Attempts == 0: composed, never tried
//	retrying  Attempts > 0, !Held: tried and failed; tried again at NextTry
//	held      Held: refused for good (a recipient the server will never
//	          take); kept for the admin to see, retry (banjia outbox retry)
//	          or drop, never tried on its own again
//
// A mail sent is deleted; OutboxSent counts them.
var (
	bOutbox  = []byte("outbox")
	bNotices = []byte("notices")
	// kSent, in bNotices, counts the mails sent since the file was made.
	kSent = []byte("\x00sent")
)

// OutMail is one mail in the outbox.
type OutMail struct {
	Seq uint64
	// Job is the job the mail is about ("" for none); Kind says what it
	// is: member (an account's end), digest, progress (a daily digest),
	// invite or reminder.
	Job, Kind string
	To        []string
	Subject   string
	// Data is the whole message as sent (headers and body).
	Data     []byte
	Created  time.Time
	Attempts int
	NextTry  time.Time `json:",omitempty"`
	// LastError is why the last attempt failed, as the admin reads it
	// (never a password: notify removes it from server replies).
	LastError string `json:",omitempty"`
	// LastWhy is the reason LastError begins with, as a catalogue code.
	LastWhy *wording.Reason `json:",omitempty"`
	Held    bool            `json:",omitempty"`
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// QueueMail adds m to the outbox and sets its Seq.
func (s *Store) QueueMail(m *OutMail) error {
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bOutbox)
		if err != nil {
			return err
		}
		if m.Seq, err = b.NextSequence(); err != nil {
			return err
		}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return b.Put(seqKey(m.Seq), data)
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	return nil
}

// Outbox lists the mails not sent yet, oldest first.
func (s *Store) Outbox() ([]*OutMail, error) {
	return s.outbox(func(*OutMail) bool { return true }, 0)
}

// MailsDue lists up to limit (0: all) mails to try at now: not held, and
// never tried or due again.
func (s *Store) MailsDue(now time.Time, limit int) ([]*OutMail, error) {
	return s.outbox(func(m *OutMail) bool { return !m.Held && !m.NextTry.After(now) }, limit)
}

// NextMailDue is when the earliest mail waiting for a retry is due; false
// when none is waiting.
func (s *Store) NextMailDue() (time.Time, bool) {
	var next time.Time
	found := false
	s.outbox(func(m *OutMail) bool {
		if !m.Held && (!found || m.NextTry.Before(next)) {
			next, found = m.NextTry, true
		}
		return false
	}, 0)
	return next, found
}

func (s *Store) outbox(keep func(*OutMail) bool, limit int) ([]*OutMail, error) {
	var out []*OutMail
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOutbox)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var m OutMail
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			if keep(&m) {
				out = append(out, &m)
				if limit > 0 && len(out) >= limit {
					break
				}
			}
		}
		return nil
	})
	return out, err
}

// MailSent takes a sent mail out of the outbox.
func (s *Store) MailSent(seq uint64) error {
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOutbox)
		if b == nil {
			return nil
		}
		if err := b.Delete(seqKey(seq)); err != nil {
			return err
		}
		n, err := tx.CreateBucketIfNotExists(bNotices)
		if err != nil {
			return err
		}
		var count uint64
		if v := n.Get(kSent); len(v) == 8 {
			count = binary.BigEndian.Uint64(v)
		}
		return n.Put(kSent, seqKey(count+1))
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	return nil
}

// OutboxSent is how many mails the outbox has sent.
func (s *Store) OutboxSent() uint64 {
	var count uint64
	s.view(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bNotices); n != nil {
			if v := n.Get(kSent); len(v) == 8 {
				count = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	return count
}

// MailFailed records a failed attempt: tried again at next, or held when
// held is set.
func (s *Store) MailFailed(seq uint64, next time.Time, reason string, held bool) error {
	return s.MailFailedWhy(seq, next, reason, wording.Reason{}, held)
}

// MailFailedWhy is MailFailed with the reason's code (reason begins with
// its English wording).
func (s *Store) MailFailedWhy(seq uint64, next time.Time, reason string, why wording.Reason, held bool) error {
	return s.changeMail(seq, func(m *OutMail) {
		m.Attempts++
		m.NextTry, m.LastError, m.LastWhy, m.Held = next.UTC(), reason, coded(why), held
	})
}

// RetryMail makes a mail (a held one too) due at once; seq 0: every mail.
// It returns how many mails it changed.
func (s *Store) RetryMail(seq uint64) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOutbox)
		if b == nil {
			return notFoundMail(seq)
		}
		return b.ForEach(func(k, v []byte) error {
			var m OutMail
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			if seq != 0 && m.Seq != seq {
				return nil
			}
			m.NextTry, m.Held = time.Time{}, false
			n++
			data, err := json.Marshal(&m)
			if err != nil {
				return err
			}
			return b.Put(k, data)
		})
	})
	if err == nil && seq != 0 && n == 0 {
		err = notFoundMail(seq)
	}
	if err == nil && n > 0 {
		select {
		case s.mailRetried <- struct{}{}:
		default:
		}
	}
	return n, err
}

// MailRetried receives when an admin asked for mails to be sent again
// (RetryMail): the sender tries at once, even while it waits out a server
// that was down.
func (s *Store) MailRetried() <-chan struct{} { return s.mailRetried }

// WakeMails makes every mail not held due now: a new run of banjia tries
// what an earlier one left, without waiting out the earlier backoff.
func (s *Store) WakeMails() error {
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOutbox)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var m OutMail
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			if m.Held || m.NextTry.IsZero() {
				continue
			}
			m.NextTry = time.Time{}
			data, err := json.Marshal(&m)
			if err != nil {
				return err
			}
			if err := b.Put(k, data); err != nil {
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

// DropMail deletes a mail from the outbox without sending it.
func (s *Store) DropMail(seq uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOutbox)
		if b == nil || b.Get(seqKey(seq)) == nil {
			return notFoundMail(seq)
		}
		return b.Delete(seqKey(seq))
	})
}

func notFoundMail(seq uint64) error {
	return fmt.Errorf("mail %d is not in the outbox (sent or dropped already?): %w", seq, ErrNotFound)
}

func (s *Store) changeMail(seq uint64, change func(*OutMail)) error {
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOutbox)
		if b == nil {
			return notFoundMail(seq)
		}
		v := b.Get(seqKey(seq))
		if v == nil {
			return notFoundMail(seq)
		}
		var m OutMail
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		change(&m)
		data, err := json.Marshal(&m)
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), data)
	})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// Notice marks remember which one-off notices went out (a reminder to one
// member for one window, a job's daily digest), so a restart does not send
// them twice. key is the caller's (e.g. "remind/3/u1@old.example").

func noticeKey(job, key string) []byte { return []byte(job + "\x00" + key) }

// Noticed says when the notice key of job was sent, if it was.
func (s *Store) Noticed(job, key string) (time.Time, bool) {
	var t time.Time
	found := false
	s.view(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bNotices); n != nil {
			if v := n.Get(noticeKey(job, key)); v != nil {
				found = t.UnmarshalText(v) == nil
			}
		}
		return nil
	})
	return t, found
}

// MarkNoticed records that the notice key of job was sent at t.
func (s *Store) MarkNoticed(job, key string, t time.Time) error {
	v, err := t.UTC().MarshalText()
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		n, err := tx.CreateBucketIfNotExists(bNotices)
		if err != nil {
			return err
		}
		return n.Put(noticeKey(job, key), v)
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	return nil
}

// NoticeSettings are a job's notification choices beyond the end-of-job
// digest.
type NoticeSettings struct {
	// RemindDays: a reminder goes to each member who has not started, this
	// many days before the enrollment window closes (one mail per entry).
	RemindDays []int `json:",omitempty"`
	// Daily sends the admins a progress digest once a day while the job runs.
	Daily bool `json:",omitempty"`
}

// NoticeSettingsOf reads a job's notice settings (zero when never set).
func (s *Store) NoticeSettingsOf(job string) (NoticeSettings, error) {
	var ns NoticeSettings
	err := s.view(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bNotices); n != nil {
			if v := n.Get(noticeKey(job, "\x00settings")); v != nil {
				return json.Unmarshal(v, &ns)
			}
		}
		return nil
	})
	return ns, err
}

// PutNoticeSettings stores a job's notice settings.
func (s *Store) PutNoticeSettings(job string, ns NoticeSettings) error {
	if _, err := s.Job(job); err != nil {
		return err
	}
	data, err := json.Marshal(ns)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		n, err := tx.CreateBucketIfNotExists(bNotices)
		if err != nil {
			return err
		}
		return n.Put(noticeKey(job, "\x00settings"), data)
	})
	if err != nil {
		return writeError(s.Path, err)
	}
	return nil
}

// dropNotices forgets a deleted job's notice settings and marks: a new job
// of the same name starts with none. Its mails in the outbox stay: they are
// about what happened.
func dropNotices(tx *bolt.Tx, job string) error {
	n := tx.Bucket(bNotices)
	if n == nil {
		return nil
	}
	prefix := noticeKey(job, "")
	c := n.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
