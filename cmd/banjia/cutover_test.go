package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/imapfill"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/internal/sealscan"
)

// TestCutoverCommands walks the cutover from the command line: create
// with a retention (bad ones refused), a first pass where one account has
// a wrong password (exit 2), new mail APPENDed into the old mailboxes,
// `job sync` copying it for the others while that account still fails
// (exit 2), the password fixed with `job add` and a sync that exits 0 with
// every mailbox equal to its source, the phase in `job status`, then `job
// close`: no password is left in the state file, and sync and start are
// refused with the reason (exit 1).
// The whole cutover runs into each new server: Dovecot, Cyrus and Courier.
func TestCutoverCommands(t *testing.T) {
	for _, target := range []string{"dovecot", "cyrus", "courier"} {
		t.Run(target, func(t *testing.T) { cutoverCommands(t, target) })
	}
}

func cutoverCommands(t *testing.T, target string) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 4, Messages: 15, BadPassword: 3, Target: target})
	create := []string{"job", "create", w.Job, "--from", "imap+plain://" + w.Src.IMAPAddr, "--to", "imap+plain://" + w.Dst.IMAPAddr, "--accounts", w.csv}
	for bad, want := range map[string]string{"0": "want more than 0", "100d": "want at most 90d", "soon": "want a duration such as 14d"} {
		out, err := w.banjia(t, append(create, "--keep-credentials", bad)...)
		if code := exitCode(err); code != 1 || !strings.Contains(out, want) {
			t.Fatalf("--keep-credentials %s: exit %d\n%s", bad, code, out)
		}
	}
	w.mustBanjia(t, append(create, "--keep-credentials", "7d")...)

	out, err := w.banjia(t, "job", "start", w.Job)
	if code := exitCode(err); code != 2 || !strings.Contains(out, "1 of 4 accounts failed") {
		t.Fatalf("job start with a wrong password: exit %d, want 2\n%s", code, out)
	}
	if st := w.mustBanjia(t, "job", "status", w.Job); !strings.Contains(st, "PHASE") || !strings.Contains(st, "first pass") {
		t.Fatalf("job status after the first pass:\n%s", st)
	}

	// Mail keeps reaching the old server after the MX switch.
	good := w.Users[:3]
	for i, u := range w.Users {
		c, err := imapfill.Login(w.Src.IMAPAddr, u.Old, u.SourcePW)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("From: a@elsewhere.test\r\nTo: %s\r\nSubject: late %d\r\nMessage-ID: <late-%d@test>\r\n\r\nafter the MX switch\r\n", u.Old, i, i)
		if err := imapfill.Append(c, "INBOX", []imapfill.Message{{Body: []byte(body), Date: time.Date(2026, 12, 3, 11, 0, i, 0, time.UTC)}}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	out, err = w.banjia(t, "job", "sync", w.Job)
	if code := exitCode(err); code != 2 || !strings.Contains(out, "1 of 4 accounts failed") {
		t.Fatalf("job sync with an account still failing: exit %d, want 2\n%s", code, out)
	}
	after := w.Sources()
	for _, u := range good {
		migratetest.SameMail(t, u.Old, after[u.Old], w.Target(u))
	}

	// The admin fixes the wrong password; the next sync takes that account too.
	bad := w.Users[3]
	fixed := filepath.Join(t.TempDir(), "fixed.csv")
	if err := os.WriteFile(fixed, []byte(fmt.Sprintf("%s,%s,%s,%s\n", bad.Old, bad.New, bad.SourcePW, bad.NewPW)), 0o600); err != nil {
		t.Fatal(err)
	}
	w.mustBanjia(t, "job", "add", w.Job, "--accounts", fixed)
	out, err = w.banjia(t, "job", "sync", w.Job)
	if code := exitCode(err); code != 0 {
		t.Fatalf("job sync once every account can log in: exit %d, want 0\n%s", code, out)
	}
	w.Users[3].OldPW = bad.SourcePW
	bad = w.Users[3]
	after = w.Sources()
	for _, u := range append(good, bad) {
		migratetest.SameMail(t, u.Old, after[u.Old], w.Target(u))
	}
	if st := w.mustBanjia(t, "job", "status", w.Job); !strings.Contains(st, "synced at ") {
		t.Fatalf("job status after a sync:\n%s", st)
	}

	if out := w.mustBanjia(t, "job", "close", w.Job); !strings.Contains(out, "every stored credential is wiped") {
		t.Fatalf("job close:\n%s", out)
	}
	for _, cmd := range []string{"sync", "start"} {
		out, err := w.banjia(t, "job", cmd, w.Job)
		if code := exitCode(err); code != 1 || !strings.Contains(out, "was closed at") || !strings.Contains(out, "no longer starts or syncs") {
			t.Fatalf("job %s after close: exit %d, want 1\n%s", cmd, code, out)
		}
	}
	if st := w.mustBanjia(t, "job", "status", w.Job); !strings.Contains(st, "closed at ") {
		t.Fatalf("job status after close:\n%s", st)
	}
	var pws []string
	for _, u := range w.Users {
		pws = append(pws, u.OldPW, u.NewPW, u.SourcePW, migratetest.WrongPassword)
	}
	if got, err := sealscan.Recoverable(w.Path, pws); err != nil || len(got) > 0 {
		t.Fatalf("passwords readable from the state file after job close: %q (%v)", got, err)
	}
}

// TestSyncAndCloseThroughServe: while banjia serve holds the state file,
// `job sync` and `job close` from another shell reach it over the control
// socket: the sync copies the new mail and returns when it is on the
// target, the close wipes
// the passwords, and a sync after it is refused with the reason (exit 1).
func TestSyncAndCloseThroughServe(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 2, Messages: 10, BadPassword: -1})
	w.env = []string{"BANJIA_ADMIN_PASSWORD=admin-pw-cut-77"}
	w.create(t)
	w.mustBanjia(t, "job", "start", w.Job)
	_, stop := w.startServe(t)
	for i, u := range w.Users {
		c, err := imapfill.Login(w.Src.IMAPAddr, u.Old, u.SourcePW)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("From: a@elsewhere.test\r\nTo: %s\r\nSubject: late %d\r\n\r\nafter the MX switch\r\n", u.Old, i)
		if err := imapfill.Append(c, "INBOX", []imapfill.Message{{Body: []byte(body), Date: time.Date(2026, 12, 3, 11, 5, i, 0, time.UTC)}}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// The sync's exit comes at its end and says how it went: the target
	// holds the new mail as soon as it returns 0, without waiting more.
	if out := w.mustBanjia(t, "job", "sync", w.Job); !strings.Contains(out, "synced by the running banjia") {
		t.Fatalf("job sync through serve:\n%s", out)
	}
	if st := w.mustBanjia(t, "job", "status", w.Job); !strings.Contains(st, "synced at ") {
		t.Fatalf("job status right after the sync returned:\n%s", st)
	}
	after := w.Sources()
	for _, u := range w.Users {
		migratetest.SameMail(t, u.Old, after[u.Old], w.Target(u))
	}
	if out := w.mustBanjia(t, "job", "close", w.Job); !strings.Contains(out, "every stored credential is wiped") {
		t.Fatalf("job close through serve:\n%s", out)
	}
	out, err := w.banjia(t, "job", "sync", w.Job)
	if code := exitCode(err); code != 1 || !strings.Contains(out, "was closed at") {
		t.Fatalf("job sync through serve after close: exit %d\n%s", code, out)
	}
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	var pws []string
	for _, u := range w.Users {
		pws = append(pws, u.OldPW, u.NewPW)
	}
	if got, err := sealscan.Recoverable(w.Path, pws); err != nil || len(got) > 0 {
		t.Fatalf("passwords readable from the state file after job close: %q (%v)", got, err)
	}
}
