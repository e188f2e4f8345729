package state

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestOutboxStates: a mail is waiting, then retrying (due again at its
// next try), or held (never due on its own); a retry makes it due, a send
// removes and counts it, and all of it survives reopening the file.
func TestOutboxStates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, to := range []string{"a@x.example", "b@x.example", "c@x.example"} {
		if err := s.QueueMail(&OutMail{Job: "j", Kind: "member", To: []string{to}, Subject: "s", Data: []byte("mail for " + to)}); err != nil {
			t.Fatal(err)
		}
	}
	due, _ := s.MailsDue(now, 0)
	if len(due) != 3 || due[0].Seq >= due[1].Seq {
		t.Fatalf("due %v, want the 3 mails oldest first", due)
	}
	if err := s.MailFailed(due[0].Seq, now.Add(time.Minute), "cannot connect", false); err != nil {
		t.Fatal(err)
	}
	if err := s.MailFailed(due[1].Seq, now, "refused for good", true); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.MailsDue(now, 0); len(d) != 1 || d[0].Seq != due[2].Seq {
		t.Fatalf("due now %v, want only the untried mail", d)
	}
	if next, ok := s.NextMailDue(); !ok || next.After(now) {
		t.Fatalf("next due %v %v: the untried mail is due now", next, ok)
	}
	if err := s.MailSent(due[2].Seq); err != nil {
		t.Fatal(err)
	}
	if next, ok := s.NextMailDue(); !ok || !next.Equal(now.Add(time.Minute).UTC()) {
		t.Errorf("next due %v, want the retrying mail's next try", next)
	}
	if d, _ := s.MailsDue(now.Add(2*time.Minute), 0); len(d) != 1 || d[0].Attempts != 1 || d[0].LastError != "cannot connect" {
		t.Fatalf("due later %+v, want the retrying mail with its error", d)
	}
	s.Close()

	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, _ := s.Outbox()
	if len(all) != 2 || !all[1].Held || string(all[0].Data) != "mail for a@x.example" || s.OutboxSent() != 1 {
		t.Fatalf("after reopening: %+v, %d sent", all, s.OutboxSent())
	}
	if n, err := s.RetryMail(0); err != nil || n != 2 {
		t.Fatalf("retry all: %d %v", n, err)
	}
	select {
	case <-s.MailRetried():
	default:
		t.Error("a retry did not signal the sender")
	}
	if d, _ := s.MailsDue(now, 0); len(d) != 2 {
		t.Errorf("after retry all: %d due, want 2", len(d))
	}
	if err := s.DropMail(all[1].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.DropMail(all[1].Seq); !errors.Is(err, ErrNotFound) {
		t.Errorf("dropping a dropped mail: %v", err)
	}
	if _, err := s.RetryMail(9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("retrying an unknown mail: %v", err)
	}
}

// TestNoticeMarks: notice settings and marks are per job and survive.
func TestNoticeMarks(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutNoticeSettings("nope", NoticeSettings{Daily: true}); !errors.Is(err, ErrNotFound) {
		t.Errorf("settings of an unknown job: %v", err)
	}
	s.PutJob(&Job{ID: "j"})
	if err := s.PutNoticeSettings("j", NoticeSettings{RemindDays: []int{1, 7}, Daily: true}); err != nil {
		t.Fatal(err)
	}
	ns, _ := s.NoticeSettingsOf("j")
	if len(ns.RemindDays) != 2 || !ns.Daily {
		t.Errorf("settings %+v", ns)
	}
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	if _, ok := s.Noticed("j", "remind/7/a"); ok {
		t.Error("a notice marked before it was sent")
	}
	s.MarkNoticed("j", "remind/7/a", at)
	if got, ok := s.Noticed("j", "remind/7/a"); !ok || !got.Equal(at) {
		t.Errorf("mark %v %v", got, ok)
	}
	if _, ok := s.Noticed("k", "remind/7/a"); ok {
		t.Error("another job's mark")
	}
}

// TestDeleteJobForgetsNotices: a job made again under a deleted job's name
// starts with no marks and no settings.
func TestDeleteJobForgetsNotices(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.PutJob(&Job{ID: "j"})
	s.PutJob(&Job{ID: "j2"})
	s.PutNoticeSettings("j", NoticeSettings{Daily: true})
	s.MarkNoticed("j", "remind/1/a", time.Now())
	s.MarkNoticed("j2", "remind/1/a", time.Now())
	if err := s.DeleteJob("j"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Noticed("j", "remind/1/a"); ok {
		t.Error("a deleted job's mark survived")
	}
	if ns, _ := s.NoticeSettingsOf("j"); ns.Daily {
		t.Error("a deleted job's settings survived")
	}
	if _, ok := s.Noticed("j2", "remind/1/a"); !ok {
		t.Error("another job's mark went with it")
	}
}
