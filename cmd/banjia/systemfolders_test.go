package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
)

// TestSystemFoldersCLI: an Exchange mailbox read over IMAP (Dovecot holding
// Exchange's Chinese-locale layout) is moved by `job start`; its 发件箱 and
// 同步问题 folders stay behind, `job report` names each with why and still
// says every selected message is on the target; a job created with
// --system-folders copies them and shows the choice in `job show`.
func TestSystemFoldersCLI(t *testing.T) {
	system := []string{"发件箱", "同步问题", "同步问题/冲突", "同步问题/本地故障", "同步问题/服务器故障"}
	world := func() *cliWorld {
		w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 10, BadPassword: -1})
		day := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
		for i, f := range system {
			msg := dovecot.Message{Body: []byte(fmt.Sprintf("Subject: %s\r\n\r\nsystem %d\r\n", f, i)), Date: day.Add(time.Duration(i) * time.Hour)}
			if err := w.Src.Deliver(w.Users[0].Old, f, []dovecot.Message{msg}); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}
	w := world()
	u := w.Users[0]
	w.mustBanjia(t, "job", "create", w.Job, "--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
	w.mustBanjia(t, "job", "start", w.Job)
	got := w.Target(u)
	for _, f := range system {
		if _, ok := got[f]; ok {
			t.Errorf("system folder %q is on the target", f)
		}
	}
	report := w.mustBanjia(t, "job", "report", w.Job)
	for _, want := range append([]string{"every selected message is on the target", "5 system folders left behind", "Exchange's Outbox", "Exchange's Sync Issues", "--system-folders"}, system...) {
		if !strings.Contains(report, want) {
			t.Errorf("job report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "job retry") {
		t.Errorf("job report offers a retry for folders left by choice:\n%s", report)
	}

	// A tenant of its own: the new address is another job's.
	w = world()
	u = w.Users[0]
	w.mustBanjia(t, "job", "create", "keep", "--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv, "--system-folders")
	if show := w.mustBanjia(t, "job", "show", "keep"); !strings.Contains(show, "copy system folders (Outbox, Sync Issues)") || !strings.Contains(show, "yes") {
		t.Errorf("job show does not say the system folders are kept:\n%s", show)
	}
	w.mustBanjia(t, "job", "start", "keep")
	got = w.Target(u)
	for _, f := range system {
		if len(got[f]) != 1 {
			t.Errorf("with --system-folders: %q holds %d messages on the target, want 1", f, len(got[f]))
		}
	}
	if n := migratetest.SameMail(t, "with --system-folders", w.Sources()[u.Old], got); n == 0 {
		t.Fatal("nothing compared")
	}
	if report := w.mustBanjia(t, "job", "report", "keep"); strings.Contains(report, "left behind") {
		t.Errorf("report of the job that keeps system folders:\n%s", report)
	}
}
