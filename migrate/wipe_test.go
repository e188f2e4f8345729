package migrate_test

import (
	"context"
	"testing"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/internal/sealscan"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestSucceededPasswordsNotRecoverable: once a run ends and the state file
// is closed, the passwords of the accounts that succeeded (wiped then) can
// not be decrypted from the file with its key file, live records or freed
// pages; those of the account that failed, still kept for a retry, can.
func TestSucceededPasswordsNotRecoverable(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 3, Messages: 20, BadPassword: 2})
	if err := runner(w, migrate.Config{Accounts: 2, Lanes: 2}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	as := accounts(t, w)
	var wiped []string
	for _, u := range w.Users[:2] {
		if a := as[u.Old]; a.State != state.AccountSucceeded {
			t.Fatalf("%s: %s %q", u.Old, a.State, a.Reason)
		}
		wiped = append(wiped, u.OldPW, u.NewPW)
	}
	if err := w.Store.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := sealscan.Recoverable(w.Path, wiped)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 0 {
		t.Fatalf("passwords wiped after success are recoverable from the state file: %q", got)
	}
	kept := w.Users[2]
	if got, _ := sealscan.Recoverable(w.Path, []string{kept.OldPW, kept.NewPW}); len(got) != 2 {
		t.Fatalf("the failed account's kept passwords are not found (%q): the search proves nothing", got)
	}
	w.Open() // for the cleanup's Close
}
