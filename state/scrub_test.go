package state

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/sealscan"
)

// recoverable is what someone holding a copy of the state file and its key
// file could decrypt of passwords.
func recoverable(t *testing.T, path string, passwords []string) []string {
	t.Helper()
	got, err := sealscan.Recoverable(path, passwords)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestWipedSecretsScrubbed: a password wiped from an account can no longer
// be decrypted from the state file with its key once the store scrubbed
// (the scrub a wipe schedules, or Close); the passwords still held stay
// readable, and the store goes on working on the scrubbed file.
func TestWipedSecretsScrubbed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutJob(&Job{ID: "j", State: JobRunning, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var accts []*Account
	var wiped, kept []string
	for i := 0; i < 6; i++ {
		pw := fmt.Sprintf("old-password-%d-Zq8", i)
		tpw := fmt.Sprintf("new-password-%d-Xk3", i)
		a := &Account{ID: fmt.Sprintf("u%d@old", i), Target: fmt.Sprintf("u%d@new", i), State: AccountRunning}
		if a.SourceSecret, err = s.Seal(pw); err != nil {
			t.Fatal(err)
		}
		if a.TargetSecret, err = s.Seal(tpw); err != nil {
			t.Fatal(err)
		}
		accts = append(accts, a)
		if i%2 == 0 {
			wiped = append(wiped, pw, tpw)
		} else {
			kept = append(kept, pw, tpw)
		}
	}
	if err := s.PutAccounts("j", accts...); err != nil {
		t.Fatal(err)
	}
	// Progress rewrites the records a few times, as a run does.
	for round := 0; round < 3; round++ {
		var batch []Progress
		for _, a := range accts {
			a.Counts.Imported++
			batch = append(batch, Progress{Job: "j", Account: a})
		}
		if err := s.Save(batch); err != nil {
			t.Fatal(err)
		}
	}
	if got := recoverable(t, path, wiped); len(got) != len(wiped) {
		t.Fatalf("the search finds %d of the %d stored passwords: it cannot prove anything", len(got), len(wiped))
	}

	scrubSoon = time.Hour // this test scrubs by hand
	defer func() { scrubSoon = 5 * time.Second }()
	var batch []Progress
	for i, a := range accts {
		if i%2 == 0 {
			a.State, a.SourceSecret, a.TargetSecret = AccountSucceeded, nil, nil
			batch = append(batch, Progress{Job: "j", Account: a})
		}
	}
	if err := s.Save(batch); err != nil {
		t.Fatal(err)
	}
	// Without the scrub the wiped passwords are still on the free pages:
	// the reason for it.
	if got := recoverable(t, path, wiped); len(got) == 0 {
		t.Fatal("before the scrub no wiped password is recoverable: the test no longer shows what the scrub is for")
	} else {
		t.Logf("before the scrub, %d wiped passwords are still recoverable from free pages", len(got))
	}
	if err := s.Scrub(); err != nil {
		t.Fatal(err)
	}
	if got := recoverable(t, path, wiped); len(got) > 0 {
		t.Fatalf("after the scrub these wiped passwords are still recoverable: %q", got)
	}
	if got := recoverable(t, path, kept); len(got) != len(kept) {
		t.Fatalf("after the scrub only %d of the %d passwords still held are readable", len(got), len(kept))
	}

	// The store works on the new file: reads, writes, sequences.
	a, err := s.Account("j", "u1@old")
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := s.Unseal(a.SourceSecret); err != nil || pw != "old-password-1-Zq8" {
		t.Fatalf("kept password after the scrub: %q, %v", pw, err)
	}
	if err := s.AddEvent(&Event{Job: "j", Kind: "k", Message: "after"}); err != nil {
		t.Fatal(err)
	}
	uids, err := s.AssignUIDs("j", "u1@old", "INBOX", []string{"x", "y"})
	if err != nil || uids[0] != 1 || uids[1] != 2 {
		t.Fatalf("uids %v, %v", uids, err)
	}

	// A wipe just before Close is scrubbed by Close.
	a.SourceSecret, a.TargetSecret = nil, nil
	if err := s.PutAccounts("j", a); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := recoverable(t, path, append(wiped, kept[0], kept[1])); len(got) > 0 {
		t.Fatalf("after Close these wiped passwords are recoverable: %q", got)
	}
	if _, err := os.Stat(scrubPath(path)); !os.IsNotExist(err) {
		t.Fatalf("the scrub's copy is left behind: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.Events("j", 0, 0)
	if err != nil || len(evs) != 1 || evs[0].Seq != 1 {
		t.Fatalf("events after reopening: %v, %v", evs, err)
	}
	uids, err = s.AssignUIDs("j", "u1@old", "INBOX", []string{"z"})
	if err != nil || uids[0] != 3 {
		t.Fatalf("a scrub must keep bucket sequences: uid %v, %v", uids, err)
	}
}

// TestWipeSchedulesScrub: a wipe alone leads to a scrub, without Close.
func TestWipeSchedulesScrub(t *testing.T) {
	scrubSoon = 50 * time.Millisecond
	defer func() { scrubSoon = 5 * time.Second }()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pw := "only-until-success-Qw7"
	sealed, _ := s.Seal(pw)
	a := &Account{ID: "a@old", Target: "a@new", SourceSecret: sealed}
	if err := s.PutAccounts("j", a); err != nil {
		t.Fatal(err)
	}
	if len(recoverable(t, path, []string{pw})) == 0 {
		t.Fatal("the search does not find the stored password")
	}
	a.SourceSecret = nil
	if err := s.PutAccounts("j", a); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(recoverable(t, path, []string{pw})) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the wiped password is still recoverable 5 s after the wipe")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestScrubWhileWriting: scrubs swap the file under readers and writers;
// nothing written is lost and nothing fails.
func TestScrubWhileWriting(t *testing.T) {
	scrubSoon = time.Hour
	defer func() { scrubSoon = 5 * time.Second }()
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				sealed, _ := s.Seal(fmt.Sprintf("pw-%d-%d", w, i))
				a := &Account{ID: fmt.Sprintf("w%d-%d@old", w, i), SourceSecret: sealed}
				if err := s.PutAccounts("j", a); err != nil {
					errs <- err
					return
				}
				a.SourceSecret = nil
				if err := s.Save([]Progress{{Job: "j", Account: a}}); err != nil {
					errs <- err
					return
				}
				if err := s.AddEvent(&Event{Job: "j", Kind: "k"}); err != nil {
					errs <- err
					return
				}
				if _, err := s.Accounts("j"); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	for i := 0; i < 20; i++ {
		time.Sleep(5 * time.Millisecond)
		if err := s.Scrub(); err != nil {
			t.Error(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs, err := s.Events("j", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	accts, _ := s.Accounts("j")
	if len(evs) != len(accts) || len(evs) == 0 {
		t.Fatalf("%d events for %d accounts: a write was lost across a scrub", len(evs), len(accts))
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}
