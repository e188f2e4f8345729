package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/internal/sealscan"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// accountsNow reads the accounts as `banjia job accounts --json` shows
// them (through the running job's socket).
func (w *cliWorld) accountsNow(t *testing.T) map[string]state.Account {
	t.Helper()
	var sts []*migrate.Status
	if err := json.Unmarshal([]byte(w.mustBanjia(t, "job", "accounts", w.Job, "--json")), &sts); err != nil || len(sts) != 1 {
		t.Fatalf("job accounts --json: %v", err)
	}
	out := map[string]state.Account{}
	for _, a := range sts[0].Accounts {
		out[a.ID] = a
	}
	return out
}

// TestAccountControlCLI: while `banjia job start` copies one account at a
// time, `banjia job account` from another shell abandons a waiting
// account, moves another to the front and pauses the one copying; the
// paused one stops at a message boundary and waits while the others
// finish, the failed one is retried by state and runs again, the job
// cannot be deleted while it runs, and resumed (by state) the paused
// account finishes with all its mail. `job show` shows the
// settings; `job delete` then removes the job and every password.
func TestAccountControlCLI(t *testing.T) {
	// Enough mail that u00 is still copying after the two commands that
	// come before its pause (300 messages were done in under half a second).
	const messages = 1200
	w := newCLIWorld(t, migratetest.Options{Accounts: 4, Messages: messages, BadPassword: 2})
	before := w.Sources()
	u := w.Users
	w.create(t)
	cmd, out := w.start(t, "--parallel", "1", "--conns", "1")
	waitUntil(t, func() bool { return migratetest.Count(t, w.Dst, u[0].New, u[0].NewPW) > 20 })

	if got := w.mustBanjia(t, "job", "account", w.Job, "abandon", u[1].Old); !strings.Contains(got, "abandon: 1 account ("+u[1].Old+")") {
		t.Fatalf("abandon: %s", got)
	}
	w.mustBanjia(t, "job", "account", w.Job, "first", u[3].Old)
	w.mustBanjia(t, "job", "account", w.Job, "pause", u[0].Old)
	waitUntil(t, func() bool { return w.accountsNow(t)[u[0].Old].State == state.AccountPaused })
	at := w.accountsNow(t)[u[0].Old].Counts.Imported
	if at >= messages || int64(migratetest.Count(t, w.Dst, u[0].New, u[0].NewPW)) != at {
		t.Fatalf("paused u00: %d imported, %d on the target", at, migratetest.Count(t, w.Dst, u[0].New, u[0].NewPW))
	}
	// Bad requests: a clear error, nothing changed.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"resume", u[2].Old}, "is not paused"},
		{[]string{"pause", "--state", "everything"}, "want one of"},
		{[]string{"explode", u[2].Old}, "unknown account operation"},
		{[]string{"pause"}, "which accounts?"},
	} {
		got, err := w.banjia(t, append([]string{"job", "account", w.Job}, c.args...)...)
		if err == nil || !strings.Contains(got, c.want) {
			t.Errorf("job account %v: %v %s", c.args, err, got)
		}
	}
	waitUntil(t, func() bool {
		a := w.accountsNow(t)
		return a[u[2].Old].State == state.AccountFailed && a[u[3].Old].State == state.AccountSucceeded
	})
	a := w.accountsNow(t)
	if a[u[0].Old].State != state.AccountPaused || a[u[0].Old].Counts.Imported != at || cmd.ProcessState != nil {
		t.Fatalf("with u00 paused: %+v, job start exited: %v", a[u[0].Old], cmd.ProcessState)
	}
	if a[u[1].Old].State != state.AccountAbandoned || !a[u[1].Old].Started.IsZero() {
		t.Fatalf("abandoned u01: %+v", a[u[1].Old])
	}
	if got, err := w.banjia(t, "job", "delete", w.Job); err == nil || !strings.Contains(got, "is running") {
		t.Fatalf("delete while running: %v %s", err, got)
	}
	show := w.mustBanjia(t, "job", "show", w.Job)
	for _, want := range []string{"mode", "passwords", "imap+plain://" + w.Src.IMAPAddr, "1 accounts at once, 1 connections each", "renamed folders", "none"} {
		if !strings.Contains(show, want) {
			t.Errorf("job show lacks %q:\n%s", want, show)
		}
	}
	logs := w.mustBanjia(t, "logs", "--job", w.Job)
	i0, i3, i2 := strings.Index(logs, u[0].Old+" started"), strings.Index(logs, u[3].Old+" started"), strings.Index(logs, u[2].Old+" started")
	if i0 < 0 || i3 < i0 || i2 < i3 {
		t.Errorf("accounts did not start in the order u00, u03 (moved to the front), u02:\n%s", logs)
	}

	// The failed account (a wrong old password) is retried by state while
	// the job runs: it runs again (and fails again: nothing was fixed).
	if got := w.mustBanjia(t, "job", "account", w.Job, "retry", "--state", "failed"); !strings.Contains(got, "retry: 1 account ("+u[2].Old+")") {
		t.Fatalf("retry: %s", got)
	}
	waitUntil(t, func() bool {
		return strings.Count(w.mustBanjia(t, "logs", "--job", w.Job), u[2].Old+" started") == 2 && w.accountsNow(t)[u[2].Old].State == state.AccountFailed
	})

	w.mustBanjia(t, "job", "account", w.Job, "resume", "--state", "paused")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("job start did not finish after the resume:\n%s", out.String())
	}
	a = w.accountsNow(t)
	if a[u[0].Old].State != state.AccountSucceeded {
		t.Fatalf("resumed u00: %+v\n%s", a[u[0].Old], out.String())
	}
	for _, i := range []int{0, 3} {
		migratetest.SameMail(t, u[i].Old, before[u[i].Old], w.Target(u[i]))
	}
	if n := migratetest.Count(t, w.Dst, u[1].New, u[1].NewPW); n != 0 {
		t.Fatalf("abandoned u01: %d messages on the target", n)
	}

	// The abandoned account keeps its password sealed (it may be retried
	// by name) until the job is deleted.
	if got, err := sealscan.Recoverable(w.Path, []string{u[1].OldPW}); err != nil || len(got) != 1 {
		t.Fatalf("before the delete, the abandoned account's password is not in the state file (%v, %v): the check after proves nothing", got, err)
	}
	if got := w.mustBanjia(t, "job", "delete", w.Job); !strings.Contains(got, "deleted") {
		t.Fatalf("delete: %s", got)
	}
	var pws []string
	for _, uu := range u {
		pws = append(pws, uu.OldPW, uu.NewPW)
	}
	if got, err := sealscan.Recoverable(w.Path, pws); err != nil || len(got) != 0 {
		t.Fatalf("after the delete: %v, %v", got, err)
	}
	if got, err := w.banjia(t, "job", "show", w.Job); err == nil || !strings.Contains(got, "not found") {
		t.Fatalf("show after delete: %v %s", err, got)
	}
	if logs := w.mustBanjia(t, "logs", "--job", w.Job); strings.Contains(logs, "started") {
		t.Fatalf("events of the deleted job remain:\n%s", logs)
	}
}

