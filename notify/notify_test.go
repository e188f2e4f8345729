package notify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/notify/smtptest"
	"github.com/banjia-mail/banjia/state"
)

const (
	login    = "notify@new.example"
	password = "Pa55-w0rd!secret"
	member   = "zhang.wei@new.example"
	admin1   = "admin@new.example"
	admin2   = "it@new.example"
)

// syncBuffer collects log output written from the sending goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a notifier with its log and OnError reports captured.
type harness struct {
	n    *notify.Notifier
	logs *syncBuffer
	mu   sync.Mutex
	errs []*notify.DeliveryError
}

func (h *harness) reports() []*notify.DeliveryError {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.errs)
}

func (h *harness) finals() []*notify.DeliveryError {
	var out []*notify.DeliveryError
	for _, e := range h.reports() {
		if e.Final {
			out = append(out, e)
		}
	}
	return out
}

// waitFinals waits for n final reports (mails given up).
func (h *harness) waitFinals(t *testing.T, n int) []*notify.DeliveryError {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if f := h.finals(); len(f) >= n {
			return f
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d final error reports, want %d; all: %v", len(h.finals()), n, h.reports())
	return nil
}

func (h *harness) close(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.n.Close(ctx)
}

func start(t *testing.T, cfg notify.Config) *harness {
	t.Helper()
	h := &harness{logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := notify.New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	n.OnError(func(err error) {
		var de *notify.DeliveryError
		if !errors.As(err, &de) {
			t.Errorf("OnError got %T, want *notify.DeliveryError", err)
			return
		}
		h.mu.Lock()
		h.errs = append(h.errs, de)
		h.mu.Unlock()
	})
	h.n = n
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n.Close(ctx)
		if strings.Contains(h.logs.String(), password) {
			t.Errorf("the password is in the log:\n%s", h.logs.String())
		}
	})
	return h
}

// tlsConfig is a notifier config for srv's implicit TLS listener.
func tlsConfig(srv *smtptest.Server) notify.Config {
	return notify.Config{
		Host: srv.Host, Port: srv.TLSPort, Security: "tls",
		User: login, Password: password,
		Admins:  []string{admin1, admin2},
		RootCAs: srv.RootCAs,
		Timeout: 5 * time.Second, Backoff: 10 * time.Millisecond,
	}
}

func users() map[string]string { return map[string]string{login: password} }

func testJob() *state.Job {
	return &state.Job{ID: "j1", Name: "old.example -> new.example", State: state.JobCompleted}
}

func succeeded() *state.Account {
	return &state.Account{ID: "zhang.wei@old.example", Source: "zhang.wei@old.example", Target: member,
		State: state.AccountSucceeded, Counts: state.Counts{ToImport: 384, Imported: 384},
		Started: time.Now().Add(-time.Hour), Finished: time.Now()}
}

func failed() *state.Account {
	return &state.Account{ID: "li.na@old.example", Target: "li.na@new.example", State: state.AccountFailed,
		Reason: "the admin has no migration permission for this mailbox",
		Counts: state.Counts{ToImport: 12, Imported: 10, Failed: 2}}
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func decode(t *testing.T, m smtptest.Message) (subject, body string) {
	t.Helper()
	subject, err := m.Subject()
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	body, err = m.Text()
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return subject, body
}

// A succeeded account over implicit TLS, in Chinese: one mail, to the member
// only (the admins get the job's digest), well-formed MIME, the product's
// words and counts line (R6-R8).
func TestAccountFinishedChineseImplicitTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	h := start(t, tlsConfig(srv))
	h.n.AccountFinished(testJob(), succeeded(), "zh")
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(msgs))
	}
	m := msgs[0]
	if want := []string{member}; !slices.Equal(m.To, want) {
		t.Errorf("envelope recipients %v, want %v", m.To, want)
	}
	if m.From != login || m.User != login || !m.TLS {
		t.Errorf("envelope from %q, login %q, TLS %v: want %s over TLS", m.From, m.User, m.TLS, login)
	}
	hdr, err := m.Header()
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "To header", hdr.Get("To"), member)
	if strings.Contains(hdr.Get("To"), admin1) {
		t.Errorf("an account's mail goes to the admins: To %s", hdr.Get("To"))
	}
	mustContain(t, "From header", hdr.Get("From"), login)
	for _, k := range []string{"Date", "Message-Id", "Mime-Version"} {
		if hdr.Get(k) == "" {
			t.Errorf("no %s header", k)
		}
	}
	if _, err := hdr.Date(); err != nil {
		t.Errorf("Date header: %v", err)
	}
	mustContain(t, "Content-Type", hdr.Get("Content-Type"), "text/plain", "charset=utf-8")
	if !strings.HasPrefix(hdr.Get("Subject"), "=?utf-8?b?") {
		t.Errorf("raw Subject %q is not an RFC 2047 B encoded word", hdr.Get("Subject"))
	}
	for i, c := range m.Data {
		if c >= 0x80 {
			t.Fatalf("byte %d of the raw mail is 8-bit (%#x): the body should be quoted-printable", i, c)
		}
	}
	subject, body := decode(t, m)
	mustContain(t, "subject", subject, "邮箱搬家", "zhang.wei@old.example -> "+member, "搬家成功")
	mustContain(t, "body", body, "搬家成功", "总计需导入384封邮件, 已成功导入384封, 失败0封",
		"zhang.wei@old.example -> "+member, "old.example -> new.example (j1)")
}

