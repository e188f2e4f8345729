package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	job := &Job{ID: "j1", State: JobCreated, Created: time.Now()}
	if err := s.PutJob(job); err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("s3cret-pw")) {
		t.Fatal("sealed secret holds the plain text")
	}
	a := &Account{ID: "a@old", Source: "a@old", Target: "a@new", State: AccountNotStarted, SourceSecret: sealed}
	if err := s.PutAccounts("j1", a); err != nil {
		t.Fatal(err)
	}
	cp := &Checkpoint{Folder: "INBOX", Validity: 7, Total: 3}
	cp.Done.AddRange(1, 3)
	if err := s.Save([]Progress{{Job: "j1", Account: a, Checkpoints: []*Checkpoint{cp}}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.AddEvent(&Event{Job: "j1", Kind: "k", Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	for _, p := range []string{path, path + ".key"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("s3cret-pw")) {
		t.Fatal("state file holds the plain password")
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Account("j1", "a@old")
	if err != nil {
		t.Fatal(err)
	}
	pw, err := s.Unseal(got.SourceSecret)
	if err != nil || pw != "s3cret-pw" {
		t.Fatalf("unseal: %q %v", pw, err)
	}
	cps, err := s.Checkpoints("j1", "a@old")
	if err != nil || cps["INBOX"].Done.String() != "1:3" || cps["INBOX"].Validity != 7 {
		t.Fatalf("checkpoint: %+v %v", cps["INBOX"], err)
	}
	evs, err := s.Events("j1", 1, 0)
	if err != nil || len(evs) != 2 || evs[0].Seq != 2 {
		t.Fatalf("events after 1: %d %v", len(evs), err)
	}
	if _, err := s.Job("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

func TestStoreSecondProcessGetsClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = Open(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("second open took %v", d)
	}
}

func TestWrongKeyCannotUnseal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := s.Seal("pw")
	s.Close()
	os.Remove(path + ".key")
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Unseal(sealed); err == nil {
		t.Fatal("unsealed with a new key")
	}
}

// TestOpenExistingNeverCreates: reading commands given a mistyped path get
// a clear error, and no empty state file (or key) appears there.
func TestOpenExistingNeverCreates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "typo.db")
	_, err := OpenExisting(path)
	if !errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), path) {
		t.Fatalf("missing state file: got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files were created: %v", ents)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenExisting(path)
	if err != nil {
		t.Fatalf("existing state file: %v", err)
	}
	s.Close()
}
