package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

// The tests in this file need no mail server: the login check is a stub
// that takes one password, and no job is started.

const rightPW = "right-pw-Tq4"

// bare is a `banjia serve` over a state file, with a stub login check.
type bare struct {
	t     *testing.T
	store *state.Store
	srv   *web.Server
	http  *httptest.Server
	inv   *invitations
}

// invitations records the invitation mails instead of sending them.
type invitations struct {
	mu   sync.Mutex
	sent []string // "member portal"
}

func (n *invitations) Invite(job *state.Job, a *state.Account, portal, lang string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, a.Target+" "+portal)
	return true
}

func (n *invitations) AccountFinished(*state.Job, *state.Account, string) {}
func (n *invitations) JobFinished(*state.Job, []*state.Account, string)   {}

func (n *invitations) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.sent
	n.sent = nil
	return out
}

// newBare serves with cfg's limits and timeouts (from HTTPServer); listen,
// when set, is the address it listens on (e.g. "127.0.0.1:0").
func newBare(t *testing.T, cfg web.Config) *bare {
	t.Helper()
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := migrate.NewManager(ctx, store, migrate.Config{})
	b := &bare{t: t, store: store, inv: &invitations{}}
	b.http = httptest.NewUnstartedServer(nil)
	cfg.Manager = m
	cfg.AdminUser, cfg.AdminPassword, cfg.AdminToken = "admin", adminPW, adminToken
	cfg.Login = func(ctx context.Context, e mail.Endpoint) error {
		if e.Password != rightPW {
			return errors.New("NO [AUTHENTICATIONFAILED] Authentication failed.")
		}
		return nil
	}
	if cfg.Notifier == nil {
		cfg.Notifier = b.inv
	}
	if cfg.Listen == "-" {
		cfg.Listen = b.http.Listener.Addr().String()
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 3
	}
	if b.srv, err = web.New(cfg); err != nil {
		t.Fatal(err)
	}
	b.http.Config = b.srv.HTTPServer()
	b.http.Start()
	t.Cleanup(func() {
		b.http.Close()
		m.Stop()
		cancel()
		store.Close()
	})
	return b
}

// call sends a request with the admin token and decodes the JSON answer.
func (b *bare) call(method, path string, body io.Reader, out any, edit ...func(*http.Request)) int {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.http.URL+path, body)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	for _, e := range edit {
		e(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			b.t.Fatalf("%s %s: %d %v: %s", method, path, resp.StatusCode, err, data)
		}
	}
	return resp.StatusCode
}

func (b *bare) callJSON(method, path string, body any, out any, edit ...func(*http.Request)) int {
	b.t.Helper()
	data, _ := json.Marshal(body)
	return b.call(method, path, strings.NewReader(string(data)), out, edit...)
}

// memberJob creates a member-triggered job of old.test -> new.test with
// the members listed.
func (b *bare) memberJob(id string, members ...string) {
	b.t.Helper()
	var csv strings.Builder
	for _, m := range members {
		fmt.Fprintf(&csv, "%s@old.test,%s@new.test\n", m, m)
	}
	var out map[string]any
	if code := b.callJSON("POST", "/api/jobs", map[string]any{"id": id, "mode": "member", "domain": "old.test", "new_domain": "new.test",
		"source": "imap+plain://127.0.0.1:1", "target": "imap+plain://127.0.0.1:2", "accounts": csv.String()}, &out); code != http.StatusCreated {
		b.t.Fatalf("create %s: %d %v", id, code, out)
	}
}

func (b *bare) events() []state.Event {
	b.t.Helper()
	var evs []state.Event
	if code := b.call("GET", "/api/events", nil, &evs); code != 200 {
		b.t.Fatalf("events: %d", code)
	}
	return evs
}

func (b *bare) hasEvent(kind, text string) bool {
	for _, e := range b.events() {
		if e.Kind == kind && strings.Contains(e.Message, text) {
			return true
		}
	}
	return false
}

// visitor is one client from one loopback address, with cookies and the
// CSRF token of the last page.
type visitor struct {
	b    *bare
	c    *http.Client
	csrf string
}