// A failed account over STARTTLS, in English: the state and the counts line
// are in the member's mail, the old server's reason is not; the admins
// read the reason in the digest, not in a mail per account.
func TestAccountFinishedEnglishStartTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	cfg := tlsConfig(srv)
	cfg.Port, cfg.Security = srv.StartTLSPort, "starttls"
	cfg.Admins = []string{admin1}
	h := start(t, cfg)
	a := failed()
	a.Reason = `login as li.na@old.example at 10.0.0.7:993 refused: the account is disabled [CONTACTADMIN] (the server said: "Account locked by policy 7")`
	h.n.AccountFinished(testJob(), a, "en")
	h.n.AccountFinished(testJob(), a, "zh")
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d mails, want 2 (the member's, twice)", len(msgs))
	}
	for i, m := range msgs {
		subject, body := decode(t, m)
		if !m.TLS {
			t.Errorf("mail %d not over STARTTLS", i)
		}
		lang := []string{"en", "zh"}[i]
		if lang == "en" {
			mustContain(t, "subject", subject, "li.na@old.example -> li.na@new.example", "failed")
			mustContain(t, "body", body, "State: failed", "12 to import, 10 imported, 2 failed")
		} else {
			mustContain(t, "subject", subject, "搬家失败")
		}
		switch want := []string{"li.na@new.example"}; {
		case slices.Equal(m.To, want):
			// The member reads what the portal says: not the old server's
			// address, nor its words.
			mustContain(t, "member's body", body, map[string]string{"en": "The move stopped before it finished. Your admin can see why.", "zh": "搬家没有完成。管理员可以看到原因。"}[lang])
			for _, not := range []string{"10.0.0.7", "CONTACTADMIN", "Account locked", "Reason", "失败原因"} {
				if strings.Contains(body, not) {
					t.Errorf("the member's mail holds %q:\n%s", not, body)
				}
			}
		default:
			t.Errorf("recipients %v", m.To)
		}
	}
}

// The job summary goes to the admins only, with accounts per state, the
// totals in the product's wording and each failed or abandoned account.
func TestJobFinishedBothLanguages(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	h := start(t, tlsConfig(srv))
	abandoned := &state.Account{ID: "wang@old.example", Target: "wang@new.example", State: state.AccountAbandoned,
		Reason: "the job was ended", Counts: state.Counts{ToImport: 5, Imported: 1}}
	s2 := succeeded()
	s2.ID, s2.Target, s2.Counts = "chen@old.example", "chen@new.example", state.Counts{ToImport: 1, Imported: 1}
	accts := []*state.Account{succeeded(), s2, failed(), abandoned}
	h.n.JobFinished(testJob(), accts, "zh")
	h.n.JobFinished(testJob(), accts, "en")
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d mails, want 2", len(msgs))
	}
	for _, m := range msgs {
		if want := []string{admin1, admin2}; !slices.Equal(m.To, want) {
			t.Errorf("summary recipients %v, want the admins %v", m.To, want)
		}
	}
	subject, body := decode(t, msgs[0])
	mustContain(t, "zh subject", subject, "搬家任务", "搬家成功2个", "搬家失败1个", "放弃1个")
	mustContain(t, "zh body", body, "搬家已结束", "所有的 4", "搬家成功 2", "搬家失败 1", "放弃 1",
		"总计需导入402封邮件, 已成功导入396封, 失败2封",
		"li.na@old.example -> li.na@new.example  搬家失败  总计需导入12封邮件, 已成功导入10封, 失败2封",
		"the admin has no migration permission for this mailbox", "wang@old.example -> wang@new.example  放弃")
	if strings.Contains(body, "zhang.wei@old.example") {
		t.Errorf("succeeded accounts are listed in the summary:\n%s", body)
	}
	subject, body = decode(t, msgs[1])
	mustContain(t, "en subject", subject, "2 succeeded, 0 with failures, 1 failed, 1 abandoned")
	mustContain(t, "en body", body, "completed", "all 4", "succeeded 2", "failed 1", "abandoned 1",
		"402 to import, 396 imported, 2 failed", "li.na@old.example -> li.na@new.example  failed",
		"Reason: the job was ended")
}

