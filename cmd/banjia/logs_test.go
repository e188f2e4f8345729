package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

// TestLogsFiltersExportAndActor: banjia logs on a job of 10,000 events
// filters by account, time, kind, result and who acted, exports CSV and
// JSON (paging the log a thousand at a time), shows the newest N, and
// tells a bad filter; the commands run here are recorded as this
// machine's user and host (command line). No mail server is involved.
func TestLogsFiltersExportAndActor(t *testing.T) {
	dir := t.TempDir()
	w := &cliWorld{World: &migratetest.World{T: t, Path: filepath.Join(dir, "banjia.db"), Job: "acme"}}
	w.csv = filepath.Join(dir, "accounts.csv")
	if err := os.WriteFile(w.csv, []byte("a@old.test,a@new.test,old-pw-a,new-pw-a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.mustBanjia(t, "job", "create", "acme", "--from", "imap+plain://127.0.0.1:1", "--to", "imap+plain://127.0.0.1:2", "--accounts", w.csv)
	w.mustBanjia(t, "job", "pause", "acme")
	w.mustBanjia(t, "job", "resume", "acme")

	// 10,000 events of the engine and of other people, as a long job has.
	store, err := state.OpenExisting(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-5 * 24 * time.Hour)
	actors := []string{string(state.Engine), state.AdminActor("alice"), state.TokenActor("ci"), state.MemberActor("u0001@new.test")}
	kinds := []string{"account.started", "account.succeeded", "account.failed", "warning"}
	var evs []*state.Event
	for i := range 10_000 {
		evs = append(evs, &state.Event{Time: start.Add(time.Duration(i) * 30 * time.Second), Job: "acme", Account: fmt.Sprintf("u%04d@old.test", i%500),
			Kind: kinds[i%4], Who: actors[i%3], Message: fmt.Sprintf("event %d", i)})
	}
	if err := store.AddEvents(evs...); err != nil {
		t.Fatal(err)
	}
	store.Close()

	// Who acted: the commands above, as this user on this host.
	out := w.mustBanjia(t, "logs", "--job", "acme", "--who", "cli", "--format", "json")
	var mine []web.EventOut
	if err := json.Unmarshal([]byte(out), &mine); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	host, _ := os.Hostname()
	kindsSeen := map[string]bool{}
	for _, e := range mine {
		kindsSeen[e.Kind] = true
		if e.Who != migrate.CommandLine || !strings.HasSuffix(e.WhoText, "@"+host+" (command line)") {
			t.Errorf("%s by %q (%q), want %q", e.Kind, e.Who, e.WhoText, migrate.CommandLine)
		}
	}
	if len(mine) != 3 || !kindsSeen["job.created"] || !kindsSeen["admin.pause"] || !kindsSeen["admin.resume"] {
		t.Fatalf("the command line's events: %+v", mine)
	}

	// The whole log as CSV: every event once, oldest first.
	t0 := time.Now()
	out = w.mustBanjia(t, "logs", "--job", "acme", "--format", "csv")
	t.Logf("banjia logs --format csv: %d bytes in %v", len(out), time.Since(t0))
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+10_000+5 { // header, ours, created, pause, resume and the engine's paused, resumed
		t.Fatalf("CSV: %d rows", len(recs))
	}
	if recs[1][8] != "event 0" || recs[10_000][8] != "event 9999" || recs[10_001][4] != "job.created" || recs[10_005][4] != "job.resumed" {
		t.Fatalf("CSV not in time order: %v, %v, %v, %v", recs[1], recs[10_000], recs[10_001], recs[10_005])
	}

	// Filters together: one account's failures by the API token.
	out = w.mustBanjia(t, "logs", "--job", "acme", "--account", "u0002@old.test", "--result", "failed", "--who", "token:ci", "--format", "jsonl")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n := 0
	for _, e := range evs {
		if e.Account == "u0002@old.test" && e.Kind == "account.failed" && e.Who == state.TokenActor("ci") {
			n++
		}
	}
	if len(lines) != n || n == 0 {
		t.Fatalf("filtered: %d lines, want %d:\n%s", len(lines), n, out)
	}
	for _, l := range lines {
		var e state.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Account != "u0002@old.test" || e.Kind != "account.failed" || e.Who != "token:ci" {
			t.Fatalf("filtered line %s: %v", l, err)
		}
	}

	// A time range and the newest N, as text with who acted in words.
	since := evs[100].Time.Format(time.RFC3339)
	until := evs[110].Time.Format(time.RFC3339)
	out = w.mustBanjia(t, "logs", "--job", "acme", "--since", since, "--until", until, "--kind", "account")
	// Of events 100 to 109, 103 and 107 are warnings.
	if got := strings.Count(out, "\n"); got != 8 || !strings.Contains(out, "event 100") || strings.Contains(out, "event 110") || strings.Contains(out, "event 103") ||
		!strings.Contains(out, "admin alice (dashboard)") || !strings.Contains(out, "API token ci") {
		t.Fatalf("a time range: %d lines:\n%s", got, out)
	}
	out = w.mustBanjia(t, "logs", "--job", "acme", "--who", "banjia", "--limit", "3")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "event 9999") || !strings.Contains(lines[2], "job.resumed") || !strings.Contains(lines[0], " banjia  event 9999") {
		t.Fatalf("the newest 3 by the engine, oldest first:\n%s", out)
	}

	for args, want := range map[string]string{
		"--since yesterday": `--since: "yesterday" is not a time`,
		"--result great":    `--result "great": want one of ok, failed`,
		"--format xml":      `--format "xml": want text, csv, json or jsonl`,
		"--limit -1":        "--limit -1: want 0 (all) or more",
	} {
		out, err := w.banjia(t, append([]string{"logs", "--job", "acme"}, strings.Fields(args)...)...)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("logs %s: %v\n%s, want %q", args, err, out, want)
		}
	}
}
