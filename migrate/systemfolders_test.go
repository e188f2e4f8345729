package migrate_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// exchangeLayouts are mailboxes as Exchange's IMAP shows them, in English
// and in a Chinese locale, and one of another server with a folder of the
// member's own called Outbox; system marks Exchange's system folders.
var exchangeLayouts = []struct {
	folders []string
	system  map[string]bool
}{
	{[]string{"INBOX", "Sent Items", "Junk Email", "Outbox", "Sync Issues", "Sync Issues/Conflicts", "Sync Issues/Local Failures", "Sync Issues/Server Failures"},
		map[string]bool{"Outbox": true, "Sync Issues": true, "Sync Issues/Conflicts": true, "Sync Issues/Local Failures": true, "Sync Issues/Server Failures": true}},
	{[]string{"INBOX", "已发送邮件", "垃圾邮件", "发件箱", "同步问题", "同步问题/冲突", "同步问题/本地故障", "同步问题/服务器故障"},
		map[string]bool{"发件箱": true, "同步问题": true, "同步问题/冲突": true, "同步问题/本地故障": true, "同步问题/服务器故障": true}},
	{[]string{"INBOX", "Outbox", "Projects"}, map[string]bool{}},
}

func snapKey(m dovecot.SnapMessage) string {
	return fmt.Sprintf("%x %s %d", sha256.Sum256(m.Body), strings.Join(m.Flags, " "), m.Date.Unix())
}

// TestExchangeSystemFoldersOverIMAP: an Exchange mailbox read over IMAP
// (real Dovecot holding Exchange's layout, English and Chinese) leaves its
// Outbox and Sync Issues (Conflicts, Local Failures, Server Failures)
// behind by default, as the Graph source does: the account succeeds with
// every other message exact on the target (Junk Email into the target's
// Junk), and its record, the event log and the job's report name each
// folder left and why. A mailbox of another server keeps its own Outbox.
// With the job's KeepSystemFolders, a re-run copies the system folders too.
func TestExchangeSystemFoldersOverIMAP(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: len(exchangeLayouts), Messages: 0, BadPassword: -1, Backend: migratetest.Dovecot})
	day := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, l := range exchangeLayouts {
		for k, f := range l.folders {
			day = day.Add(time.Hour)
			var flags []string
			if k%2 == 0 {
				flags = []string{`\Seen`}
			}
			msg := dovecot.Message{Body: []byte(fmt.Sprintf("From: a@b.test\r\nSubject: %s %d\r\nMessage-ID: <%d.%d@b.test>\r\n\r\nin %s\r\n", f, i, i, k, f)), Flags: flags, Date: day}
			if err := w.Src.Deliver(w.Users[i].Old, f, []dovecot.Message{msg}); err != nil {
				t.Fatal(err)
			}
		}
	}
	src := w.Sources()

	// want is what the target must hold of user i: every message, or all
	// but the system folders'.
	check := func(i int, keep bool) {
		t.Helper()
		u := w.Users[i]
		want := map[string]int{}
		for folder, msgs := range src[u.Old] {
			if exchangeLayouts[i].system[folder] && !keep {
				continue
			}
			for _, m := range msgs {
				want[snapKey(m)]++
			}
		}
		got := w.Target(u)
		for folder, msgs := range got {
			if exchangeLayouts[i].system[folder] && !keep {
				t.Errorf("%s: system folder %q is on the target", u.Old, folder)
			}
			for _, m := range msgs {
				if want[snapKey(m)] == 0 {
					t.Errorf("%s %q: unexpected or duplicate message %q", u.Old, folder, m.Body)
				}
				want[snapKey(m)]--
			}
		}
		for k, c := range want {
			if c > 0 {
				t.Errorf("%s: message %s missing from the target", u.Old, k)
			}
		}
		if keep {
			for f := range exchangeLayouts[i].system {
				if _, ok := got[f]; !ok {
					t.Errorf("%s: system folder %q not on the target with KeepSystemFolders", u.Old, f)
				}
			}
		}
	}

	r := runner(w, migrate.Config{Accounts: 3, Lanes: 2})
	if err := r.Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	as := accounts(t, w)
	for i, u := range w.Users {
		a := as[u.Old]
		wantN := int64(len(exchangeLayouts[i].folders) - len(exchangeLayouts[i].system))
		if a.State != state.AccountSucceeded || a.Counts.Imported != wantN || a.Counts.Failed != 0 {
			t.Fatalf("%s: %s %q %+v, want succeeded with %d imported", u.Old, a.State, a.Reason, a.Counts, wantN)
		}
		var left []string
		for _, l := range a.LeftBehind {
			left = append(left, l.Folder)
			if !strings.Contains(l.Reason, "Exchange's Outbox") && !strings.Contains(l.Reason, "Exchange's Sync Issues") {
				t.Errorf("%s: %q left behind for %q", u.Old, l.Folder, l.Reason)
			}
		}
		var wantLeft []string
		for f := range exchangeLayouts[i].system {
			wantLeft = append(wantLeft, f)
		}
		sort.Strings(left)
		sort.Strings(wantLeft)
		if strings.Join(left, "|") != strings.Join(wantLeft, "|") {
			t.Errorf("%s: left behind %q, want %q", u.Old, left, wantLeft)
		}
		check(i, false)
	}
	if got := w.Target(w.Users[0]); len(got["Junk"]) != 1 {
		t.Errorf("Junk Email: %d messages in the target's Junk, want 1 (folders %v)", len(got["Junk"]), keysOf(got))
	}
	if got := w.Target(w.Users[2]); len(got["Outbox"]) != 1 {
		t.Errorf("another server's Outbox: %d messages on the target, want 1", len(got["Outbox"]))
	}

	rows, err := migrate.Report(w.Store, w.Job)
	if err != nil {
		t.Fatal(err)
	}
	byAccount := map[string][]string{}
	for _, row := range rows {
		if !row.LeftBehind || row.UID != 0 || !strings.Contains(row.Reason, "--system-folders") {
			t.Errorf("report row %+v: want only system folders left behind", row)
		}
		byAccount[row.Account] = append(byAccount[row.Account], row.Folder)
	}
	if len(byAccount[w.Users[0].Old]) != 5 || len(byAccount[w.Users[1].Old]) != 5 || len(byAccount[w.Users[2].Old]) != 0 {
		t.Errorf("report names %v: want the 5 system folders of each Exchange mailbox", byAccount)
	}
	evs, err := w.Store.Events(w.Job, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	said := 0
	for _, e := range evs {
		if e.Kind == "account.folders-left" {
			said++
			if !strings.Contains(e.Message, "5 system folders not copied") {
				t.Errorf("event %q", e.Message)
			}
		}
	}
	if said != 2 {
		t.Errorf("%d account.folders-left events, want one per Exchange mailbox", said)
	}

	// The option: a re-run copies what was left behind, and only that.
	job, err := w.Store.Job(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	job.Options.KeepSystemFolders = true
	if err := w.Store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	w.Resupply()
	r = runner(w, migrate.Config{Accounts: 3, Lanes: 2, Rerun: true})
	if err := r.Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	as = accounts(t, w)
	for i, u := range w.Users {
		if a := as[u.Old]; a.State != state.AccountSucceeded || len(a.LeftBehind) != 0 {
			t.Errorf("%s with KeepSystemFolders: %s %q, left behind %v", u.Old, a.State, a.Reason, a.LeftBehind)
		}
		check(i, true)
	}
	if rows, err := migrate.Report(w.Store, w.Job); err != nil || len(rows) != 0 {
		t.Errorf("report after copying the system folders: %v %v", rows, err)
	}
}
