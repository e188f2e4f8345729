package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestCreateLikeTheDashboard: banjia job create goes through the same
// checks as the dashboard and the API: a name that needs quoting is
// refused before anything is asked or stored, and a CSV refused part-way
// leaves no half-made job (the name is free again once the file is fixed).
// No mail server is involved: creating a job contacts none.
func TestCreateLikeTheDashboard(t *testing.T) {
	dir := t.TempDir()
	w := &cliWorld{World: &migratetest.World{T: t, Path: filepath.Join(dir, "banjia.db"), Job: "acme"}}
	w.csv = filepath.Join(dir, "accounts.csv")
	servers := []string{"--from", "imap+plain://127.0.0.1:1", "--to", "imap+plain://127.0.0.1:2", "--accounts", w.csv}
	write := func(text string) {
		if err := os.WriteFile(w.csv, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a@old.test,a@new.test,old-pw-a,new-pw-a\n")
	for _, bad := range []string{"has space", "a/b", "ünï", strings.Repeat("x", 65)} {
		out, err := w.banjia(t, append([]string{"job", "create", bad}, servers...)...)
		if err == nil || !strings.Contains(out, "job name") {
			t.Errorf("job create %q: %v\n%s", bad, err, out)
		}
	}
	write("a@old.test,a@new.test,old-pw-a,new-pw-a\nb@old.test,b@new.test\n")
	out, err := w.banjia(t, append([]string{"job", "create", "acme"}, servers...)...)
	if err == nil || !strings.Contains(out, "line 2: no old password for b@old.test") {
		t.Fatalf("create with a bad CSV: %v\n%s", err, out)
	}
	if out, err := w.banjia(t, "job", "status", "acme"); err == nil {
		t.Fatalf("a half-made job stayed behind:\n%s", out)
	}
	write("a@old.test,a@new.test,old-pw-a,new-pw-a\n")
	if out := w.mustBanjia(t, append([]string{"job", "create", "acme"}, servers...)...); !strings.Contains(out, "job acme created with 1 accounts") {
		t.Fatalf("create after the fix:\n%s", out)
	}
	// Offline, pause and resume change the record and say who asked, as
	// the dashboard's buttons do.
	w.mustBanjia(t, "job", "pause", "acme")
	if out := w.mustBanjia(t, "job", "resume", "acme"); !strings.Contains(out, "no banjia process is running it") {
		t.Fatalf("resume with nothing running:\n%s", out)
	}
	logs := w.mustBanjia(t, "logs", "--job", "acme")
	cli := state.Actor(migrate.CommandLine).String()
	for _, want := range []string{"job acme created by " + cli + ": passwords, 1 accounts", cli + " asked to pause job acme", "job.paused", "job.resumed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	raw, _ := os.ReadFile(w.Path)
	for _, secret := range []string{"old-pw-a", "new-pw-a"} {
		if strings.Contains(logs, secret) || strings.Contains(string(raw), secret) {
			t.Errorf("secret %q in the logs or the state file", secret)
		}
	}
}
