package state

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sum is what the totals must equal: every account read and added up.
func sum(t *testing.T, s *Store, job string) *Totals {
	t.Helper()
	accts, err := s.Accounts(job)
	if err != nil {
		t.Fatal(err)
	}
	tot := &Totals{N: map[AccountState]int{}}
	for _, a := range accts {
		tot.Count(a, 1)
	}
	return tot
}

func checkTotals(t *testing.T, s *Store, job string) {
	t.Helper()
	got, err := s.Totals(job)
	if err != nil {
		t.Fatal(err)
	}
	if want := sum(t, s, job); !reflect.DeepEqual(got, want) {
		t.Fatalf("totals of %s:\n got %+v\nwant %+v", job, got, want)
	}
}

// TestTotalsFollowEveryWrite: the kept totals and the state index equal
// what reading every account gives, through new accounts, replaced ones,
// state changes in batches, a file from before totals were kept, and a
// deleted job.
func TestTotalsFollowEveryWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []string{"a", "b"} {
		if err := s.PutJob(&Job{ID: j, State: JobRunning, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	var accts []*Account
	for i := range 300 {
		a := &Account{ID: fmt.Sprintf("u%03d@old", i), State: AccountNotStarted}
		if i%3 == 0 {
			a.SourceSecret = []byte("sealed")
		}
		accts = append(accts, a)
	}
	if err := s.PutAccounts("a", accts...); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccounts("b", &Account{ID: "x@old", State: AccountFailed}); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "a")
	var batch []Progress
	for i, a := range accts {
		switch i % 4 {
		case 0:
			a.State, a.Counts = AccountSucceeded, Counts{ToImport: 5, Imported: 5, Bytes: 500}
		case 1:
			a.State, a.Counts = AccountFailed, Counts{ToImport: 5, Imported: 2, Failed: 3}
		case 2:
			a.State, a.Counts = AccountRunning, Counts{ToImport: 5, Imported: 1}
		}
		batch = append(batch, Progress{Job: "a", Account: a})
	}
	// The same account twice in one batch counts once.
	batch = append(batch, Progress{Job: "a", Account: accts[1]}, Progress{Job: "b", Account: &Account{ID: "x@old", State: AccountSucceeded}})
	if err := s.Save(batch); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "a")
	checkTotals(t, s, "b")
	tot, _ := s.Totals("a")
	if tot.N[AccountFailed] != 75 || tot.Counts.Failed != 225 || tot.Accounts != 300 {
		t.Fatalf("totals %+v", tot)
	}

	// One page of the failed accounts, read alone.
	before := s.AccountsRead()
	page, err := s.AccountPage("a", []AccountState{AccountFailed}, 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.AccountsRead() - before; n != 5 {
		t.Fatalf("a page of 5 read %d accounts", n)
	}
	var ids []string
	for _, a := range page {
		ids = append(ids, a.ID)
	}
	if want := []string{"u041@old", "u045@old", "u049@old", "u053@old", "u057@old"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("page %v, want %v", ids, want)
	}
	// Two states merged in ID order, and the last page short.
	page, _ = s.AccountPage("a", []AccountState{AccountRunning, AccountNotStarted}, 148, 10)
	if len(page) != 2 || page[0].ID != "u298@old" || page[1].ID != "u299@old" {
		t.Fatalf("last page %+v", page)
	}

	// A file written before totals were kept gets them when opened.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bTotals); err != nil {
			return err
		}
		return tx.DeleteBucket(bByState)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkTotals(t, s, "a")
	if page, _ = s.AccountPage("a", []AccountState{AccountFailed}, 0, 1000); len(page) != 75 {
		t.Fatalf("%d failed accounts in the rebuilt index", len(page))
	}
	if err := s.DeleteJob("a"); err != nil {
		t.Fatal(err)
	}
	if tot, _ := s.Totals("a"); tot.Accounts != 0 {
		t.Fatalf("a deleted job keeps totals %+v", tot)
	}
	if page, _ = s.AccountPage("a", []AccountState{AccountFailed}, 0, 10); len(page) != 0 {
		t.Fatalf("a deleted job keeps %d indexed accounts", len(page))
	}
	checkTotals(t, s, "b")
}

// TestByTarget: the new-address index follows new accounts, a changed
// new address, and a deleted job.
func TestByTarget(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, j := range []string{"a", "b"} {
		if err := s.PutJob(&Job{ID: j, State: JobRunning, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(job, id, target string) {
		t.Helper()
		if err := s.PutAccounts(job, &Account{ID: id, Target: target, State: AccountNotStarted}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "x@old", "X@new")
	put("a", "y@old", "x@new")
	put("b", "x@old", "x@New")
	put("b", "z@old", "z@new")
	refs, _ := s.ByTarget("x@NEW")
	if want := []TargetRef{{"a", "x@old"}, {"a", "y@old"}, {"b", "x@old"}}; !reflect.DeepEqual(refs, want) {
		t.Fatalf("by target: %v, want %v", refs, want)
	}
	put("a", "y@old", "y@new")
	if err := s.DeleteJob("b"); err != nil {
		t.Fatal(err)
	}
	refs, _ = s.ByTarget("x@new")
	if want := []TargetRef{{"a", "x@old"}}; !reflect.DeepEqual(refs, want) {
		t.Fatalf("by target after changes: %v, want %v", refs, want)
	}
	if refs, _ = s.ByTarget("z@new"); len(refs) != 0 {
		t.Fatalf("a deleted job's account is still indexed: %v", refs)
	}
	// A job removed by the admin (banjia job delete) leaves no index or
	// totals behind either.
	if err := s.PutJob(&Job{ID: "c", State: JobCompleted, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	put("c", "w@old", "w@new")
	if err := s.RemoveJob("c"); err != nil {
		t.Fatal(err)
	}
	if refs, _ = s.ByTarget("w@new"); len(refs) != 0 {
		t.Fatalf("a removed job's account is still indexed: %v", refs)
	}
	if tot, _ := s.Totals("c"); tot.Accounts != 0 {
		t.Fatalf("a removed job keeps totals %+v", tot)
	}
}

// TestLatestEvents: a job's newest events, newest first, read from the
// end of the log.
func TestLatestEvents(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		job := []string{"a", "ab", "b"}[i%3]
		if err := s.AddEvent(&Event{Job: job, Kind: "warning", Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	evs, _ := s.LatestEvents("a", 3)
	for _, e := range evs {
		got = append(got, e.Job+e.Message)
	}
	if want := []string{"a9", "a6", "a3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("latest of a: %v, want %v", got, want)
	}
	if evs, _ = s.LatestEvents("", 2); len(evs) != 2 || evs[0].Message != "9" || evs[1].Message != "8" {
		t.Fatalf("latest of all: %+v", evs)
	}
	if s.EventSeq() != 10 {
		t.Fatalf("event seq %d", s.EventSeq())
	}
}