// A wrong password: Check and the sending goroutine both say what to do,
// the login is tried once per mail (no retry storm) and the password is in
// no error.
func TestAuthFailure(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: map[string]string{login: "the-right-one"}})
	h := start(t, tlsConfig(srv))
	err := h.n.Check(context.Background())
	var e *notify.Error
	if !errors.As(err, &e) || e.Kind != notify.Auth || e.Temporary || e.Code != 535 {
		t.Fatalf("Check: %v (%#v), want a permanent Auth error with code 535", err, e)
	}
	want := "the SMTP server refused the login for " + login + ": check the password or app password"
	mustContain(t, "Check error", err.Error(), want)

	h.n.AccountFinished(testJob(), succeeded(), "en")
	finals := h.waitFinals(t, 1)
	time.Sleep(100 * time.Millisecond) // room for a retry that must not happen
	if n := srv.Attempts(smtptest.CmdAuth); n != 2 {
		t.Errorf("%d AUTH attempts, want 2 (Check, then one for the mail)", n)
	}
	if r := h.reports(); len(r) != 1 || r[0].Attempt != 1 || r[0].Err.Kind != notify.Auth {
		t.Errorf("reports %v, want one final auth failure at attempt 1", r)
	}
	mustContain(t, "delivery error", finals[0].Error(), want, "giving up")
	if len(srv.Messages()) != 0 {
		t.Error("a mail arrived despite the failed login")
	}
	for _, s := range []string{err.Error(), finals[0].Error()} {
		if strings.Contains(s, password) {
			t.Errorf("the password is in %q", s)
		}
	}
}

// Zoho's "relay not allowed": a From address that is not the login (or its
// alias) is refused at MAIL FROM; the error says which address to use.
func TestRelayNotAllowed(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users(), SendAs: map[string][]string{login: {"banjia@new.example"}}})
	cfg := tlsConfig(srv)
	cfg.From = "noreply@new.example"
	h := start(t, cfg)
	err := h.n.Check(context.Background())
	var e *notify.Error
	if !errors.As(err, &e) || e.Kind != notify.Relay || e.Temporary || e.Code != 553 {
		t.Fatalf("Check: %v, want a permanent Relay error with code 553", err)
	}
	mustContain(t, "relay error", err.Error(), "relay not allowed", "noreply@new.example", login,
		"the From address must be the login address or an address (alias) it may send as", "Relaying not allowed")

	h.n.AccountFinished(testJob(), succeeded(), "zh")
	f := h.waitFinals(t, 1)
	if f[0].Err.Kind != notify.Relay || len(h.reports()) != 1 {
		t.Errorf("reports %v, want one final relay error", h.reports())
	}
	if n := srv.Attempts(smtptest.CmdMail); n != 2 {
		t.Errorf("%d MAIL FROM attempts, want 2 (Check, then one for the mail)", n)
	}

	// An alias the login may send as goes through.
	cfg.From = "banjia@new.example"
	ok := start(t, cfg)
	if err := ok.n.Check(context.Background()); err != nil {
		t.Fatalf("Check with an alias as From: %v", err)
	}
	ok.n.AccountFinished(testJob(), succeeded(), "zh")
	if err := ok.close(t); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].From != "banjia@new.example" {
		t.Fatalf("mails %v, want one from the alias", m)
	}
}

