package migrate_test

import (
	"context"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// session logs in to a test server for a test's own changes.
func session(t *testing.T, addr, user, pw string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// subscribed lists a mailbox's subscribed folders (LIST-EXTENDED).
func subscribed(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	list, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range list {
		out = append(out, l.Mailbox)
	}
	sort.Strings(out)
	return out
}

func events(t *testing.T, w *world, kind string) []string {
	t.Helper()
	evs, err := w.Store.Events(w.Job, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if kind == "" || e.Kind == kind {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestTargetResetIsNoticed: after a finished run the target's admin deletes
// one folder and empties INBOX. The next run trusts the target, not its
// records: it says what it found, copies exactly what is missing (no more:
// the other folders are not touched) and ends with the target holding the
// source's mail once.
func TestTargetResetIsNoticed(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 150, BadPassword: -1})
	u := w.Users[0]
	before := w.Sources()
	if err := runner(w, migrate.Config{Lanes: 2}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	lost := len(before[u.Old]["Archive/2019"]) + len(before[u.Old]["INBOX"])
	if lost == 0 || len(before[u.Old]["Archive/2019"]) == 0 {
		t.Fatalf("corpus has no mail in Archive/2019 or INBOX")
	}

	c := session(t, w.Dst.IMAPAddr, u.New, u.NewPW)
	if err := c.Delete("Archive/2019").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()

	w.Resupply()
	// verify sees what the target lost, quick and deep, before the re-run.
	for _, deep := range []bool{false, true} {
		checks, err := runner(w, migrate.Config{}).Verify(context.Background(), w.Job, nil, deep)
		if err != nil {
			t.Fatal(err)
		}
		missing := map[string]int{}
		for _, c := range checks {
			missing[c.Folder] += c.Missing
			if c.Extra != 0 {
				t.Errorf("verify (deep %v): %s", deep, migrate.VerifyLine(c))
			}
		}
		for _, f := range []string{"INBOX", "Archive" + w.Src.Delimiter() + "2019"} {
			if want := len(before[u.Old][strings.ReplaceAll(f, w.Src.Delimiter(), "/")]); missing[f] != want {
				t.Errorf("verify (deep %v) finds %d missing in %q, want %d: %v", deep, missing[f], f, want, checks)
			}
		}
		if total := sumMissing(checks); total != lost {
			t.Errorf("verify (deep %v): %d missing in all, want %d", deep, total, lost)
		}
	}
	var appended atomic.Int64
	r := countingRunner(w, migrate.Config{Lanes: 2, Rerun: true}, &appended)
	if err := r.Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	if n := appended.Load(); n != int64(lost) {
		t.Errorf("re-run appended %d messages, want the %d the target lost", n, lost)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	a := accounts(t, w)[u.Old]
	if a.State != state.AccountSucceeded || a.Counts.Imported != a.Counts.ToImport || a.Counts.Failed != 0 {
		t.Fatalf("after the re-run: %s %+v %q", a.State, a.Counts, a.Reason)
	}
	w.Resupply()
	for _, deep := range []bool{false, true} {
		checks, err := runner(w, migrate.Config{}).Verify(context.Background(), w.Job, nil, deep)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			if !c.OK() {
				t.Errorf("verify (deep %v) after the re-run: %s", deep, migrate.VerifyLine(c))
			}
		}
		if len(checks) < len(before[u.Old]) {
			t.Errorf("verify checked %d folders, the source has %d", len(checks), len(before[u.Old]))
		}
	}
	warn := strings.Join(events(t, w, "warning"), "\n")
	for _, want := range []string{`"Archive/2019" was deleted`, `"INBOX" holds 0 messages, fewer than the`} {
		if !strings.Contains(warn, want) {
			t.Errorf("no event says %s; warnings:\n%s", want, warn)
		}
	}

	// And a run with nothing changed copies nothing and finds nothing to say.
	w.Resupply()
	appended.Store(0)
	n := len(events(t, w, "warning"))
	if err := countingRunner(w, migrate.Config{Lanes: 2, Rerun: true}, &appended).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	if appended.Load() != 0 || len(events(t, w, "warning")) != n {
		t.Errorf("an unchanged re-run appended %d and logged %v", appended.Load(), events(t, w, "warning")[n:])
	}
}

// TestEveryFolderArrives: empty folders (nested too) are created, names
// with list wildcards are kept when the target takes them, and the
// member's subscriptions come along.
func TestEveryFolderArrives(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 1, Messages: 40, BadPassword: -1,
		Folders: []string{"INBOX", "Sent", "Archive/2019", "100%", "a*b"}})
	u := w.Users[0]
	c := session(t, w.Src.IMAPAddr, u.Old, u.SourcePW)
	for _, name := range []string{"Empty", "空文件夹" + w.Src.Delimiter() + "子"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"Sent", "Empty", "100%"} {
		if err := c.Subscribe(name).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	c.Logout().Wait()
	before := w.Sources()
	if err := runner(w, migrate.Config{Lanes: 2}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	got := w.Target(u)
	migratetest.SameMail(t, u.Old, before[u.Old], got)
	for _, name := range []string{"Empty", "空文件夹/子", "100%", "a*b", "Archive/2019"} {
		if _, ok := got[name]; !ok {
			t.Errorf("target has no folder %q: %v", name, keysOf(got))
		}
	}
	dst := session(t, w.Dst.IMAPAddr, u.New, u.NewPW)
	if subs, want := subscribed(t, dst), []string{"100%", "Empty", "Sent"}; strings.Join(subs, ",") != strings.Join(want, ",") {
		t.Errorf("target subscriptions %q, want %q", subs, want)
	}
	if a := accounts(t, w)[u.Old]; a.State != state.AccountSucceeded {
		t.Fatalf("%s %q", a.State, a.Reason)
	}
	if ev := events(t, w, "folder.renamed"); len(ev) != 0 {
		t.Errorf("folders renamed though the target takes every name: %q", ev)
	}
}

func keysOf(m migratetest.Mailbox) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sumMissing(checks []migrate.FolderCheck) int {
	n := 0
	for _, c := range checks {
		n += c.Missing
	}
	return n
}
