package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// auditLog writes n events of job "big" over 500 accounts and 10 days,
// and some of job "other", as the engine and people would: starts,
// successes, failures, warnings, admins' requests by every kind of actor.
// The clock goes back once, so time order is not the log's order.
func auditLog(t *testing.T, s *Store, n int) []*Event {
	t.Helper()
	// One fsync per event would make the test about the disk.
	s.db.NoSync = true
	defer func() { s.db.NoSync = false }()
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	kinds := []string{"account.started", "account.succeeded", "account.failed", "message.failed", "warning", "account.partial", "admin.pause", "account.paused"}
	actors := []string{string(Engine), AdminActor("alice"), AdminActor(""), TokenActor("ci"), CLIActor("root", "ops1"), MemberActor("u0007@new.test")}
	var all []*Event
	for i := range n {
		at := base.Add(time.Duration(i) * 10 * 24 * time.Hour / time.Duration(n))
		if i == n/2 {
			base = base.Add(-time.Hour) // the clock was set back
		}
		e := &Event{Time: at, Job: "big", Account: fmt.Sprintf("u%04d@old.test", i%500), Kind: kinds[i%len(kinds)], Who: actors[i%len(actors)],
			Message: fmt.Sprintf("event %d", i)}
		if i%97 == 0 {
			e.Account = "" // a job event
		}
		if i%10 == 3 {
			other := &Event{Time: at, Job: "other", Account: "u0001@old.test", Kind: "account.failed", Who: string(Engine), Message: "other job"}
			if err := s.AddEvent(other); err != nil {
				t.Fatal(err)
			}
			all = append(all, other)
		}
		if err := s.AddEvent(e); err != nil {
			t.Fatal(err)
		}
		all = append(all, e)
	}
	return all
}

