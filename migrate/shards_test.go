package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestShardBudgetsAddUp: the shards' parts of a job's limit add up to the
// limit exactly, each shard's accounts and lanes stay within its part, and
// a limit too small to share is refused with the number that would do.
func TestShardBudgetsAddUp(t *testing.T) {
	for _, n := range []int{2, 3, 7, 8, 20} {
		for _, limit := range []int{2 * n, 2*n + 1, 3*n - 1, 50, 97} {
			if limit < 2*n {
				continue
			}
			sum := 0
			for i := range n {
				sh := &state.Shard{Index: i, Count: n}
				part, err := migrate.ShareLimit(limit, sh)
				if err != nil {
					t.Fatal(err)
				}
				lanes, places, err := migrate.SourceBudget(limit, 4, sh)
				if err != nil {
					t.Fatalf("limit %d over %d shards, shard %d: %v", limit, n, i, err)
				}
				if lanes < 1 || places < 1 || lanes+places != part {
					t.Fatalf("limit %d over %d shards, shard %d: %d lanes + %d places, part %d", limit, n, i, lanes, places, part)
				}
				sum += part
			}
			if sum != limit {
				t.Fatalf("limit %d over %d shards: parts add up to %d", limit, n, sum)
			}
		}
	}
	if _, _, err := migrate.SourceBudget(15, 4, &state.Shard{Index: 7, Count: 8}); err == nil || !strings.Contains(err.Error(), "--per-host 16 or more") {
		t.Fatalf("15 connections over 8 shards: %v", err)
	}
	if _, err := migrate.ShareLimit(5, &state.Shard{Index: 0, Count: 8}); err == nil || !strings.Contains(err.Error(), "--per-host 8 or more") {
		t.Fatalf("5 connections over 8 shards: %v", err)
	}
	// A whole job keeps its limits as given.
	if lanes, places, err := migrate.SourceBudget(10, 4, nil); err != nil || lanes != 10 || places != 4 {
		t.Fatalf("no shard: %d lanes, %d places, %v", lanes, places, err)
	}
}

