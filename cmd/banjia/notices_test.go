package main

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/notify/smtptest"
)

func smtpURL(s *smtptest.Server) string {
	return fmt.Sprintf("smtps://banjia@new.test@%s:%d", s.Host, s.TLSPort)
}

// TestJobStartDigest500: banjia job start with --smtp on a job of 500
// accounts (one with a wrong old password) mails each member once and
// each admin one digest with the counts and the failed account: 502
// mails, not 500 per admin.
func TestJobStartDigest500(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 500, Messages: 1, BadPassword: 7, Backend: migratetest.Memory})
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "smtp-pw-500"}})
	w.env = append(w.env, "BANJIA_SMTP_PASSWORD=smtp-pw-500")
	w.create(t)
	start := time.Now()
	out, err := w.banjia(t, "job", "start", w.Job, "--parallel", "8", "--smtp", smtpURL(mail), "--smtp-insecure",
		"--notify-admin", "it@new.test", "--notify-admin", "boss@new.test")
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
		t.Fatalf("job start: %v (want exit %d for the failed account)\n%s", err, exitFailed, lastLines(out))
	}
	t.Logf("500 accounts moved and mailed in %s", time.Since(start).Round(time.Millisecond))
	msgs := mail.Messages()
	per := map[string]int{}
	var digest smtptest.Message
	for _, m := range msgs {
		for _, to := range m.To {
			per[to]++
			if to == "it@new.test" {
				digest = m
			}
		}
	}
	if per["it@new.test"] != 1 || per["boss@new.test"] != 1 {
		t.Fatalf("the admins got %d and %d mails, want 1 digest each", per["it@new.test"], per["boss@new.test"])
	}
	for _, u := range w.Users {
		if per[u.New] != 1 {
			t.Errorf("%s got %d mails, want 1", u.New, per[u.New])
		}
	}
	if len(msgs) != 501 {
		t.Errorf("%d mails in all, want 501 (500 members, one digest to both admins)", len(msgs))
	}
	subject, err := digest.Subject()
	if err != nil {
		t.Fatal(err)
	}
	body, err := digest.Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"499 succeeded", "1 failed", "all 500", "u07@old.test -> u07@new.test  failed", "Reason:"} {
		if !strings.Contains(subject+"\n"+body, want) {
			t.Errorf("the digest does not say %q:\n%s\n%s", want, subject, body)
		}
	}
	if strings.Contains(body, "u08@old.test") {
		t.Errorf("the digest lists succeeded accounts")
	}
	if out := w.mustBanjia(t, "outbox"); !strings.Contains(out, "the outbox is empty") {
		t.Errorf("banjia outbox after every mail went out:\n%s", out)
	}
}

// TestJobStartOutboxWhenSMTPDown: with the SMTP server down, job start
// finishes the move, keeps the mails and says so; banjia outbox lists them
// with the reason, and the next banjia run sends them once the server is back.
func TestJobStartOutboxWhenSMTPDown(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 3, Messages: 2, BadPassword: -1, Backend: migratetest.Memory})
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "smtp-pw-3"}})
	mail.Stop()
	w.env = append(w.env, "BANJIA_SMTP_PASSWORD=smtp-pw-3")
	w.create(t)
	out := w.mustBanjia(t, "job", "start", w.Job, "--smtp", smtpURL(mail), "--smtp-insecure", "--notify-admin", "it@new.test", "--smtp-wait", "2s")
	if !strings.Contains(out, "4 notification mails wait in the outbox") {
		t.Errorf("job start does not say the mails wait:\n%s", lastLines(out))
	}
	list := w.mustBanjia(t, "outbox")
	for _, want := range []string{"u00@new.test", "u02@new.test", "it@new.test", "digest", "member", "connect"} {
		if !strings.Contains(list, want) {
			t.Errorf("banjia outbox does not show %q:\n%s", want, list)
		}
	}
	mail.Restart(t)
	// Any later run sends them: here a sync of the finished job.
	w.mustBanjia(t, "job", "start", w.Job, "--rerun", "--smtp", smtpURL(mail), "--smtp-insecure", "--notify-admin", "it@new.test")
	per := map[string]int{}
	for _, m := range mail.Messages() {
		for _, to := range m.To {
			per[to]++
		}
	}
	for _, u := range w.Users {
		if per[u.New] < 1 {
			t.Errorf("%s never got its mail", u.New)
		}
	}
	if per["it@new.test"] < 1 {
		t.Errorf("the admin never got the digest")
	}
	if out := w.mustBanjia(t, "outbox"); !strings.Contains(out, "the outbox is empty") {
		t.Errorf("banjia outbox after the server came back:\n%s", out)
	}
}

// TestProvidersSources: the new presets are listed, with where every
// preset's values come from.
func TestProvidersSources(t *testing.T) {
	out, err := exec.Command(binary, "providers").CombinedOutput()
	if err != nil {
		t.Fatalf("providers: %v\n%s", err, out)
	}
	for _, want := range []string{"imap.263.net:993 implicit", "pop.263.net:995 implicit", "imaphz.qiye.163.com:993 implicit",
		"pophz.qiye.163.com:995 implicit", "Where the values come from:", "263: 263 企业邮箱", "qiye163: 网易企业邮"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("banjia providers does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "(not recorded)") {
		t.Errorf("a preset without its source:\n%s", out)
	}
}

// lastLines is the end of a command's output, for a failure's message.
func lastLines(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// TestJobNoticesCLI: banjia job notices sets a job's daily digest and
// refuses reminders where no member can enroll, and bad day counts.
func TestJobNoticesCLI(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 1, BadPassword: -1, Backend: migratetest.Memory})
	w.create(t)
	if out := w.mustBanjia(t, "job", "notices", w.Job, "--daily"); !strings.Contains(out, "daily digest true") {
		t.Errorf("job notices --daily: %s", out)
	}
	for _, c := range []struct{ arg, want string }{
		{"3", "no enrollment window for members"},
		{"x", "want whole days"},
		{"0", "want 1 to 365 days"},
	} {
		out, err := w.banjia(t, "job", "notices", w.Job, "--remind-days", c.arg)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("--remind-days %s: %v %s, want %q", c.arg, err, out, c.want)
		}
	}
	if out := w.mustBanjia(t, "logs", "--job", w.Job); !strings.Contains(out, "set no reminders and a daily digest while it runs") {
		t.Errorf("the event log does not record the setting:\n%s", out)
	}
	if out, err := w.banjiaIn(t, "zh", "logs", "--job", w.Job); err != nil || !strings.Contains(out, "设置了通知: 不提醒, 搬家期间每天发送汇总") {
		t.Errorf("the setting in Chinese: %v\n%s", err, out)
	}
}