// want is what a query must find: every event read and tested, in the
// log's time order (newest first unless q.Oldest).
func want(all []*Event, q EventQuery) []uint64 {
	var out []*Event
	for _, e := range all {
		if q.Match(e) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, k int) bool {
		a, b := out[i], out[k]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time) == q.Oldest
		}
		return (a.Seq < b.Seq) == q.Oldest
	})
	seqs := []uint64{}
	for _, e := range out {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

// pages reads every page of q and says how many events each read.
func pages(t *testing.T, s *Store, q EventQuery) (seqs []uint64, reads []int) {
	t.Helper()
	seqs = []uint64{}
	for range 1000 {
		p, err := s.QueryEvents(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			seqs = append(seqs, e.Seq)
		}
		reads = append(reads, p.Read)
		if p.Next == "" {
			return seqs, reads
		}
		q.From = p.Next
	}
	t.Fatal("pages never end")
	return
}

// TestAuditFiltersTenThousandEvents: on a job of 10,000 events over 500
// accounts, every filter (job, account, time range, kind, result, who
// acted) and their combinations page to exactly the events a full read
// finds, in time order both ways; a page of a job, an account or a time
// range reads only the events it lists (cursor ranges over the indexes),
// and takes well under 50 ms. A file written before the indexes gets them
// on open; a deleted job's events leave no index entry.
func TestAuditFiltersTenThousandEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	start := time.Now()
	all := auditLog(t, s, 10_000)
	t.Logf("%d events written in %v", len(all), time.Since(start))
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

	queries := []struct {
		name string
		q    EventQuery
		// exact: every event a page reads is on it (no filter beyond the
		// index's range).
		exact bool
	}{
		{"job", EventQuery{Job: "big"}, true},
		{"account", EventQuery{Job: "big", Account: "u0123@old.test"}, true},
		{"time range", EventQuery{Job: "big", Since: day, Until: day.Add(24 * time.Hour)}, true},
		{"all jobs, time range", EventQuery{Since: day, Until: day.Add(6 * time.Hour)}, true},
		{"account in a time range", EventQuery{Job: "big", Account: "u0007@old.test", Since: day}, true},
		{"kind", EventQuery{Job: "big", Kinds: []string{"account.failed"}}, false},
		{"kind prefix", EventQuery{Job: "big", Kinds: []string{"account"}}, false},
		{"result", EventQuery{Job: "big", Results: []string{ResultFailed}}, false},
		{"who: a kind", EventQuery{Job: "big", Who: []string{"cli"}}, false},
		{"who: a name", EventQuery{Job: "big", Who: []string{"alice"}}, false},
		{"who: the configured admin", EventQuery{Job: "big", Who: []string{"admin:"}}, false},
		{"who: the engine", EventQuery{Job: "big", Who: []string{"banjia"}}, false},
		{"account, result and who", EventQuery{Job: "big", Account: "u0003@old.test", Results: []string{"failed", "warning"}, Who: []string{"token", "member"}}, false},
		{"everything", EventQuery{Job: "big", Account: "u0010@old.test", Since: day.Add(-48 * time.Hour), Until: day, Kinds: []string{"account."}, Results: []string{"ok"}, Who: []string{"banjia"}}, false},
		{"other job", EventQuery{Job: "other"}, true},
		{"no such account", EventQuery{Job: "big", Account: "nobody@old.test"}, true},
	}
	check := func(when string) {
		for _, c := range queries {
			for _, oldest := range []bool{false, true} {
				q := c.q
				q.Oldest, q.Limit = oldest, 100
				got, reads := pages(t, s, q)
				if w := want(all, q); !reflect.DeepEqual(got, w) {
					t.Fatalf("%s, %s (oldest first %v): %d events %v..., want %d %v...", when, c.name, oldest, len(got), got[:min(5, len(got))], len(w), w[:min(5, len(w))])
				}
				if c.exact {
					for i, r := range reads {
						if r > q.Limit {
							t.Fatalf("%s, %s: page %d read %d events for a page of %d", when, c.name, i+1, r, q.Limit)
						}
					}
				}
			}
			// The export is the same events, oldest first, in one go.
			q := c.q
			q.Oldest = true
			var exported []uint64
			if err := s.EachEvent(q, func(e *Event) error { exported = append(exported, e.Seq); return nil }); err != nil {
				t.Fatal(err)
			}
			if w := want(all, q); len(exported) != len(w) || len(w) > 0 && !reflect.DeepEqual(exported, w) {
				t.Fatalf("%s, %s: exported %d events, want %d", when, c.name, len(exported), len(w))
			}
		}
	}
	check("indexed as written")
	s.view(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bEvents, bEvTime, bEvJob, bEvAcct} {
			st := tx.Bucket(b).Stats()
			t.Logf("space: %-7s %6d keys, %5.1f bytes each in leaf pages", b, st.KeyN, float64(st.LeafInuse)/float64(st.KeyN))
		}
		return nil
	})

	// How long a page takes: the job's newest, an account's, a day's, and
	// a page found by a filter tested on each event.
	for _, c := range []struct {
		name string
		q    EventQuery
		max  time.Duration
	}{
		{"newest 100 of the job", EventQuery{Job: "big", Limit: 100}, 50 * time.Millisecond},
		{"an account's history", EventQuery{Job: "big", Account: "u0123@old.test", Limit: 100}, 50 * time.Millisecond},
		{"one day of the job", EventQuery{Job: "big", Since: day, Until: day.Add(24 * time.Hour), Limit: 100}, 50 * time.Millisecond},
		{"failed, by the CLI", EventQuery{Job: "big", Results: []string{"failed"}, Who: []string{"cli"}, Limit: 100}, 200 * time.Millisecond},
	} {
		var best time.Duration
		var p *EventPage
		for i := range 5 {
			t0 := time.Now()
			if p, err = s.QueryEvents(c.q); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); i == 0 || d < best {
				best = d
			}
		}
		t.Logf("page time: %-24s %3d events, %4d read, %v", c.name, len(p.Events), p.Read, best)
		if best > c.max {
			t.Errorf("%s took %v, want under %v", c.name, best, c.max)
		}
	}

	// A file from before the indexes and the compact records: the first
	// 3,000 events as JSON, as banjia wrote them; the indexes are built on
	// open and both kinds of record are read.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bEvents)
		c := b.Cursor()
		var keys, vals [][]byte
		for k, v := c.First(); k != nil && len(keys) < 3000; k, v = c.Next() {
			e, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			old, err := json.Marshal(e)
			if err != nil {
				return err
			}
			keys, vals = append(keys, bytes.Clone(k)), append(vals, old)
		}
		for i := range keys {
			if err := b.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bEvTime, bEvJob, bEvAcct} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	t0 := time.Now()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	t.Logf("indexes of %d events built on open in %v", len(all), time.Since(t0))
	check("indexed on open")

	// A deleted job takes its events and their index entries with it.
	if err := s.RemoveJob("other"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("removing a job with no record: %v", err)
	}
	if err := s.PutJob(&Job{ID: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveJob("other"); err != nil {
		t.Fatal(err)
	}
	var kept []*Event
	for _, e := range all {
		if e.Job != "other" {
			kept = append(kept, e)
		}
	}
	all = kept
	check("after the other job was deleted")
	s.view(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bEvents, bEvTime} {
			if n := tx.Bucket(b).Stats().KeyN; n != len(kept) {
				t.Errorf("%s holds %d keys, want %d", b, n, len(kept))
			}
		}
		return nil
	})
}

