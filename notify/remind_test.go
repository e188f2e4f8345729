package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/notify/smtptest"
	"github.com/banjia-mail/banjia/state"
)

// clock is a time the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// memberJob stores a member-triggered job whose window closes at until,
// with three members who have not started (one with a phone number) and
// one who has.
func memberJob(t *testing.T, st *state.Store, until time.Time) {
	t.Helper()
	job := &state.Job{ID: "m1", Mode: state.ModeMember, State: state.JobRunning, Created: until.Add(-30 * 24 * time.Hour), EnrollUntil: until}
	if err := st.PutJob(job); err != nil {
		t.Fatal(err)
	}
	accts := []*state.Account{
		{ID: "a@old.example", Target: "a@new.example", State: state.AccountNotStarted, Phone: "+86 138 0013 8000"},
		{ID: "b@old.example", Target: "b@new.example", State: state.AccountNotStarted, Lang: "zh"},
		{ID: "c@old.example", Target: "c@new.example", State: state.AccountNotStarted},
		{ID: "d@old.example", Target: "d@new.example", State: state.AccountSucceeded},
	}
	if err := st.PutAccounts("m1", accts...); err != nil {
		t.Fatal(err)
	}
}

// TestRemindersBeforeWindowCloses: with reminders 7 and 1 days before the
// window closes, each member who has not started gets a mail and a text
// (to the phone number the accounts file gave, else the address) at 7 days
// and at 1 day, once each however often the clock ticks; the member who
// started gets nothing; nothing goes out after the window closes.
func TestRemindersBeforeWindowCloses(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	st := openStore(t, filepath.Join(t.TempDir(), "banjia.db"))
	defer st.Close()
	until := time.Date(2026, 12, 31, 18, 0, 0, 0, time.UTC)
	memberJob(t, st, until)
	if err := st.PutNoticeSettings("m1", state.NoticeSettings{RemindDays: []int{7, 1}}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: until.Add(-10 * 24 * time.Hour)}
	cfg := outboxConfig(srv, st)
	cfg.Now = clk.now
	h := start(t, cfg)

	// The SMS hook: a command that appends its arguments to a file.
	dir := t.TempDir()
	texts := filepath.Join(dir, "texts")
	script := filepath.Join(dir, "send-sms")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s|%s\\n' \"$1\" \"$2\" >> "+texts+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hook, err := notify.NewSMSHook(script, "")
	if err != nil {
		t.Fatal(err)
	}
	sched := &notify.Schedule{Store: st, Notifier: h.n, SMS: hook, Portal: "https://move.example.com/", Lang: "en", Now: clk.now}
	tick := func() {
		t.Helper()
		if err := sched.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	readTexts := func() []string {
		b, _ := os.ReadFile(texts)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}

	tick() // 10 days left: nothing yet
	clk.set(until.Add(-8 * 24 * time.Hour))
	tick()
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d mails before the reminder is due", n)
	}
	if _, err := os.Stat(texts); err == nil {
		t.Fatalf("texts before the reminder is due: %v", readTexts())
	}

	clk.set(until.Add(-7*24*time.Hour + time.Hour)) // 6 days 23 hours left
	tick()
	tick()
	msgs := srv.Wait(t, 3, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 3 {
		t.Fatalf("%d reminder mails at 7 days, want 3 (one per member who has not started)", n)
	}
	got := map[string]string{}
	for _, m := range msgs {
		subject, body := decode(t, m)
		got[m.To[0]] = subject + "\n" + body
	}
	mustContain(t, "a's reminder", got["a@new.example"], "7 days left", "a@old.example", "https://move.example.com/", "2026-12-31")
	mustContain(t, "b's reminder (zh)", got["b@new.example"], "还剩7天", "b@old.example", "https://move.example.com/")
	if _, ok := got["d@new.example"]; ok {
		t.Errorf("the member who started was reminded")
	}
	lines := readTexts()
	if len(lines) != 3 {
		t.Fatalf("texts %q, want 3", lines)
	}
	wantTo := map[string]bool{"+86 138 0013 8000": true, "b@new.example": true, "c@new.example": true}
	for _, l := range lines {
		to, text, _ := strings.Cut(l, "|")
		if !wantTo[to] {
			t.Errorf("text to %q, want a phone number or a member's address", to)
		}
		delete(wantTo, to)
		switch to {
		case "b@new.example":
			mustContain(t, "zh text", text, "【邮箱搬家】旧邮箱b@old.example还未搬家", "https://move.example.com/")
		case "+86 138 0013 8000":
			mustContain(t, "text", text, "a@old.example", "has not been moved yet", "https://move.example.com/", "2026-12-31")
		}
	}

	clk.set(until.Add(-23 * time.Hour)) // the 1-day reminder
	tick()
	srv.Wait(t, 6, 10*time.Second)
	if lines := readTexts(); len(lines) != 6 {
		t.Fatalf("%d texts after the 1-day reminder, want 6", len(lines))
	}
	last := srv.Messages()[5]
	subject, _ := decode(t, last)
	if !strings.Contains(subject, "1 days left") && !strings.Contains(subject, "还剩1天") {
		t.Errorf("the last reminder's subject %q does not say 1 day", subject)
	}

	clk.set(until.Add(time.Hour)) // closed
	tick()
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 6 {
		t.Errorf("%d mails after the window closed, want still 6", n)
	}
}

// TestSMSWebhook: the webhook gets the text as JSON; a refusal is an error
// that says the status, and a restarted schedule retries it.
func TestSMSWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]string
	fail := 2 // the direct call below, then the first tick's first text
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			http.Error(w, "gateway busy", http.StatusServiceUnavailable)
			return
		}
		var m map[string]string
		json.Unmarshal(b, &m)
		got = append(got, m)
	}))
	defer hs.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "banjia.db"))
	defer st.Close()
	until := time.Now().Add(12 * time.Hour)
	memberJob(t, st, until)
	if err := st.PutNoticeSettings("m1", state.NoticeSettings{RemindDays: []int{1}}); err != nil {
		t.Fatal(err)
	}
	hook, err := notify.NewSMSHook("", hs.URL+"/sms?key=k")
	if err != nil {
		t.Fatal(err)
	}
	if err := hook.Send(context.Background(), notify.SMS{To: "x", Text: "y"}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a refused text: %v, want the 503", err)
	}
	sched := &notify.Schedule{Store: st, SMS: hook, Portal: "https://move.example.com/", Lang: "zh"}
	sched.Tick(context.Background())
	sched.Tick(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("webhook got %d texts, want 3: %v", len(got), got)
	}
	var tos []string
	for _, m := range got {
		tos = append(tos, m["to"])
		if m["job"] != "m1" || !strings.Contains(m["text"], m["account"]) || !strings.Contains(m["text"], "还未搬家") {
			t.Errorf("webhook body %v", m)
		}
	}
	slices.Sort(tos)
	if want := []string{"+86 138 0013 8000", "b@new.example", "c@new.example"}; !slices.Equal(tos, want) {
		t.Errorf("texts to %v, want %v", tos, want)
	}
	if _, err := notify.NewSMSHook("", "ftp://x"); err == nil {
		t.Error("an ftp webhook was taken")
	}
	if _, err := notify.NewSMSHook("/no/such/command", ""); err == nil {
		t.Error("a missing command was taken")
	}
}