func (b *bare) visitor(from string) *visitor {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	return &visitor{b: b, c: &http.Client{Jar: jar, Transport: tr, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *visitor) do(method, path string, form url.Values) (int, string) {
	c.b.t.Helper()
	var body io.Reader
	if form != nil {
		if form.Get("csrf") == "" {
			form.Set("csrf", c.csrf)
		}
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.b.http.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(data); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, string(data)
}

// endless is a body of n bytes made as it is read, counting what was read.
type endless struct {
	n, read int64
	head    []byte
}

func (e *endless) Read(p []byte) (int, error) {
	if e.read >= e.n {
		return 0, io.EOF
	}
	k := int64(len(p))
	if k > e.n-e.read {
		k = e.n - e.read
	}
	for i := range p[:k] {
		p[i] = 'x'
		if off := e.read + int64(i); off < int64(len(e.head)) {
			p[i] = e.head[off]
		}
	}
	atomic.AddInt64(&e.read, k)
	return int(k), nil
}

// TestLargeBodiesRefused: a 300 MB multipart upload to the sign-in form,
// with or without its length announced, is refused with 413 once the limit
// is passed, nothing of it lands in the temporary directory, and the
// server did not read it all; a JSON body over its limit is a clear 413,
// not "unexpected EOF"; the CSV routes take more than the others.
func TestLargeBodiesRefused(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	b := newBare(t, web.Config{})
	const huge = 300 << 20
	for _, announced := range []bool{false, true} {
		t.Run(fmt.Sprintf("length announced=%v", announced), func(t *testing.T) {
			var head strings.Builder
			mw := multipart.NewWriter(&head)
			mw.WriteField("address", "a@new.test")
			mw.CreateFormFile("upload", "big.bin")
			body := &endless{n: huge, head: []byte(head.String())}
			req, _ := http.NewRequest("POST", b.http.URL+"/login", body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			if announced {
				req.ContentLength = huge
			} else {
				req.ContentLength = -1 // chunked
			}
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(data), "larger than 1 MB") {
					t.Fatalf("300 MB sign-in form: %d %s", resp.StatusCode, data)
				}
			} else {
				// The server may close before the client hears the answer:
				// what counts is that it stopped reading.
				t.Logf("the client saw %v", err)
			}
			if r := atomic.LoadInt64(&body.read); r > 64<<20 {
				t.Fatalf("the client could send %d MB before the server stopped it", r>>20)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("refused after %v", d)
			}
			left, _ := os.ReadDir(tmp)
			if len(left) > 0 {
				t.Fatalf("the upload left %d files in the temporary directory: %v", len(left), left[0].Name())
			}
		})
	}

	var out map[string]string
	big := `{"id": "j", "accounts": "` + strings.Repeat("a", 17<<20) + `"}`
	if code := b.call("POST", "/api/jobs", strings.NewReader(big), &out, func(r *http.Request) { r.ContentLength = -1 }); code != http.StatusRequestEntityTooLarge ||
		!strings.Contains(out["error"], "larger than 16 MB") {
		t.Fatalf("17 MB job: %d %v", code, out)
	}
	mid := `{"source": "` + strings.Repeat("a", 2<<20) + `"}`
	if code := b.call("POST", "/api/check", strings.NewReader(mid), &out); code != http.StatusRequestEntityTooLarge || !strings.Contains(out["error"], "larger than 1 MB") {
		t.Fatalf("2 MB check: %d %v", code, out)
	}
	// A CSV of 2 MB is welcome where accounts are added.
	b.memberJob("acme", "alice")
	var csv strings.Builder
	for i := 0; csv.Len() < 2<<20; i++ {
		fmt.Fprintf(&csv, "member%06d@old.test,member%06d@new.test\n", i, i)
	}
	var added map[string]int
	if code := b.callJSON("POST", "/api/jobs/acme/accounts", map[string]string{"accounts": csv.String()}, &added); code != 200 || added["added"] < 30000 {
		t.Fatalf("2 MB CSV: %d %v", code, added)
	}
	c := b.visitor("127.0.0.1")
	c.do("GET", "/admin/login", nil)
	if code, body := c.do("POST", "/admin/login", url.Values{"user": {"admin"}, "password": {strings.Repeat("p", 2<<20)}}); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MB sign-in form: %d %s", code, body)
	}
}

// closedWithin reads from conn until it is closed and says how long that
// took, failing past limit.
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration, trickle func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, conn)
	}()
	for {
		select {
		case <-done:
			return time.Since(start)
		case <-time.After(200 * time.Millisecond):
			if time.Since(start) > limit {
				conn.Close()
				t.Fatalf("the connection is still open after %v", limit)
			}
			if trickle != nil {
				trickle()
			}
		}
	}
}