// A relay refusal on RCPT TO (Postfix's "554 5.7.1 Relay access denied") is
// classified the same way and not retried.
func TestRelayRefusedAtRecipient(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	srv.Fail(smtptest.CmdMail, smtptest.Reply(553, "5.7.1 Relaying not allowed"))
	srv.Fail(smtptest.CmdRcpt, smtptest.Reply(554, "5.7.1 <zhang.wei@new.example>: Relay access denied"))
	h := start(t, tlsConfig(srv))
	h.n.AccountFinished(testJob(), succeeded(), "en")
	h.n.AccountFinished(testJob(), succeeded(), "en")
	f := h.waitFinals(t, 2)
	for _, d := range f {
		if d.Err.Kind != notify.Relay || d.Attempt != 1 {
			t.Errorf("%v: want a relay error at the first attempt", d)
		}
	}
	if err := h.close(t); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d mails arrived, want 0", n)
	}
}

// A server busy twice (451) then accepting: the mail arrives exactly once,
// and each failed attempt was reported as temporary.
func TestTemporaryFailureRetried(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	srv.Fail(smtptest.CmdData, smtptest.Reply(451, "4.3.0 try again later"), smtptest.Reply(451, "4.3.0 try again later"))
	h := start(t, tlsConfig(srv))
	h.n.AccountFinished(testJob(), succeeded(), "en")
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d mails, want exactly 1", n)
	}
	if n := srv.Attempts(smtptest.CmdData); n != 3 {
		t.Errorf("%d DATA attempts, want 3", n)
	}
	r := h.reports()
	if len(r) != 2 {
		t.Fatalf("%d reports, want 2 (one per failed attempt): %v", len(r), r)
	}
	for i, d := range r {
		if d.Final || !d.Err.Temporary || d.Err.Code != 451 || d.Attempt != i+1 {
			t.Errorf("report %d: %v (final %v, temporary %v, code %d), want a temporary 451 at attempt %d", i, d, d.Final, d.Err.Temporary, d.Err.Code, i+1)
		}
	}
}

// Temporary failures that never stop: the mail is tried 1+Retries times,
// then given up with a final report.
func TestRetriesAreBounded(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	for range 10 {
		srv.Fail(smtptest.CmdMail, smtptest.Reply(421, "4.7.0 too many connections"))
	}
	cfg := tlsConfig(srv)
	cfg.Retries = 2
	h := start(t, cfg)
	h.n.AccountFinished(testJob(), succeeded(), "en")
	f := h.waitFinals(t, 1)
	if f[0].Attempt != 3 || !f[0].Err.Temporary {
		t.Errorf("final report %v at attempt %d, want the 3rd", f[0], f[0].Attempt)
	}
	if n := srv.Attempts(smtptest.CmdMail); n != 3 {
		t.Errorf("%d MAIL attempts, want 3", n)
	}
}

// One recipient refused for good: the others still get the mail, once, and
// the refusal is reported.
func TestRefusedRecipientDoesNotStopTheOthers(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	srv.Fail(smtptest.CmdRcpt, smtptest.Reply(550, "5.1.1 no such user"))
	h := start(t, tlsConfig(srv))
	h.n.JobFinished(testJob(), []*state.Account{succeeded()}, "en")
	if err := h.close(t); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{admin2}) {
		t.Fatalf("mails %v, want one to the second admin", msgs)
	}
	f := h.finals()
	if len(f) != 1 || f[0].Err.Kind != notify.Recipient || !slices.Equal(f[0].To, []string{admin1}) {
		t.Fatalf("reports %v, want one recipient refusal for %s", h.reports(), admin1)
	}
}