// TestDailyDigest: a running job that asks for it mails the admins one
// progress digest a day with the counts and the failed accounts.
func TestDailyDigest(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	st := openStore(t, filepath.Join(t.TempDir(), "banjia.db"))
	defer st.Close()
	job := &state.Job{ID: "d1", State: state.JobRunning, Created: time.Now()}
	st.PutJob(job)
	running := memberAccount(1)
	running.State = state.AccountRunning
	st.PutAccounts("d1", succeeded(), failed(), running)
	st.PutNoticeSettings("d1", state.NoticeSettings{Daily: true})
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	cfg := outboxConfig(srv, st)
	cfg.Now = clk.now
	h := start(t, cfg)
	sched := &notify.Schedule{Store: st, Notifier: h.n, Lang: "en", Now: clk.now}
	sched.Tick(context.Background())
	clk.set(clk.now().Add(5 * time.Hour))
	sched.Tick(context.Background())
	msgs := srv.Wait(t, 1, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d digests within a day, want 1", n)
	}
	if !slices.Equal(msgs[0].To, []string{admin1, admin2}) {
		t.Errorf("digest to %v", msgs[0].To)
	}
	subject, body := decode(t, msgs[0])
	mustContain(t, "daily digest", subject+"\n"+body, "2 of 3 accounts done, 1 failed", "li.na@old.example", "the admin has no migration permission", "running")
	clk.set(clk.now().Add(20 * time.Hour))
	sched.Tick(context.Background())
	srv.Wait(t, 2, 10*time.Second)
}