// renamed is what the target should hold for a source mailbox with the
// folder choices of TestFolderChoicesCLI.
func renamed(src migratetest.Mailbox) migratetest.Mailbox {
	out := migratetest.Mailbox{}
	for name, msgs := range src {
		switch {
		case name == "Junk" || strings.HasPrefix(name, "项目"):
			continue
		case name == "Archive/2019":
			name = "Old/2019"
		case name == "客户/北京":
			name = "Clients/Beijing"
		}
		out[name] = msgs
	}
	return out
}

// TestFolderChoicesCLI: --rename and --exclude at job create put renamed
// folders under their new names and leave excluded ones behind (no folder
// made for them on the target), on the first run and on a re-run after new
// mail arrived in each of them; `job show` shows them.
func TestFolderChoicesCLI(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 120, BadPassword: -1})
	u := w.Users[0]
	// Refused with the reason, before anything is stored.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--rename", "Archive"}, "want OLD=NEW"},
		{[]string{"--rename", "Junk=Spam", "--exclude", "Ju*"}, "both renamed and left out"},
		{[]string{"--exclude", ""}, "empty pattern"},
	} {
		args := append([]string{"job", "create", "bad", "--from", "imap+plain://" + w.Src.IMAPAddr, "--to", "imap+plain://" + w.Dst.IMAPAddr, "--accounts", w.csv}, c.args...)
		if got, err := w.banjia(t, args...); err == nil || !strings.Contains(got, c.want) {
			t.Errorf("create with %v: %v %s", c.args, err, got)
		}
	}
	choices := []string{"--rename", "Archive/2019=Old/2019", "--rename", "客户/北京=Clients/Beijing", "--exclude", "Junk", "--exclude", "项目*"}
	// check shows the folder map these choices make, before any job (the
	// source's names with its own delimiter).
	w.env = []string{"BANJIA_FROM_PASSWORD=" + u.OldPW, "BANJIA_TO_PASSWORD=" + u.NewPW}
	plan := w.mustBanjia(t, append([]string{"check", "--from", "imap+plain://" + u.Old + "@" + w.Src.IMAPAddr, "--to", "imap+plain://" + u.New + "@" + w.Dst.IMAPAddr}, choices...)...)
	w.env = nil
	for _, re := range []string{`"Archive[./]2019"\s+-> "Old/2019"`, `"客户[./]北京"\s+-> "Clients/Beijing"`, `"Junk"\s+\(left behind\)`, `"项目[./]2024[./]报告"\s+\(left behind\)`, `"INBOX"\s+-> "INBOX"`} {
		if !regexp.MustCompile(re).MatchString(plan) {
			t.Errorf("check's folder map lacks %s:\n%s", re, plan)
		}
	}
	w.mustBanjia(t, append([]string{"job", "create", w.Job, "--from", "imap+plain://" + w.Src.IMAPAddr, "--to", "imap+plain://" + w.Dst.IMAPAddr, "--accounts", w.csv}, choices...)...)
	show := w.mustBanjia(t, "job", "show", w.Job)
	for _, want := range []string{"Archive/2019 -> Old/2019", "客户/北京 -> Clients/Beijing", "Junk, 项目*"} {
		if !strings.Contains(show, want) {
			t.Errorf("job show lacks %q:\n%s", want, show)
		}
	}
	check := func(when string) {
		t.Helper()
		src, got := w.Sources()[u.Old], w.Target(u)
		for _, f := range []string{"Junk", "项目/2024/报告", "Archive/2019", "客户/北京"} {
			if len(src[f]) == 0 {
				t.Fatalf("%s: the source has no mail in %s: the test proves nothing", when, f)
			}
			if _, ok := got[f]; ok {
				t.Errorf("%s: the target has a folder %q", when, f)
			}
		}
		if n := migratetest.SameMail(t, when, renamed(src), got); n == 0 {
			t.Fatalf("%s: nothing compared", when)
		}
	}
	w.mustBanjia(t, "job", "start", w.Job)
	check("first run")

	migratetest.Fill(t, w.Src.Deliver, u.Old, mailgen.Options{Seed: 77, Messages: 24, Folders: []string{"INBOX", "Archive/2019", "Junk", "项目/2024/报告", "客户/北京"}})
	w.mustBanjia(t, "job", "add", w.Job, "--accounts", w.csv)
	w.mustBanjia(t, "job", "start", w.Job, "--rerun")
	check("re-run")
}

