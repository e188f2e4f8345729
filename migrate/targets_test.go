package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestNewAddressInOneJob: a new address another job (not ended) already
// moves into is refused at job creation, when accounts are added, and when
// a member enrolls, each time naming the job and the old address that hold
// it; nothing half-made stays; once that job is ended the address is free.
func TestNewAddressInOneJob(t *testing.T) {
	store := tempStore(t)
	m := migrate.NewIdleManager(store, migrate.Config{})
	ctx := context.Background()
	first := memberRequest("first")
	first.Accounts = []migrate.AccountRow{{Line: 1, Old: "ann@old.test", New: "ann@new.test"}, {Line: 2, Old: "bob@old.test", New: "bob@new.test"}}
	if _, _, err := m.Create(ctx, first, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := store.SetJobState("first", state.JobRunning); err != nil {
		t.Fatal(err)
	}

	// Creation: another old mailbox into ann's new one.
	second := memberRequest("second")
	second.Accounts = []migrate.AccountRow{{Line: 1, Old: "cy@old.test", New: "cy@new.test"}, {Line: 2, Old: "ann2@old.test", New: "ANN@new.test"}}
	_, _, err := m.Create(ctx, second, "admin")
	if !errors.Is(err, migrate.ErrNewTaken) {
		t.Fatalf("a second job into ann@new.test: %v", err)
	}
	for _, want := range []string{"line 2", "ann@new.test is already the new address of ann@old.test in job first (running)", "end job first first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q lacks %q", err, want)
		}
	}
	if _, err := store.Job("second"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a refused job stays behind: %v", err)
	}

	// Added accounts: the same, and the job keeps what it had.
	second.Accounts = second.Accounts[:1]
	if _, _, err := m.Create(ctx, second, "admin"); err != nil {
		t.Fatal(err)
	}
	_, err = m.AddAccounts("second", []migrate.AccountRow{{Line: 1, Old: "bob@old.test", New: "bob@new.test"}}, "admin")
	if !errors.Is(err, migrate.ErrNewTaken) || !strings.Contains(err.Error(), "bob@new.test is already the new address of bob@old.test in job first") {
		t.Fatalf("adding bob to a second job: %v", err)
	}
	if accts, _ := store.Accounts("second"); len(accts) != 1 {
		t.Fatalf("job second holds %d accounts after a refused add", len(accts))
	}
	// The same job may take its own new address again (a new password,
	// or a second old mailbox into it).
	if _, err := m.AddAccounts("first", []migrate.AccountRow{{Line: 1, Old: "ann-old2@old.test", New: "ann@new.test"}}, "admin"); err != nil {
		t.Fatalf("a second old mailbox into ann@new.test in the same job: %v", err)
	}

	// Enrollment: bob, listed in first, enrolling in second.
	err = m.CheckEnroll("second", "bob@new.test", "bob-other@old.test")
	if !errors.Is(err, migrate.ErrNewTaken) {
		t.Fatalf("bob enrolling in a second job: %v", err)
	}
	if err := m.Enroll("second", migrate.Enrollment{Member: "bob@new.test", Old: "bob-other@old.test", Password: "old-pw"}); !errors.Is(err, migrate.ErrNewTaken) {
		t.Fatalf("bob enrolled in a second job: %v", err)
	}

	// Once first is ended, its new addresses are free.
	if err := m.Control("first", "end", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddAccounts("second", []migrate.AccountRow{{Line: 1, Old: "bob@old.test", New: "bob@new.test"}}, "admin"); err != nil {
		t.Fatalf("bob into second after first ended: %v", err)
	}
	m.Stop()
}