// blackhole accepts connections and never answers, like a firewall that
// lets SYN through to a hung server.
func blackhole(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// A hung server: AccountFinished returns at once however many mails wait,
// a full queue drops mails with a report instead of blocking, and Close
// gives up when its context ends.
func TestServerDownDoesNotBlock(t *testing.T) {
	port := blackhole(t)
	h := start(t, notify.Config{Host: "127.0.0.1", Port: port, Security: "tls", User: login, Password: password,
		Admins: []string{admin1}, Timeout: 30 * time.Second, QueueSize: 2})
	began := time.Now()
	for range 20 {
		h.n.AccountFinished(testJob(), succeeded(), "en")
		h.n.JobFinished(testJob(), []*state.Account{succeeded()}, "en")
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("40 notifications took %s to queue against a hung server", d)
	}
	dropped := 0
	for _, d := range h.finals() {
		if d.Err.Kind == notify.Dropped {
			dropped++
		}
	}
	if dropped < 37 { // one in flight, two queued
		t.Errorf("%d mails dropped for a full queue, want at least 37", dropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began = time.Now()
	err := h.n.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("Close: %v, want an error saying mails were not sent", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Close took %s with a 200ms context", d)
	}
	// After Close nothing blocks or panics either.
	h.n.AccountFinished(testJob(), succeeded(), "en")
}

// Nothing listening, or a host that does not exist: Check says so.
func TestConnectErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	h := start(t, notify.Config{Host: "127.0.0.1", Port: port, Security: "starttls", From: "a@new.example", Timeout: 2 * time.Second})
	err = h.n.Check(context.Background())
	var e *notify.Error
	if !errors.As(err, &e) || e.Kind != notify.Connect || !e.Temporary {
		t.Fatalf("Check: %v, want a temporary Connect error", err)
	}
	mustContain(t, "error", err.Error(), "cannot connect to 127.0.0.1:"+strconv.Itoa(port), "connection refused")

	h = start(t, notify.Config{Host: "smtp.does-not-exist.invalid", Port: 465, From: "a@new.example", Timeout: 5 * time.Second})
	err = h.n.Check(context.Background())
	if !errors.As(err, &e) || e.Kind != notify.Connect {
		t.Fatalf("Check: %v, want a Connect error", err)
	}
	mustContain(t, "error", err.Error(), "smtp.does-not-exist.invalid")
}

// Certificates are verified: a self-signed one fails unless the admin says
// insecure; implicit TLS against a plain port says to use STARTTLS.
func TestTLSErrors(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	cfg := tlsConfig(srv)
	cfg.RootCAs = nil
	for _, sec := range []struct {
		name string
		port int
	}{{"tls", srv.TLSPort}, {"starttls", srv.StartTLSPort}} {
		cfg.Security, cfg.Port = sec.name, sec.port
		err := start(t, cfg).n.Check(context.Background())
		var e *notify.Error
		if !errors.As(err, &e) || e.Kind != notify.TLS || e.Temporary {
			t.Fatalf("%s with an untrusted certificate: %v, want a permanent TLS error", sec.name, err)
		}
		mustContain(t, sec.name+" error", err.Error(), "not trusted", "insecure")

		cfg.Insecure = true
		if err := start(t, cfg).n.Check(context.Background()); err != nil {
			t.Errorf("%s, insecure: %v", sec.name, err)
		}
		cfg.Insecure = false
	}

	cfg = tlsConfig(srv)
	cfg.Port = srv.StartTLSPort
	err := start(t, cfg).n.Check(context.Background())
	var e *notify.Error
	if !errors.As(err, &e) || e.Kind != notify.TLS {
		t.Fatalf("implicit TLS on the STARTTLS port: %v, want a TLS error", err)
	}
	mustContain(t, "error", err.Error(), "does not speak TLS", "starttls")
}

// Plain SMTP only when asked for; the server here offers no login without
// TLS, so the admin is told to use TLS.
func TestPlainOnlyWhenAsked(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	h := start(t, notify.Config{Host: srv.Host, Port: srv.StartTLSPort, Security: "none", From: "banjia@new.example",
		Admins: []string{admin1}, Timeout: 5 * time.Second})
	h.n.AccountFinished(testJob(), succeeded(), "en")
	if err := h.close(t); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].TLS {
		t.Fatalf("mails %v, want one over a plain connection", m)
	}

	auth := smtptest.Start(t, smtptest.Options{Users: users()})
	h = start(t, notify.Config{Host: auth.Host, Port: auth.StartTLSPort, Security: "none", User: login, Password: password, Timeout: 5 * time.Second})
	err := h.n.Check(context.Background())
	var e *notify.Error
	if !errors.As(err, &e) || e.Kind != notify.Auth {
		t.Fatalf("Check: %v, want an Auth error", err)
	}
	mustContain(t, "error", err.Error(), "offers no login", "starttls")
}

// The password appears in no error and no log line, whatever fails: even a
// server that quotes it back in a reply.
func TestPasswordNeverShown(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	b64 := base64.StdEncoding.EncodeToString([]byte("\x00" + login + "\x00" + password))
	srv.Fail(smtptest.CmdMail, smtptest.Reply(550, "5.7.1 sender refused, you said "+password+" / "+b64))
	srv.Fail(smtptest.CmdData, smtptest.Reply(451, "4.3.0 busy, "+password))
	var all []string
	h := start(t, tlsConfig(srv))
	h.n.AccountFinished(testJob(), succeeded(), "en") // MAIL refused, quoting the password
	h.n.AccountFinished(testJob(), failed(), "en")    // 451 quoting it, then sent
	if err := h.close(t); err != nil {
		t.Fatal(err)
	}
	for _, e := range h.reports() {
		all = append(all, e.Error(), e.Err.Error(), e.Err.Unwrap().Error())
	}
	if len(h.reports()) != 2 {
		t.Errorf("reports %v, want two", h.reports())
	}
	wrong := tlsConfig(srv)
	wrong.Password = password + "x"
	h2 := start(t, wrong)
	if err := h2.n.Check(context.Background()); err != nil {
		all = append(all, err.Error())
	} else {
		t.Error("a wrong password passed Check")
	}
	down := tlsConfig(srv)
	down.Port = blackhole(t)
	down.Timeout = 200 * time.Millisecond
	if err := start(t, down).n.Check(context.Background()); err != nil {
		all = append(all, err.Error())
	}
	logs := h.logs.String() + h2.logs.String()
	all = append(all, logs)
	for _, s := range all {
		for _, secret := range []string{password, b64, base64.StdEncoding.EncodeToString([]byte(password))} {
			if strings.Contains(s, secret) {
				t.Errorf("a secret is shown in %q", s)
			}
		}
	}
	mustContain(t, "logs", logs, "notification not sent", "will retry", "notification sent")
}

// Newlines in an address from a CSV cannot add headers.
func TestNoHeaderInjection(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users()})
	h := start(t, tlsConfig(srv))
	a := succeeded()
	a.ID = "x@old.example\r\nBcc: victim@example.com"
	h.n.AccountFinished(testJob(), a, "en")
	if err := h.close(t); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(msgs))
	}
	hdr, err := msgs[0].Header()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Get("Bcc") != "" {
		t.Errorf("a Bcc header was injected: %q", hdr.Get("Bcc"))
	}
}

