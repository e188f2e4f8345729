package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/internal/sealscan"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestClosedPasswordsNotRecoverable: after a run, the passwords stay
// sealed for the syncs (the search finds them, so it proves something);
// once the job is closed, none of them, nor the target admin's, can be
// decrypted from the file with its key file, in live records or freed
// pages, whether the file is still open or closed.
func TestClosedPasswordsNotRecoverable(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 3, Messages: 20, BadPassword: 2})
	const targetAdminPW = "target-admin-pw-3301"
	j, _ := w.Store.Job(w.Job)
	j.TargetAdminSecret, _ = w.Store.Seal(targetAdminPW)
	if err := w.Store.PutJob(j); err != nil {
		t.Fatal(err)
	}
	if err := runner(w, migrate.Config{Accounts: 2, Lanes: 2}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	as := accounts(t, w)
	all := []string{targetAdminPW}
	for _, u := range w.Users {
		all = append(all, u.OldPW, u.NewPW)
	}
	for _, u := range w.Users[:2] {
		if a := as[u.Old]; a.State != state.AccountSucceeded {
			t.Fatalf("%s: %s %q", u.Old, a.State, a.Reason)
		}
	}
	if got, _ := sealscan.Recoverable(w.Path, all); len(got) != len(all) {
		t.Fatalf("before the close only %q of %d passwords are found: the search proves nothing", got, len(all))
	}
	if err := migrate.NewIdleManager(w.Store, migrate.Config{}).Close(w.Job, "test"); err != nil {
		t.Fatal(err)
	}
	if got, err := sealscan.Recoverable(w.Path, all); err != nil || len(got) > 0 {
		t.Fatalf("passwords recoverable from the open state file after close: %q (%v)", got, err)
	}
	if err := w.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := sealscan.Recoverable(w.Path, all); err != nil || len(got) > 0 {
		t.Fatalf("passwords recoverable from the state file after close: %q (%v)", got, err)
	}
	w.Open() // for the cleanup's Close
}

// TestRetentionWipesPasswords: credentials past the retention set at
// create are wiped (and scrubbed) by ExpireCredentials, the event says
// why, and a sync is then refused with the reason; credentials within it
// are left alone.
func TestRetentionWipesPasswords(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 5, BadPassword: -1})
	if err := runner(w, migrate.Config{}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	m := migrate.NewManager(context.Background(), w.Store, migrate.Config{})
	defer m.Stop()
	if err := m.ExpireCredentials(); err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts(t, w) {
		if !a.HasSecrets() {
			t.Fatalf("%s: passwords wiped within the retention", a.ID)
		}
	}
	// The retention ran out an hour ago.
	past := time.Now().Add(-time.Hour)
	err := w.Store.UpdateJob(w.Job, func(j *state.Job) error {
		j.KeepCredentials, j.CredentialsUntil = time.Hour, past
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	as, _ := w.Store.Accounts(w.Job)
	for _, a := range as {
		a.SecretsUntil = past
	}
	if err := w.Store.PutAccounts(w.Job, as...); err != nil {
		t.Fatal(err)
	}
	if err := m.ExpireCredentials(); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, u := range w.Users {
		all = append(all, u.OldPW, u.NewPW)
	}
	if got, err := sealscan.Recoverable(w.Path, all); err != nil || len(got) > 0 {
		t.Fatalf("passwords past their retention are recoverable: %q (%v)", got, err)
	}
	evs, _ := w.Store.Events(w.Job, 0, 0)
	found := false
	for _, e := range evs {
		found = found || (e.Kind == "job.credentials_wiped" && strings.Contains(e.Message, "the stored passwords of 2 accounts wiped") && strings.Contains(e.Message, "retention of 1h set at create") &&
			e.Why != nil && strings.HasPrefix(e.Why.In("zh"), "2 个帐号保存的密码已清除: 创建任务时设定的保留期 1h"))
	}
	if !found {
		t.Fatal("no event says the passwords were wiped for the retention")
	}
	err = m.Sync(w.Job, "test")
	if err == nil || !strings.Contains(err.Error(), "stored credentials were wiped at") || !strings.Contains(err.Error(), "banjia job add") {
		t.Fatalf("sync without credentials: %v", err)
	}
}

// TestRetentionWhileWaitingForMembers: a member-triggered job that waits
// for its members wakes when a member's password reaches its retention,
// wipes it from the state file and from its own copy of the account, and
// goes on waiting.
func TestRetentionWhileWaitingForMembers(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 5, BadPassword: -1})
	memberJob(t, w, time.Now().Add(time.Hour))
	for _, u := range w.Users {
		enroll(t, w, u)
	}
	as, _ := w.Store.Accounts(w.Job)
	soon := time.Now().Add(3 * time.Second)
	for _, a := range as {
		a.SecretsUntil = soon
	}
	if err := w.Store.PutAccounts(w.Job, as...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runner(w, migrate.Config{})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, w.Job) }()
	waitFor(t, "both members moved", func() bool {
		for _, a := range accounts(t, w) {
			if a.State != state.AccountSucceeded || !a.HasSecrets() {
				return false
			}
		}
		return true
	})
	waitFor(t, "the passwords wiped at their retention", func() bool {
		evs, _ := w.Store.Events(w.Job, 0, 0)
		for _, e := range evs {
			if e.Kind == "job.credentials_wiped" && strings.Contains(e.Message, "the stored passwords of 2 accounts wiped") {
				return true
			}
		}
		return false
	})
	if time.Now().Before(soon) {
		t.Fatal("passwords wiped before their retention ran out")
	}
	var all []string
	for _, u := range w.Users {
		all = append(all, u.OldPW, u.NewPW)
	}
	if got, err := sealscan.Recoverable(w.Path, all); err != nil || len(got) > 0 {
		t.Fatalf("passwords past their retention are recoverable: %q (%v)", got, err)
	}
	select {
	case err := <-done:
		t.Fatalf("the job stopped waiting for its members: %v", err)
	default:
	}
	r.Stop()
	if err := <-done; !errors.Is(err, migrate.ErrInterrupted) {
		t.Fatal(err)
	}
	// Nothing the runner held wrote them back.
	for _, a := range accounts(t, w) {
		if a.HasSecrets() {
			t.Fatalf("%s: passwords written back after the wipe", a.ID)
		}
	}
}
