package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/notify/smtptest"
)

// TestServeRemindsAndTexts: banjia serve with --sms-command reminds the
// members of a member-triggered job who have not started, a day before its
// window closes (banjia job notices --remind-days 1): a mail with the
// portal's link and a text to the phone number from the accounts file.
func TestServeRemindsAndTexts(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 2, Messages: 1, BadPassword: -1, Backend: migratetest.Memory})
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "smtp-pw-rm"}})
	w.env = []string{"BANJIA_ADMIN_PASSWORD=admin-pw-rm", "BANJIA_SMTP_PASSWORD=smtp-pw-rm"}
	csv := "旧邮箱,新邮箱,手机\n" + w.Users[0].Old + "," + w.Users[0].New + ",13800138000\n" + w.Users[1].Old + "," + w.Users[1].New + ",\n"
	if err := os.WriteFile(w.csv, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	w.mustBanjia(t, "job", "create", "acme", "--mode", "member", "--domain", "old.test", "--new-domain", "new.test", "--enroll-days", "1",
		"--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
	w.mustBanjia(t, "job", "notices", "acme", "--remind-days", "1")
	dir := t.TempDir()
	texts := filepath.Join(dir, "texts")
	script := filepath.Join(dir, "sms")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$1|$2\" >> "+texts+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, out := w.start0(t, "serve", "--listen", "localhost:0", "--smtp", smtpURL(mail), "--smtp-insecure", "--sms-command", script)
	var port string
	waitUntil(t, func() bool {
		if m := regexp.MustCompile(`portal http://127\.0\.0\.1:(\d+)/`).FindStringSubmatch(out.String()); m != nil {
			port = m[1]
			return true
		}
		return cmd.ProcessState != nil
	})
	if port == "" {
		t.Fatalf("serve did not start:\n%s", out)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	msgs := mail.Wait(t, 2, 30*time.Second)
	for _, m := range msgs {
		subject, _ := m.Subject()
		body, _ := m.Text()
		if !strings.Contains(subject, "1 days left") || !strings.Contains(body, "http://localhost:"+port+"/") {
			t.Errorf("reminder to %v: %q\n%s", m.To, subject, body)
		}
	}
	var lines []string
	waitUntil(t, func() bool {
		b, _ := os.ReadFile(texts)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(lines) == 2
	})
	got := strings.Join(lines, "\n")
	for _, want := range []string{"13800138000|", w.Users[1].New + "|", fmt.Sprintf("old mailbox %s has not been moved yet", w.Users[0].Old)} {
		if !strings.Contains(got, want) {
			t.Errorf("texts do not hold %q:\n%s", want, got)
		}
	}
}
