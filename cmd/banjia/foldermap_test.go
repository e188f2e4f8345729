package main

import (
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/internal/courier"
	"github.com/banjia-mail/banjia/internal/migratetest"
)

// TestCheckShowsTheFolderMap: before anything is copied, `banjia check`
// with a source and a target mailbox prints where every folder will go, in
// the target's namespace (Courier: INBOX.Sent, INBOX.客户.北京).
func TestCheckShowsTheFolderMap(t *testing.T) {
	courier.Require(t)
	w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 30, BadPassword: -1})
	dst := courier.StartT(t)
	u := w.Users[0]
	if err := dst.AddUser(u.New, u.NewPW); err != nil {
		t.Fatal(err)
	}
	w.env = []string{"BANJIA_FROM_PASSWORD=" + u.OldPW, "BANJIA_TO_PASSWORD=" + u.NewPW}
	defer func() { w.env = nil }()
	out := w.mustBanjia(t, "check", "--from", "imap+plain://"+u.Old+"@"+w.Src.IMAPAddr, "--to", "imap+plain://"+u.New+"@"+dst.IMAPAddr)
	for _, want := range []string{`-> "INBOX" `, `"Sent"`, `-> "INBOX.Sent"`, `"客户.北京"`, `-> "INBOX.客户.北京"`, "new", "exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output has no %q:\n%s", want, out)
		}
	}
	t.Logf("%s", out)
	if strings.Contains(out, u.OldPW) || strings.Contains(out, u.NewPW) {
		t.Errorf("a password is in the output:\n%s", out)
	}
	// The check copied and created nothing.
	if got := migratetest.SnapshotAt(t, dst.IMAPAddr, "INBOX.", u.New, u.NewPW); len(got) != 1 || len(got["INBOX"]) != 0 {
		t.Errorf("the target changed during the check: %v", got)
	}
}