func TestConfig(t *testing.T) {
	ok := func(c notify.Config) notify.Config {
		if c.User == "" && c.From == "" {
			c.From = "a@b.example"
		}
		return c
	}
	for _, c := range []struct {
		cfg  notify.Config
		fail string
	}{
		{notify.Config{Port: 465}, "host is required"},
		{ok(notify.Config{Host: "h", Security: "ssl3"}), "unknown SMTP security"},
		{notify.Config{Host: "h", Password: "p"}, "without a user"},
		{notify.Config{Host: "h", User: "u@x.example"}, "has no password"},
		{notify.Config{Host: "h"}, "From address is required"},
		{ok(notify.Config{Host: "h", Admins: []string{"not an address"}}), "admin address"},
		{ok(notify.Config{Host: "h", Port: 70000}), "out of range"},
		{ok(notify.Config{Host: "h", Port: 465}), ""},
		{ok(notify.Config{Host: "h", Port: 25}), ""},
		{ok(notify.Config{Host: "h", Security: "implicit"}), ""},
	} {
		n, err := notify.New(c.cfg, nil)
		if c.fail == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.cfg, err)
			} else {
				n.Close(context.Background())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.fail) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.fail)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "smtp", notify.Config{Host: "h", User: "u", Password: password})
	if strings.Contains(buf.String(), password) {
		t.Errorf("a logged Config shows the password: %s", buf.String())
	}
}

// A server that offers only AUTH LOGIN (older Exchange and some hosting
// servers) gets LOGIN.
func TestLoginMechanism(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: users(), Mechanisms: []string{"LOGIN"}})
	h := start(t, tlsConfig(srv))
	if err := h.n.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	h.n.AccountFinished(testJob(), succeeded(), "en")
	if err := h.close(t); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].User != login {
		t.Fatalf("mails %v, want one sent after LOGIN as %s", m, login)
	}
	wrong := tlsConfig(srv)
	wrong.Password = "nope-wrong"
	err := start(t, wrong).n.Check(context.Background())
	var e *notify.Error
	if !errors.As(err, &e) || e.Kind != notify.Auth {
		t.Fatalf("Check with a wrong password over LOGIN: %v, want an Auth error", err)
	}
}