// TestActorWords: every kind of actor reads as a person would say it, in
// both languages, and filters match by kind, whole value or name.
func TestActorWords(t *testing.T) {
	for _, c := range []struct {
		who      string
		kind     string
		en, zh   string
		match    []string
		notMatch []string
	}{
		{string(Engine), ActorEngine, "banjia", "banjia（系统）", []string{"banjia"}, []string{"admin", "cli"}},
		{AdminActor("alice"), ActorAdmin, "admin alice (dashboard)", "管理员 alice（管理后台）", []string{"admin", "admin:alice", "ali"}, []string{"admin:bob", "token"}},
		{AdminActor(""), ActorAdmin, "the admin (dashboard)", "管理员（管理后台）", []string{"admin", "admin:"}, []string{"alice"}},
		{TokenActor("ci"), ActorToken, "API token ci", "API 令牌 ci", []string{"token", "token:ci", "ci"}, []string{"admin"}},
		{CLIActor("root", "ops1"), ActorCLI, "root@ops1 (command line)", "root@ops1（命令行）", []string{"cli", "root@", "ops1"}, []string{"member"}},
		{MemberActor("bob@new.test"), ActorMember, "member bob@new.test (portal)", "成员 bob@new.test（自助页面）", []string{"member", "bob"}, []string{"cli"}},
		{"the command line", "", "the command line", "the command line", nil, []string{"cli", "command"}},
	} {
		a := Actor(c.who)
		if a.Kind() != c.kind || a.Text("en") != c.en || a.Text("zh") != c.zh || a.String() != c.en {
			t.Errorf("%q: kind %q, %q, %q", c.who, a.Kind(), a.Text("en"), a.Text("zh"))
		}
		for _, f := range c.match {
			if !a.Matches(f) {
				t.Errorf("%q does not match %q", c.who, f)
			}
		}
		for _, f := range c.notMatch {
			if a.Matches(f) {
				t.Errorf("%q matches %q", c.who, f)
			}
		}
	}
}

// TestParseEventQuery: the filters as typed, and the mistakes told.
func TestParseEventQuery(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	q, err := ParseEventQuery(get(map[string]string{"job": "t1", "since": "2026-12-01", "until": "2026-12-02", "kind": "account, admin.pause",
		"result": "Failed,warning", "who": "cli, alice"}), now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Since.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || !q.Until.Equal(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)) ||
		!reflect.DeepEqual(q.Kinds, []string{"account", "admin.pause"}) || !reflect.DeepEqual(q.Results, []string{"failed", "warning"}) ||
		!reflect.DeepEqual(q.Who, []string{"cli", "alice"}) {
		t.Fatalf("%+v", q)
	}
	if q, _ = ParseEventQuery(get(map[string]string{"since": "7d", "until": "24h"}), now, time.UTC); !q.Since.Equal(now.AddDate(0, 0, -7)) || !q.Until.Equal(now.Add(-24*time.Hour)) {
		t.Fatalf("spans: %+v", q)
	}
	for in, msg := range map[string]string{"since=yesterday": `since: "yesterday" is not a time`, "result=great": `result "great": want one of ok, failed`,
		"since=2026-12-02,until=2026-12-01": "is not before until"} {
		m := map[string]string{}
		for _, kv := range strings.Split(in, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		if _, err := ParseEventQuery(get(m), now, time.UTC); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", in, err, msg)
		}
	}
}