// TestSlowAndIdleClientsCut: with the server's timeouts (short here, set
// in its config), a body sent at a few bytes a second, headers that never
// end and an idle keep-alive connection are each closed within them.
func TestSlowAndIdleClientsCut(t *testing.T) {
	b := newBare(t, web.Config{ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, IdleTimeout: time.Second})
	addr := b.http.Listener.Addr().String()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	slow := dial()
	fmt.Fprintf(slow, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n")
	d := closedWithin(t, slow, 5*time.Second, func() { slow.Write([]byte("a")) })
	t.Logf("a body at 5 bytes a second was cut after %v", d)

	headers := dial()
	fmt.Fprintf(headers, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	d = closedWithin(t, headers, 5*time.Second, nil)
	t.Logf("headers that never end were cut after %v", d)

	idle := dial()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	d = closedWithin(t, idle, 5*time.Second, nil)
	t.Logf("an idle keep-alive connection was cut after %v", d)

	// The defaults are those a person would pick.
	def := newBare(t, web.Config{}).srv.HTTPServer()
	if def.ReadHeaderTimeout != web.DefaultReadHeaderTimeout || def.ReadTimeout != web.DefaultReadTimeout || def.IdleTimeout != web.DefaultIdleTimeout ||
		def.WriteTimeout != web.DefaultWriteTimeout || def.ReadTimeout <= 0 || def.ReadTimeout > time.Minute || def.IdleTimeout > time.Minute {
		t.Fatalf("default timeouts: %+v", def)
	}
}

// TestInviteLinksIgnoreHost: the invitation link comes from --public-url
// (https kept as given) or a loopback listen address, never from the
// request's Host header; without either, inviting is refused with what to
// do. Members invited before are invited again only when asked, and only
// those who have not started.
func TestInviteLinksIgnoreHost(t *testing.T) {
	evil := func(r *http.Request) { r.Host = "evil.example" }

	pub := newBare(t, web.Config{PublicURL: "https://move.example.com/portal"})
	pub.memberJob("acme", "alice", "bob")
	var out map[string]any
	if code := pub.callJSON("POST", "/api/jobs/acme/invite", nil, &out, evil); code != 200 || out["invited"] != 2.0 {
		t.Fatalf("invite: %d %v", code, out)
	}
	for _, m := range pub.inv.take() {
		if !strings.HasSuffix(m, " https://move.example.com/portal/") {
			t.Fatalf("invitation link: %s", m)
		}
	}
	// Once, unless asked again.
	if code := pub.callJSON("POST", "/api/jobs/acme/invite", nil, &out); code != 200 || out["invited"] != 0.0 {
		t.Fatalf("second invite: %d %v", code, out)
	}
	// Bob starts his move: he is not invited again.
	a, err := pub.store.Account("acme", "bob@old.test")
	if err != nil {
		t.Fatal(err)
	}
	a.SourceSecret, _ = pub.store.Seal("bobs-old-pw")
	if err := pub.store.PutAccounts("acme", a); err != nil {
		t.Fatal(err)
	}
	if code := pub.callJSON("POST", "/api/jobs/acme/invite?again=1", nil, &out); code != 200 || out["invited"] != 1.0 {
		t.Fatalf("invite again: %d %v", code, out)
	}
	if got := pub.inv.take(); len(got) != 1 || !strings.HasPrefix(got[0], "alice@new.test ") {
		t.Fatalf("invited again: %v", got)
	}
	if code := pub.callJSON("POST", "/api/jobs/acme/invite?again=1&account=bob@old.test", nil, &out); code != http.StatusConflict ||
		!strings.Contains(fmt.Sprint(out["error"]), "has started") {
		t.Fatalf("invite a started member again: %d %v", code, out)
	}
	if code := pub.callJSON("POST", "/api/jobs/acme/invite?again=1&account=alice@old.test", nil, &out); code != 200 || out["invited"] != 1.0 {
		t.Fatalf("invite alice again: %d %v", code, out)
	}
	pub.inv.take()
	if !pub.hasEvent("job.invited", "API token api invited again 1 members") {
		t.Fatalf("no event for the second invitation: %v", pub.events())
	}
	// The dashboard's form does the same.
	c := pub.visitor("127.0.0.1")
	c.do("GET", "/admin/login", nil)
	c.do("POST", "/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}})
	c.do("GET", "/admin/jobs/acme", nil)
	if code, _ := c.do("POST", "/admin/jobs/acme/invite", url.Values{"again": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("dashboard invite again: %d", code)
	}
	if got := pub.inv.take(); len(got) != 1 {
		t.Fatalf("dashboard invited again: %v", got)
	}

	loop := newBare(t, web.Config{Listen: "-"})
	loop.memberJob("acme", "alice")
	if code := loop.callJSON("POST", "/api/jobs/acme/invite", nil, &out, evil); code != 200 {
		t.Fatalf("invite on loopback: %d %v", code, out)
	}
	if got := loop.inv.take(); len(got) != 1 || !strings.HasSuffix(got[0], " http://"+loop.http.Listener.Addr().String()+"/") {
		t.Fatalf("loopback invitation: %v", got)
	}

	open := newBare(t, web.Config{Listen: "0.0.0.0:8443"})
	open.memberJob("acme", "alice")
	if code := open.callJSON("POST", "/api/jobs/acme/invite", nil, &out, evil); code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "--public-url") {
		t.Fatalf("invite with no public URL: %d %v", code, out)
	}
	if got := open.inv.take(); len(got) != 0 {
		t.Fatalf("invited with no public URL: %v", got)
	}
	if code := open.callJSON("POST", "/api/jobs", map[string]any{"id": "inv", "mode": "member", "domain": "old.test", "new_domain": "new.test",
		"source": "imap+plain://127.0.0.1:1", "target": "imap+plain://127.0.0.1:2", "accounts": "a@old.test,a@new.test\n", "invite": true}, &out); code != 400 ||
		!strings.Contains(fmt.Sprint(out["error"]), "--public-url") {
		t.Fatalf("a job with invite and no public URL: %d %v", code, out)
	}
	if code := open.call("GET", "/api/jobs/inv", nil, nil); code != http.StatusNotFound {
		t.Fatalf("the job refused for its invitation stayed behind: %d", code)
	}
	if _, err := web.New(web.Config{Manager: migrate.NewManager(context.Background(), open.store, migrate.Config{}), AdminToken: "x",
		Login: func(context.Context, mail.Endpoint) error { return nil }, PublicURL: "javascript:alert(1)"}); err == nil {
		t.Fatal("a public URL that is no http(s) address was taken")
	}
}

// TestSpreadGuessingNoLockout: wrong passwords for the admin and for a
// member spread over many client addresses do not lock the real admin or
// member out: past the all-clients limit each attempt waits a bounded
// time, the right password still works, and the event log tells the
// admin. One client's own failures still lock that client out.
func TestSpreadGuessingNoLockout(t *testing.T) {
	const maxDelay = 400 * time.Millisecond
	b := newBare(t, web.Config{MaxFailures: 2, MaxSpreadDelay: maxDelay}) // all-clients limit: 20
	b.memberJob("acme", "alice")
	for i := 0; i < 26; i++ {
		g := b.visitor(fmt.Sprintf("127.0.1.%d", i+1))
		g.do("GET", "/admin/login", nil)
		if code, _ := g.do("POST", "/admin/login", url.Values{"user": {"admin"}, "password": {fmt.Sprintf("guess-%d", i)}}); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
		g.do("GET", "/", nil)
		if code, _ := g.do("POST", "/login", url.Values{"address": {"alice@new.test"}, "password": {fmt.Sprintf("guess-%d", i)}}); code != http.StatusUnauthorized {
			t.Fatalf("member guess %d: %d", i, code)
		}
	}
	admin := b.visitor("127.0.2.1")
	admin.do("GET", "/admin/login", nil)
	start := time.Now()
	if code, body := admin.do("POST", "/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != http.StatusSeeOther {
		t.Fatalf("the real admin after spread-out guessing: %d\n%s", code, body)
	}
	if d := time.Since(start); d > maxDelay+2*time.Second {
		t.Fatalf("the real admin waited %v, more than the bound %v", d, maxDelay)
	} else {
		t.Logf("the real admin waited %v", d)
	}
	member := b.visitor("127.0.2.2")
	member.do("GET", "/", nil)
	if code, body := member.do("POST", "/login", url.Values{"address": {"alice@new.test"}, "password": {rightPW}}); code != http.StatusSeeOther {
		t.Fatalf("the real member after spread-out guessing: %d\n%s", code, body)
	}
	if !b.hasEvent("warning", `dashboard sign-in as "admin": 20 failed attempts`) || !b.hasEvent("warning", "portal sign-in of alice@new.test: 20 failed attempts") {
		t.Fatalf("no notice of spread-out guessing in the event log: %v", b.events())
	}
	if zh, coded := b.eventIn("warning", `dashboard sign-in as "admin": 20 failed attempts`, "zh"); !coded || !strings.Contains(zh, `以 "admin" 登录管理后台: `) || !strings.Contains(zh, "次失败尝试") {
		t.Fatalf("spread-out guessing in Chinese: %q", zh)
	}
	if zh, coded := b.eventIn("warning", "portal sign-in of alice@new.test: 20 failed attempts", "zh"); !coded || !strings.Contains(zh, "alice@new.test 登录自助页面: ") || !strings.Contains(zh, "不锁定") {
		t.Fatalf("spread-out guessing on the portal in Chinese: %q", zh)
	}
	// One client's own failures still lock it out, and that is an event.
	g := b.visitor("127.0.3.1")
	g.do("GET", "/admin/login", nil)
	for i := 0; i < 2; i++ {
		g.do("POST", "/admin/login", url.Values{"user": {"admin"}, "password": {"wrong"}})
	}
	if code, _ := g.do("POST", "/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != http.StatusTooManyRequests {
		t.Fatalf("one client's repeated failures: %d, want 429", code)
	}
	if !b.hasEvent("warning", `dashboard sign-in as "admin" from 127.0.3.1 locked for 15 minutes`) {
		t.Fatalf("an admin lockout is not in the event log: %v", b.events())
	}
	// A name that is no admin's may be a password typed into the wrong
	// field: the event log does not repeat it.
	pw := b.visitor("127.0.3.3")
	pw.do("GET", "/admin/login", nil)
	for i := 0; i < 2; i++ {
		pw.do("POST", "/admin/login", url.Values{"user": {"Hunter2-typed-here"}, "password": {"x"}})
	}
	if !b.hasEvent("warning", "dashboard sign-in as a name that is no admin's from 127.0.3.3 locked") {
		t.Fatalf("the lockout of an unknown name is not in the event log: %v", b.events())
	}
	if strings.Contains(fmt.Sprint(b.events()), "Hunter2") {
		t.Fatal("the event log repeats a name that is no admin's")
	}
	// Wrong API tokens too.
	tg := b.visitor("127.0.3.2")
	for i := 0; i < 8; i++ {
		req, _ := http.NewRequest("GET", b.http.URL+"/api/jobs", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		if resp, err := tg.c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	if !b.hasEvent("warning", "the API token from 127.0.3.2 locked") {
		t.Fatalf("an API token lockout is not in the event log: %v", b.events())
	}
}

// TestEnrollProbeCounted: a signed-in member who asks to move old
// addresses another member moves is counted like a wrong password: after
// the limit the answer is the lockout, whether the address is enrolled or
// not, and each probe is in the event log.
func TestEnrollProbeCounted(t *testing.T) {
	b := newBare(t, web.Config{MaxFailures: 3})
	b.memberJob("acme", "alice")
	a, err := b.store.Account("acme", "alice@old.test")
	if err != nil {
		t.Fatal(err)
	}
	a.SourceSecret, _ = b.store.Seal("alices-old-pw")
	if err := b.store.PutAccounts("acme", a); err != nil {
		t.Fatal(err)
	}
	m := b.visitor("127.0.4.1")
	m.do("GET", "/", nil)
	// A member of the new domain not listed yet: the job takes them.
	if code, body := m.do("POST", "/login", url.Values{"address": {"mallory@new.test"}, "password": {rightPW}}); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", code, body)
	}
	m.do("GET", "/me", nil)
	for i := 0; i < 3; i++ {
		code, _ := m.do("POST", "/me/start", url.Values{"old": {"alice@old.test"}, "password": {"x"}})
		if code != http.StatusConflict && code != http.StatusTooManyRequests {
			t.Fatalf("probe %d: %d, want 409 (another member moves it) or the lockout", i, code)
		}
	}
	for _, old := range []string{"alice@old.test", "nobody@old.test"} {
		if code, _ := m.do("POST", "/me/start", url.Values{"old": {old}, "password": {"x"}}); code != http.StatusTooManyRequests {
			t.Fatalf("after the limit, %s: %d, want the lockout", old, code)
		}
	}
	if !b.hasEvent("warning", "which another member moves; counted as a failed attempt") {
		t.Fatalf("the probes are not in the event log: %v", b.events())
	}
}

// TestAPIValidation: each bad input of a new job is refused with a clear
// error and leaves no job behind; the bounds themselves are taken.
func TestAPIValidation(t *testing.T) {
	b := newBare(t, web.Config{})
	base := func(id string, edit func(map[string]any)) map[string]any {
		j := map[string]any{"id": id, "mode": "member", "domain": "old.test", "new_domain": "new.test",
			"source": "imap+plain://127.0.0.1:1", "target": "imap+plain://127.0.0.1:2"}
		if edit != nil {
			edit(j)
		}
		return j
	}
	for _, c := range []struct {
		name   string
		edit   func(map[string]any)
		status int
		want   string
	}{
		{"enroll days overflow", func(j map[string]any) { j["enroll_days"] = 99999999 }, 400, "enrollment window 99999999 days: want 0"},
		{"enroll days negative", func(j map[string]any) { j["enroll_days"] = -1 }, 400, "enrollment window -1 days"},
		{"enroll days bound", func(j map[string]any) { j["enroll_days"] = migrate.MaxEnrollDays }, 201, ""},
		{"max size overflow", func(j map[string]any) { j["max_size_mb"] = int64(1) << 50 }, 400, "largest message: more than 10240 MB"},
		{"max size wraps to negative", func(j map[string]any) { j["max_size_mb"] = int64(1) << 44 }, 400, "largest message"},
		{"max size negative", func(j map[string]any) { j["max_size_mb"] = -1 }, 400, "want 0 (no limit)"},
		{"max size bound", func(j map[string]any) { j["max_size_mb"] = migrate.MaxMessageSizeMB }, 201, ""},
		{"domain with markup", func(j map[string]any) { j["domain"] = "<script>x</script>" }, 400, `old domain "<script>x</script>"`},
		{"new domain empty label", func(j map[string]any) { j["new_domain"] = "new..test" }, 400, "new domain"},
		{"domain with space", func(j map[string]any) { j["domain"] = "old test" }, 400, "old domain"},
		{"domain in Chinese", func(j map[string]any) { j["domain"] = "旧公司.中国" }, 201, ""},
		{"job name", func(j map[string]any) { j["id"] = "has space" }, 400, "job name"},
		{"unknown field", func(j map[string]any) { j["enroll_dayz"] = 3 }, 400, "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := strings.NewReplacer(" ", "-").Replace(c.name)
			req := base(id, c.edit)
			var out map[string]any
			code := b.callJSON("POST", "/api/jobs", req, &out)
			if code != c.status || (c.want != "" && !strings.Contains(fmt.Sprint(out["error"]), c.want)) {
				t.Fatalf("%d %v, want %d %q", code, out, c.status, c.want)
			}
			if c.status != 201 {
				if code := b.call("GET", "/api/jobs/"+url.PathEscape(fmt.Sprint(req["id"])), nil, nil); code != http.StatusNotFound {
					t.Fatalf("a refused job stayed behind: %d", code)
				}
			}
		})
	}
	var out map[string]any
	if code := b.call("GET", "/api/jobs/enroll-days-bound/accounts?state=bogus", nil, &out); code != 400 || !strings.Contains(fmt.Sprint(out["error"]), `state "bogus": want one of`) {
		t.Fatalf("unknown state filter: %d %v", code, out)
	}
	var list []any
	for _, st := range []string{"", "all", "in_progress", "failed", "not_started"} {
		if code := b.call("GET", "/api/jobs/enroll-days-bound/accounts?state="+st, nil, &list); code != 200 {
			t.Fatalf("state filter %q: %d", st, code)
		}
	}
	if code := b.call("POST", "/api/jobs", strings.NewReader(""), &out); code != 400 || !strings.Contains(fmt.Sprint(out["error"]), "empty") {
		t.Fatalf("empty body: %d %v", code, out)
	}
}