// TestExportShards: every account lands in the shard its address hashes
// to, in one shard only, with its passwords sealed as before and readable
// with the shard's key file; later accounts are refused by a shard they
// do not belong to, with the right shard named; a shard cannot be exported
// again, nor over existing files.
func TestExportShards(t *testing.T) {
	store := tempStore(t)
	m := migrate.NewIdleManager(store, migrate.Config{})
	req := memberRequest("acme")
	req.Mode = state.ModePasswords
	for i := range 60 {
		req.Accounts = append(req.Accounts, migrate.AccountRow{Line: i + 1, Old: fmt.Sprintf("U%02d@old.test", i), New: fmt.Sprintf("u%02d@new.test", i),
			OldPassword: fmt.Sprintf("old-%d", i), NewPassword: fmt.Sprintf("new-%d", i)})
	}
	if _, _, err := m.Create(context.Background(), req, "test"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "shards")
	counts, err := m.ExportShards("acme", 4, dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	total := 0
	for i, n := range counts {
		total += n
		s, err := state.Open(state.ShardPath(dir, i))
		if err != nil {
			t.Fatal(err)
		}
		job, err := s.Job("acme")
		if err != nil || job.Shard == nil || *job.Shard != (state.Shard{Index: i, Count: 4}) {
			t.Fatalf("shard %d: job %+v, %v", i, job, err)
		}
		accts, _ := s.Accounts("acme")
		if len(accts) != n || n == 0 {
			t.Fatalf("shard %d: %d accounts, export said %d", i, len(accts), n)
		}
		for _, a := range accts {
			if prev, ok := seen[a.ID]; ok {
				t.Fatalf("%s in shards %d and %d", a.ID, prev, i)
			}
			seen[a.ID] = i
			if want := state.ShardOf(strings.ToLower(a.ID), 4); want != i {
				t.Fatalf("%s in shard %d, hash says %d", a.ID, i, want)
			}
			var k int
			fmt.Sscanf(a.ID, "U%02d@", &k)
			if pw, err := s.Unseal(a.SourceSecret); err != nil || pw != fmt.Sprintf("old-%d", k) {
				t.Fatalf("%s: old password not readable in its shard: %v", a.ID, err)
			}
		}
		sm := migrate.NewIdleManager(s, migrate.Config{})
		// An account of another shard is refused, naming its shard.
		other := ""
		for j := 0; other == ""; j++ {
			if addr := fmt.Sprintf("new%d@old.test", j); state.ShardOf(addr, 4) != i {
				other = addr
			}
		}
		_, err = sm.AddAccounts("acme", []migrate.AccountRow{{Line: 1, Old: other, New: "x@new.test", OldPassword: "p", NewPassword: "q"}}, "test")
		var wrong *state.WrongShardError
		if !errors.As(err, &wrong) || wrong.Right != state.ShardOf(other, 4) ||
			!strings.Contains(err.Error(), fmt.Sprintf("shard %d/4", state.ShardOf(other, 4))) {
			t.Fatalf("shard %d took %s: %v", i, other, err)
		}
		// A member of another shard enrolling here is refused the same way.
		if err := sm.CheckEnroll("acme", "x@new.test", other); !errors.As(err, &wrong) {
			t.Fatalf("shard %d let %s enroll: %v", i, other, err)
		}
		// One of its own is taken.
		mine := ""
		for j := 0; mine == ""; j++ {
			if addr := fmt.Sprintf("new%d@old.test", j); state.ShardOf(addr, 4) == i {
				mine = addr
			}
		}
		if _, err := sm.AddAccounts("acme", []migrate.AccountRow{{Line: 1, Old: mine, New: mine + ".new", OldPassword: "p", NewPassword: "q"}}, "test"); err != nil {
			t.Fatalf("shard %d refused its own %s: %v", i, mine, err)
		}
		if _, err := sm.ExportShards("acme", 2, filepath.Join(t.TempDir(), "again"), "test"); err == nil || !strings.Contains(err.Error(), "already shard") {
			t.Fatalf("a shard exported again: %v", err)
		}
		s.Close()
	}
	if total != 60 || len(seen) != 60 {
		t.Fatalf("%d accounts exported (%d distinct), want 60", total, len(seen))
	}
	if _, err := m.ExportShards("acme", 4, dir, "test"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("export over existing shards: %v", err)
	}
	for _, bad := range []int{0, 1, state.MaxShards + 1} {
		if _, err := m.ExportShards("acme", bad, t.TempDir(), "test"); err == nil {
			t.Fatalf("export as %d shards: no error", bad)
		}
	}
	// The whole job takes any account, as before.
	if _, err := m.AddAccounts("acme", []migrate.AccountRow{{Line: 1, Old: "late@old.test", New: "late@new.test", OldPassword: "p", NewPassword: "q"}}, "test"); err != nil {
		t.Fatal(err)
	}
}

// TestParseShard: i/N with 0 <= i < N; anything else says what to give.
func TestParseShard(t *testing.T) {
	if sh, err := state.ParseShard(" 3/8 "); err != nil || *sh != (state.Shard{Index: 3, Count: 8}) {
		t.Fatalf("3/8: %+v, %v", sh, err)
	}
	for _, bad := range []string{"", "3", "8/8", "-1/8", "a/8", "1/0", "1/x"} {
		if _, err := state.ParseShard(bad); err == nil {
			t.Errorf("shard %q taken", bad)
		}
	}
	// The hash is the same everywhere and for every spelling of an address.
	if state.ShardOf("Alice@Old.Test", 8) != state.ShardOf("alice@old.test", 8) {
		t.Fatal("the shard depends on the address's case")
	}
	// FNV-1a (32 bit) of "alice@old.test" is 2778975148.
	if got := state.ShardOf("alice@old.test", 1000); got != 148 {
		t.Fatalf("ShardOf changed: %d", got)
	}
}

// TestShardOrders: a shard obeys pause, resume and end written to the
// shards' order file, through its own control socket; an order standing
// when it starts is obeyed too, unless it is a resume.
func TestShardOrders(t *testing.T) {
	store := tempStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := migrate.NewManagerOf(ctx, store, migrate.Config{}, "acme")
	defer m.Stop()
	if _, _, err := m.Create(ctx, memberRequest("acme"), "test"); err != nil {
		t.Fatal(err)
	}
	if err := m.ServeControl(ctx, store.Path); err != nil {
		t.Fatal(err)
	}
	orders := filepath.Join(t.TempDir(), migrate.ShardOrdersFile)
	// A resume standing from before is not news to a shard that starts.
	if err := migrate.WriteShardOrder(orders, "acme", "resume", "admin:alice"); err != nil {
		t.Fatal(err)
	}
	if err := m.Start("acme"); err != nil {
		t.Fatal(err)
	}
	defer func(prev time.Duration) { migrate.ShardOrderPoll = prev }(migrate.ShardOrderPoll)
	migrate.ShardOrderPoll = 20 * time.Millisecond
	go migrate.WatchShardOrders(ctx, orders, store.Path, "acme", slog.New(slog.DiscardHandler))
	state_ := func() state.JobState {
		j, err := store.Job("acme")
		if err != nil {
			t.Fatal(err)
		}
		return j.State
	}
	waitFor := func(want state.JobState) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); state_() != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("job is %s, want %s", state_(), want)
			}
		}
	}
	waitFor(state.JobRunning)
	for _, step := range []struct {
		op   string
		want state.JobState
	}{{"pause", state.JobPaused}, {"resume", state.JobRunning}, {"end", state.JobEnded}} {
		if err := migrate.WriteShardOrder(orders, "acme", step.op, "admin:alice"); err != nil {
			t.Fatal(err)
		}
		waitFor(step.want)
	}
	evs, err := store.Events("acme", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	byAlice := 0
	for _, e := range evs {
		if strings.HasPrefix(e.Kind, "admin.") && e.Who == "admin:alice" {
			byAlice++
		}
	}
	if byAlice != 3 {
		t.Fatalf("%d admin events by alice, want pause, resume and end", byAlice)
	}
	if err := migrate.WriteShardOrder(orders, "acme", "delete", ""); err == nil {
		t.Fatal("delete sent to shards")
	}
}
