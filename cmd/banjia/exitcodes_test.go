package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/internal/migratetest"
)

// TestExitCodesOnFailure: a move that leaves an account behind never
// exits 0. `migrate` with a wrong old password exits 2 and says why; `job
// start` whose old server refuses connections exits 2, the account failed
// with the step named, within the --connect-for given.
func TestExitCodesOnFailure(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 5, BadPassword: -1})
	u := w.Users[0]
	pwFile := filepath.Join(t.TempDir(), "to-pw")
	if err := os.WriteFile(pwFile, []byte(u.NewPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = []string{"BANJIA_FROM_PASSWORD=not-the-password"}
	// The one-off move keeps a state file of its own: its job would
	// otherwise hold the new address that the domain job below takes.
	domainState := w.Path
	w.Path = filepath.Join(t.TempDir(), "one-off.db")
	out, err := w.banjia(t, "migrate", "--from", "imap+plain://"+u.Old+"@"+w.Src.IMAPAddr, "--to", "imap+plain://"+u.New+"@"+w.Dst.IMAPAddr,
		"--to-pass-file", pwFile, "--retry-for", "2s", "--connect-for", "2s")
	if code := exitCode(err); code != 2 || !strings.Contains(out, "wrong user name, password or authorization code") || !strings.Contains(out, "1 of 1 accounts failed") {
		t.Fatalf("migrate with a wrong password: exit %d, want 2\n%s", code, out)
	}
	w.env, w.Path = nil, domainState

	// A port nobody listens on: the old server is down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	w.mustBanjia(t, "job", "create", w.Job, "--from", "imap+plain://"+closed, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
	out, err = w.banjia(t, "job", "start", w.Job, "--connect-for", "2s", "--retry-wait", "100ms")
	if code := exitCode(err); code != 2 || !strings.Contains(out, "1 of 1 accounts failed") || !strings.Contains(out, "connect") {
		t.Fatalf("job start against a closed port: exit %d, want 2\n%s", code, out)
	}
	out, err = w.banjia(t, "job", "sync", w.Job, "--connect-for", "2s", "--retry-wait", "100ms")
	if code := exitCode(err); code != 2 || !strings.Contains(out, "1 of 1 accounts failed") {
		t.Fatalf("job sync against a closed port: exit %d, want 2\n%s", code, out)
	}
}