// TestAccountArgs: job account reads its flags wherever they stand, and the
// job name is not moved behind them (as it is for job create).
func TestAccountArgs(t *testing.T) {
	args := []string{"banjia", "--state", "x.db", "job", "account", "acme", "retry", "--state", "failed", "--json"}
	if got := jobNameLast(args); strings.Join(got, " ") != strings.Join(args, " ") {
		t.Fatalf("jobNameLast moved job account's arguments: %v", got)
	}
	job, req, asJSON, _, err := accountArgs(args[5:])
	if err != nil || job != "acme" || req.Op != "retry" || req.State != "failed" || len(req.Accounts) != 0 || !asJSON {
		t.Fatalf("job %q, %+v, json %v, %v", job, req, asJSON, err)
	}
	job, req, _, _, err = accountArgs([]string{"acme", "pause", "a@old.test", "--state=failed", "b@old.test"})
	if err != nil || job != "acme" || req.Op != "pause" || strings.Join(req.Accounts, " ") != "a@old.test b@old.test" || req.State != "failed" {
		t.Fatalf("job %q, %+v, %v", job, req, err)
	}
	for _, bad := range [][]string{{"acme"}, {"acme", "pause", "--state"}, {"acme", "pause", "--force"}} {
		if _, _, _, _, err := accountArgs(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
