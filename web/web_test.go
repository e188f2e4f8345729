package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sources"
	_ "github.com/banjia-mail/banjia/sources/imapsource"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

const (
	adminPW    = "admin-pw-Zq81"
	adminToken = "token-Xy7-secret-4411"
)

// site is a running `banjia serve` over a source and a target Dovecot.
type site struct {
	t    *testing.T
	w    *migratetest.World
	m    *migrate.Manager
	srv  *web.Server
	http *httptest.Server
	logs *syncBuffer
	seen *syncBuffer // every response body, for the secrets check
	// secrets are more passwords the secrets check looks for.
	secrets []string
	cancel  context.CancelFunc
}

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

type siteOptions struct {
	accounts, messages int
	bad                int               // index of an account whose CSV old password is wrong, plus one (0: none)
	sourceAdmin        string            // a Dovecot master user on the source, password sourceAdminPW
	admins             map[string]string // named dashboard admins: name -> bcrypt hash
	viewers            map[string]string // dashboard viewers: name -> bcrypt hash
	proxies            []netip.Prefix    // trusted reverse proxies
	sourceConfig       string            // more source Dovecot configuration
	notifier           web.Notifier
	engine             migrate.Config
	target             string // "cyrus" or "courier": the new server is that instead of Dovecot
}

// targetConfig is the target Dovecot's configuration; other targets have
// their own.
func targetConfig(target string) string {
	if target == "" {
		return penaltyOff
	}
	return ""
}

func newSite(t *testing.T, o siteOptions) *site {
	t.Helper()
	w := migratetest.New(t, migratetest.Options{Accounts: o.accounts, Messages: o.messages, BadPassword: o.bad - 1, NoStore: true,
		SourceAdmin: o.sourceAdmin, SourceAdminPW: sourceAdminPW,
		// Dovecot delays failed logins, more for each from the same address (up
		// to 15 s): the lockout tests fail logins on purpose.
		SourceConfig: penaltyOff + o.sourceConfig, TargetConfig: targetConfig(o.target), Target: o.target})
	w.Open()
	s := &site{t: t, w: w, logs: &syncBuffer{}, seen: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cfg := o.engine
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) { return imapsink.Open(ctx, e) }
	cfg.Log = log
	cfg.RetryBase = 50 * time.Millisecond
	cfg.OnEvent = func(e *state.Event) {
		if s.srv != nil {
			s.srv.HandleEvent(e)
		}
	}
	s.m = migrate.NewManager(ctx, w.Store, cfg)
	// Listening before the server is made: invitation links name this
	// loopback address.
	s.http = httptest.NewUnstartedServer(nil)
	srv, err := web.New(web.Config{Listen: s.http.Listener.Addr().String(), Manager: s.m, AdminUser: "admin", AdminPassword: adminPW, AdminToken: adminToken, Admins: o.admins, Viewers: o.viewers, TrustedProxies: o.proxies,
		Login: func(ctx context.Context, e mail.Endpoint) error {
			src, err := sources.Open(ctx, e)
			if err != nil {
				return err
			}
			return src.Close()
		},
		Notifier: o.notifier, Lang: "en", MaxFailures: 3, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = srv
	s.http.Config.Handler = srv.Handler()
	s.http.Start()
	t.Cleanup(func() {
		s.http.Close()
		s.m.Stop()
		cancel()
		w.Store.Close()
	})
	return s
}

// client is one browser-like user: cookies, and the CSRF token of the last
// page seen.
type client struct {
	s    *site
	c    *http.Client
	lang string
	csrf string
	// forwardedFor is sent as X-Forwarded-For, as a reverse proxy would.
	forwardedFor string
}

func (s *site) client(lang string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{s: s, c: &http.Client{Jar: jar, Timeout: time.Minute}, lang: lang}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) do(req *http.Request) (int, string) {
	c.s.t.Helper()
	if c.lang != "" {
		req.Header.Set("Accept-Language", c.lang)
	}
	if c.forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", c.forwardedFor)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.s.seen.Write(b)
	if m := csrfRe.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

func (c *client) get(path string) (int, string) {
	req, _ := http.NewRequest("GET", c.s.http.URL+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) (int, string) {
	if form.Get("csrf") == "" {
		form.Set("csrf", c.csrf)
	}
	req, _ := http.NewRequest("POST", c.s.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// api calls the JSON API with the admin token.
func (s *site) api(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.http.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s.seen.Write(b)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func (s *site) endpointURL(addr string) string { return "imap+plain://" + addr }

// memberJob creates a member-triggered job over the site's servers.
func (s *site) memberJob(id string) {
	s.t.Helper()
	var out map[string]any
	code := s.api("POST", "/api/jobs", map[string]any{"id": id, "mode": "member", "domain": "old.test", "new_domain": "new.test",
		"source": s.endpointURL(s.w.Src.IMAPAddr), "target": s.endpointURL(s.w.Dst.IMAPAddr), "start": true}, &out)
	if code != http.StatusCreated {
		s.t.Fatalf("create job: %d %v", code, out)
	}
}

type apiAccount struct {
	ID, Target, State, Summary, Reason string
	StateText                          string `json:"state_text"`
	Counts                             state.Counts
}

func (s *site) accounts(job string) map[string]apiAccount {
	var list []apiAccount
	if code := s.api("GET", "/api/jobs/"+job+"/accounts", nil, &list); code != 200 {
		s.t.Fatalf("accounts: %d", code)
	}
	out := map[string]apiAccount{}
	for _, a := range list {
		out[a.ID] = a
	}
	return out
}

func (s *site) waitAccount(job, id, want string, timeout time.Duration) apiAccount {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var a apiAccount
	for time.Now().Before(deadline) {
		a = s.accounts(job)[id]
		if a.State == want {
			return a
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("account %s: state %q, want %q (%s)", id, a.State, want, a.Reason)
	return a
}

// signIn signs a member in with the new mailbox's password.
func (c *client) signIn(u migratetest.User) {
	c.s.t.Helper()
	c.get("/")
	code, body := c.post("/login", url.Values{"address": {u.New}, "password": {u.NewPW}})
	if code != 200 || !strings.Contains(body, "start-form") {
		c.s.t.Fatalf("sign in %s: %d %s", u.New, code, body)
	}
}

func TestMemberPortal(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 3, messages: 40})
	before := s.w.Sources()
	s.memberJob("acme")
	u0, u1, u2 := s.w.Users[0], s.w.Users[1], s.w.Users[2]

	// A wrong NEW password: the target refuses, nothing else happens.
	c := s.client("en-US,en;q=0.9")
	c.get("/")
	code, body := c.post("/login", url.Values{"address": {u0.New}, "password": {"not-it"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "The new mail server did not accept this address and password") {
		t.Fatalf("wrong new password: %d %s", code, body)
	}
	// An address no job knows.
	code, body = c.post("/login", url.Values{"address": {"x@elsewhere.test"}, "password": {"pw"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "x@elsewhere.test is not part of any mailbox move") {
		t.Fatalf("stranger: %d %s", code, body)
	}
	// A form without its CSRF token is refused.
	code, _ = c.post("/login", url.Values{"csrf": {"forged"}, "address": {u0.New}, "password": {u0.NewPW}})
	if code != http.StatusForbidden {
		t.Fatalf("forged CSRF: %d", code)
	}

	c.signIn(u0)
	_, body = c.get("/me")
	if !strings.Contains(body, `value="`+u0.Old+`"`) {
		t.Fatalf("the form should suggest the old address %s: %s", u0.Old, body)
	}
	// A wrong OLD password: a clear message, nothing started.
	code, body = c.post("/me/start", url.Values{"old": {u0.Old}, "password": {"wrong-old"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "The old mailbox did not accept this password, so nothing was started") {
		t.Fatalf("wrong old password: %d %s", code, body)
	}
	if _, ok := s.accounts("acme")[u0.Old]; ok {
		t.Fatal("a wrong old password created an account")
	}
	// The same in Chinese.
	zh := s.client("zh-CN,zh;q=0.9")
	zh.signIn(u1)
	code, body = zh.post("/me/start", url.Values{"old": {u1.Old}, "password": {"wrong-old"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "旧邮箱没有接受这个密码, 搬家没有启动") {
		t.Fatalf("wrong old password (zh): %d %s", code, body)
	}
	// Repeated wrong passwords lock the member out, even with the right one.
	for i := 0; i < 2; i++ {
		code, body = zh.post("/me/start", url.Values{"old": {u1.Old}, "password": {fmt.Sprintf("wrong-%d", i)}})
	}
	code, body = zh.post("/me/start", url.Values{"old": {u1.Old}, "password": {u1.OldPW}})
	if code != http.StatusTooManyRequests || !strings.Contains(body, "失败次数过多") {
		t.Fatalf("after 3 wrong passwords: %d %s", code, body)
	}
	if _, ok := s.accounts("acme")[u1.Old]; ok {
		t.Fatal("a locked-out member started a move")
	}

	// The right old password starts the move; the member watches it.
	code, body = c.post("/me/start", url.Values{"old": {u0.Old}, "password": {u0.OldPW}})
	if code != 200 || !strings.Contains(body, "Your move has started") {
		t.Fatalf("start: %d %s", code, body)
	}
	a := s.waitAccount("acme", u0.Old, "succeeded", 2*time.Minute)
	want := len(flatten(s.w.Sources()[u0.Old]))
	if a.Counts.Imported != int64(want) || a.Counts.Failed != 0 || a.Summary != fmt.Sprintf("%d to import, %d imported, 0 failed", want, want) {
		t.Fatalf("counts: %+v (source has %d)", a, want)
	}
	migratetest.SameMail(t, u0.Old, s.w.Sources()[u0.Old], s.w.Target(u0))
	var me map[string]any
	req, _ := http.NewRequest("GET", s.http.URL+"/api/me", nil)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if acct, _ := me["account"].(map[string]any); acct["state"] != "succeeded" {
		t.Fatalf("/api/me: %v", me)
	}
	_, body = c.get("/me")
	if !strings.Contains(body, fmt.Sprintf("%d to import, %d imported, 0 failed", want, want)) || !strings.Contains(body, "succeeded") {
		t.Fatalf("member page: %s", body)
	}
	// The member's passwords stay sealed for the syncs after the MX
	// switch, until the job is closed or their retention runs out.
	acct, err := s.w.Store.Account("acme", u0.Old)
	if err != nil || len(acct.SourceSecret) == 0 || len(acct.TargetSecret) == 0 || acct.SecretsUntil.IsZero() {
		t.Fatalf("passwords not kept for the syncs: %v %d %d %v", err, len(acct.SourceSecret), len(acct.TargetSecret), acct.SecretsUntil)
	}
	// u2 never came: the job still waits for members, running.
	var job map[string]any
	s.api("GET", "/api/jobs/acme", nil, &job)
	if job["state"] != "running" {
		t.Fatalf("a member job with its window open should keep running: %v", job)
	}
	_ = u2

	// Sign-ins and password checks against the old server changed nothing there.
	migratetest.Unchanged(t, before, s.w.Sources())

	// The audit log says who did what.
	var evs []state.Event
	s.api("GET", "/api/jobs/acme/events", nil, &evs)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind+": "+e.Message)
	}
	all := strings.Join(kinds, "\n")
	for _, want := range []string{"job.created: job acme created by API token api", "account.enrolled: " + u0.New + " typed the old password for " + u0.Old,
		"warning: portal: " + u1.New + " typed an old password for " + u1.Old + " that the old server refused; nothing started",
		"account.succeeded: " + u0.Old + " succeeded"} {
		if !strings.Contains(all, want) {
			t.Errorf("event log lacks %q:\n%s", want, all)
		}
	}
	s.noSecrets()
}

func flatten(m migratetest.Mailbox) []any {
	var out []any
	for _, msgs := range m {
		for _, x := range msgs {
			out = append(out, x)
		}
	}
	return out
}

// noSecrets greps every page and API answer, the logs and the state file
// for every password and token the test used.
func (s *site) noSecrets() {
	s.t.Helper()
	file, err := os.ReadFile(s.w.Path)
	if err != nil {
		s.t.Fatal(err)
	}
	secrets := append([]string{adminPW, adminToken, "wrong-old", "not-it"}, s.secrets...)
	for _, u := range s.w.Users {
		secrets = append(secrets, u.OldPW, u.NewPW, u.SourcePW)
	}
	where := map[string]string{"pages and API": s.seen.String(), "logs": s.logs.String(), "state file": string(file)}
	for _, sec := range secrets {
		for name, text := range where {
			if strings.Contains(text, sec) {
				s.t.Errorf("secret %q found in the %s", sec, name)
			}
		}
	}
}

func TestAdminControlsAndAPI(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 4, messages: 300, engine: migrate.Config{Accounts: 2, Lanes: 1}})
	csv := s.w.CSV()
	var out map[string]any
	code := s.api("POST", "/api/jobs", map[string]any{"id": "big", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": csv, "start": true}, &out)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	// Bad input gets a clear error.
	code = s.api("POST", "/api/jobs", map[string]any{"id": "bad", "mode": "passwords", "source": "ftp://x", "target": "imap://y"}, &out)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "old server") {
		t.Fatalf("bad source: %d %v", code, out)
	}
	if code = s.api("GET", "/api/jobs/bad", nil, &out); code != http.StatusNotFound {
		t.Fatalf("a refused job was stored: %d", code)
	}
	// Inviting needs mail, and a member-triggered job.
	code = s.api("POST", "/api/jobs/big/invite", nil, &out)
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "start banjia serve with --smtp to invite members") {
		t.Fatalf("invite without mail: %d %v", code, out)
	}
	// Without the token: refused.
	resp, err := http.Get(s.http.URL + "/api/jobs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API without token: %d", resp.StatusCode)
	}

	// Pause from the dashboard while copying: it reaches the job at once.
	admin := s.client("en")
	admin.get("/admin/login")
	code, body := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}})
	if code != 200 || !strings.Contains(body, `id="job-big"`) {
		t.Fatalf("admin sign-in: %d %s", code, body)
	}
	waitFor(t, "copying", time.Minute, func() bool {
		var j map[string]any
		s.api("GET", "/api/jobs/big", nil, &j)
		c, _ := j["counts"].(map[string]any)
		imported, _ := c["Imported"].(float64)
		return imported > 50
	})
	t0 := time.Now()
	code, body = admin.post("/admin/jobs/big/pause", url.Values{})
	if code != 200 {
		t.Fatalf("pause: %d", code)
	}
	j := s.jobState("big")
	if j != "paused" {
		t.Fatalf("right after the pause button the job is %q", j)
	}
	took := time.Since(t0)
	if took > time.Second {
		t.Fatalf("pause took %v to reach the job", took)
	}
	t.Logf("pause reached the job in %v", took)
	// Copying stops at message boundaries: the count settles.
	time.Sleep(1500 * time.Millisecond)
	before := s.imported("big")
	time.Sleep(1500 * time.Millisecond)
	if after := s.imported("big"); after != before {
		t.Fatalf("still copying while paused: %d -> %d", before, after)
	}
	if !strings.Contains(body, "paused") {
		t.Fatalf("the job page after pause: %s", body)
	}
	// Resume from the API (the dashboard's own session, with its CSRF header).
	t0 = time.Now()
	req, _ := http.NewRequest("POST", s.http.URL+"/api/jobs/big/resume", nil)
	req.Header.Set("X-CSRF-Token", admin.csrf)
	if code, _ := admin.do(req); code != 200 {
		t.Fatalf("resume: %d", code)
	}
	if st := s.jobState("big"); st != "running" || time.Since(t0) > time.Second {
		t.Fatalf("resume: %s after %v", st, time.Since(t0))
	}
	waitFor(t, "more copying", time.Minute, func() bool { return s.imported("big") > before })
	// End: running accounts stop, the rest are abandoned.
	// End asks first: the button's POST shows a confirmation, the job runs on.
	code, body = admin.post("/admin/jobs/big/end", url.Values{})
	if code != 200 || !strings.Contains(body, `id="end-confirm"`) || s.jobState("big") != "running" {
		t.Fatalf("end without confirmation: %d, job %s", code, s.jobState("big"))
	}
	code, body = admin.post("/admin/jobs/big/end", url.Values{"confirm": {"1"}})
	waitFor(t, "ended", 30*time.Second, func() bool { return s.jobState("big") == "ended" })
	accts := s.accounts("big")
	n := map[string]int{}
	for _, a := range accts {
		n[a.State]++
	}
	if n["abandoned"] == 0 || n["abandoned"]+n["succeeded"] != 4 {
		t.Fatalf("after end: %v", n)
	}
	// The dashboard's table and the event log say what happened and who did it.
	_, body = admin.get("/admin")
	if !strings.Contains(body, "ended") {
		t.Fatalf("dashboard: %s", body)
	}
	var evs []state.Event
	s.api("GET", "/api/events?job=big", nil, &evs)
	var all []string
	for _, e := range evs {
		all = append(all, e.Kind+": "+e.Message)
	}
	for _, want := range []string{"admin.pause: the admin (dashboard) asked to pause job big", "job.paused", "admin.resume", "job.resumed", "admin.end", "job.ended"} {
		if !strings.Contains(strings.Join(all, "\n"), want) {
			t.Errorf("event log lacks %q", want)
		}
	}
	// The dashboard's add form reports what happened; a message in the URL is not shown.
	code, body = admin.post("/admin/jobs/big/accounts", url.Values{"accounts": {"x@old.test,x@new.test,pw-x-1"}})
	if code != 200 || !strings.Contains(body, "job big was ended: create a new job for these accounts") {
		t.Fatalf("adding to an ended job: %d %s", code, body)
	}
	if _, body = admin.get("/admin/jobs/big?error=Call+555-EVIL"); strings.Contains(body, "555-EVIL") {
		t.Fatal("the job page shows a message from its URL")
	}
	// Every dashboard page renders whole, in both languages, with the product's words (R6-R8).
	for _, page := range []struct{ path, en, zh string }{
		{"/admin", "ended", "搬家已结束"},
		{"/admin/jobs/big", "abandoned", "放弃"},
		{"/admin/jobs/big?state=succeeded", "imported", "已成功导入"},
		{"/admin/events", "asked to pause job big", "搬家查询"},
		{"/admin/jobs/new", "Create and start", "启动搬家"},
	} {
		for lang, want := range map[string]string{"en": page.en, "zh-CN": page.zh} {
			admin.lang = lang
			code, body := admin.get(page.path)
			if code != 200 || !strings.Contains(body, want) || !strings.HasSuffix(strings.TrimSpace(body), "</html>") {
				t.Errorf("%s (%s): %d, want %q in a whole page:\n%s", page.path, lang, code, want, body)
			}
		}
	}
	admin.lang = "en"
	// /metrics and /healthz.
	resp, err = http.Get(s.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`banjia_accounts{job="big",state="abandoned"}`, `banjia_messages_copied_total{job="big"}`, `banjia_job_state{job="big",state="ended"} 1`,
		`banjia_events_total{kind="job.paused"} 1`, `banjia_errors_total{class="account"}`, `banjia_throughput_messages_per_second{job="big"}`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	resp, err = http.Get(s.http.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	s.noSecrets()
}

func (s *site) jobState(id string) string {
	var j map[string]any
	s.api("GET", "/api/jobs/"+id, nil, &j)
	st, _ := j["state"].(string)
	return st
}

func (s *site) imported(id string) int64 {
	var j map[string]any
	s.api("GET", "/api/jobs/"+id, nil, &j)
	c, _ := j["counts"].(map[string]any)
	n, _ := c["Imported"].(float64)
	return int64(n)
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// penaltyOff turns off Dovecot's growing delay for failed logins from one
// address (loopback is all of this test's clients).
const penaltyOff = "auth_failure_delay = 0\nservice anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"

// TestMemberFixesFailedAccount: the admin's CSV had a wrong old password; the
// member sees why the move failed, types the right one and the move
// succeeds.
func TestMemberFixesFailedAccount(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 1, messages: 20, bad: 1})
	u := s.w.Users[0]
	var out map[string]any
	if code := s.api("POST", "/api/jobs", map[string]any{"id": "pw", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": s.w.CSV(), "start": true}, &out); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	a := s.waitAccount("pw", u.Old, "failed", time.Minute)
	c := s.client("en")
	c.get("/")
	code, body := c.post("/login", url.Values{"address": {u.New}, "password": {u.NewPW}})
	// The member is told in plain words and may try again; the old server's
	// address and its reply are the admin's (the job page), not theirs.
	if code != 200 || !strings.Contains(body, "Type the old password again to try again") || !strings.Contains(body, "The move stopped before it finished") ||
		strings.Contains(body, s.w.Src.IMAPAddr) || strings.Contains(body, "the server said") {
		t.Fatalf("the member should see a plain reason and a way to retry: %d %s", code, body)
	}
	if !strings.Contains(a.Reason, s.w.Src.IMAPAddr) || !strings.Contains(a.Reason, "the server said") {
		t.Fatalf("the admin's reason lacks the server's words: %s", a.Reason)
	}
	admin := s.client("en")
	admin.get("/admin/login")
	admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}})
	if _, page := admin.get("/admin/jobs/pw"); !strings.Contains(page, s.w.Src.IMAPAddr) || !strings.Contains(page, "the server said") {
		t.Fatalf("the job page lacks the reason %q", a.Reason)
	}
	code, body = c.post("/me/start", url.Values{"password": {u.SourcePW}})
	if code != 200 || !strings.Contains(body, "Your move has started") {
		t.Fatalf("retry: %d %s", code, body)
	}
	a = s.waitAccount("pw", u.Old, "succeeded", time.Minute)
	if a.Counts.Imported != 20 {
		t.Fatalf("after the retry: %+v", a)
	}
	s.noSecrets()
}

// TestStrangerCannotLockOthersOut: wrong passwords typed from one client
// lock that client out, not the admin or the member signing in from
// another (here 127.0.0.2 against 127.0.0.1, both on loopback).
func TestStrangerCannotLockOthersOut(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 1, messages: 5})
	s.memberJob("acme")
	u := s.w.Users[0]
	stranger := s.client("en")
	stranger.c.Transport = &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}

	stranger.get("/admin/login")
	for i := 0; i < 3; i++ {
		if code, _ := stranger.post("/admin/login", url.Values{"user": {"admin"}, "password": {fmt.Sprintf("guess-%d", i)}}); code != http.StatusUnauthorized {
			t.Fatalf("wrong admin password %d: %d", i, code)
		}
	}
	if code, body := stranger.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") {
		t.Fatalf("the stranger is not locked out of the dashboard: %d", code)
	}
	admin := s.client("en")
	admin.get("/admin/login")
	if code, body := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 || !strings.Contains(body, `id="job-acme"`) {
		t.Fatalf("the admin was locked out by a stranger: %d", code)
	}

	stranger.get("/")
	for i := 0; i < 3; i++ {
		stranger.post("/login", url.Values{"address": {u.New}, "password": {fmt.Sprintf("guess-%d", i)}})
	}
	if code, _ := stranger.post("/login", url.Values{"address": {u.New}, "password": {u.NewPW}}); code != http.StatusTooManyRequests {
		t.Fatalf("the stranger is not locked out of %s: %d", u.New, code)
	}
	member := s.client("en")
	member.signIn(u)
}

const sourceAdminPW = "Deleg4ted-admin-pw"

// TestDelegatedJobFromDashboard: the admin creates a delegated job
// (无感搬家) in the dashboard's form with the migration admin's login and
// password and a CSV without old passwords; every mailbox moves exactly,
// and the admin's password is in no page, API answer or log.
func TestDelegatedJobFromDashboard(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 2, messages: 30, sourceAdmin: "migration-admin"})
	before := s.w.Sources()
	admin := s.client("en")
	admin.get("/admin/login")
	if code, _ := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 {
		t.Fatalf("admin sign-in: %d", code)
	}
	code, page := admin.get("/admin/jobs/new")
	if code != 200 || !strings.Contains(page, `href="/admin/jobs/new?mode=delegated"`) || strings.Contains(page, `id="f-source-admin"`) ||
		strings.Contains(page, "old password[, new password]") {
		t.Fatalf("the member-mode form should offer the delegated mode and show neither its fields nor a CSV with passwords: %d", code)
	}
	code, page = admin.get("/admin/jobs/new?mode=delegated")
	if code != 200 || !strings.Contains(page, `value="delegated"`) || !strings.Contains(page, `id="f-source-admin"`) || strings.Contains(page, `id="f-invite"`) {
		t.Fatalf("the delegated form: %d", code)
	}
	var csv strings.Builder
	for _, u := range s.w.Users {
		fmt.Fprintf(&csv, "%s,%s,,%s\n", u.Old, u.New, u.NewPW)
	}
	form := url.Values{"id": {"deleg"}, "mode": {"delegated"}, "source": {s.endpointURL(s.w.Src.IMAPAddr)},
		"target": {s.endpointURL(s.w.Dst.IMAPAddr)}, "period": {"all"}, "accounts": {csv.String()}, "admin_login": {"authzid"}}

	// Without the admin's login, and with a template that names no member:
	// clear refusals, no job.
	code, page = admin.post("/admin/jobs", form)
	if code != http.StatusBadRequest || !strings.Contains(page, "needs the migration admin&#39;s login") {
		t.Fatalf("no admin login: %d %s", code, page)
	}
	form.Set("source_admin", "migration-admin")
	form.Set("source_admin_password", sourceAdminPW)
	form.Set("admin_login", "template")
	form.Set("login_template", "DOMAIN\\admin")
	code, page = admin.post("/admin/jobs", form)
	if code != http.StatusBadRequest || !strings.Contains(page, "names no member") || strings.Contains(page, sourceAdminPW) {
		t.Fatalf("template without the member: %d", code)
	}
	if _, err := s.w.Store.Job("deleg"); err == nil {
		t.Fatal("a refused form created a job")
	}

	form.Set("login_template", "{user}*{admin}")
	code, page = admin.post("/admin/jobs", form)
	if code != 200 || !strings.Contains(page, "deleg") {
		t.Fatalf("create: %d %s", code, page)
	}
	for _, u := range s.w.Users {
		a := s.waitAccount("deleg", u.Old, "succeeded", 2*time.Minute)
		want := len(flatten(before[u.Old]))
		if a.Counts.Imported != int64(want) || a.Counts.Failed != 0 {
			t.Errorf("%s: %+v", u.Old, a.Counts)
		}
		migratetest.SameMail(t, u.Old, before[u.Old], s.w.Target(u))
	}
	migratetest.Unchanged(t, before, s.w.Sources())
	j, err := s.w.Store.Job("deleg")
	if err != nil || j.ModeOf() != state.ModeDelegated || j.Source.User != "migration-admin" || j.Delegation == nil || j.Delegation.Template != "{user}*{admin}" {
		t.Fatalf("stored job: %+v %v", j, err)
	}
	var apiJob map[string]any
	s.api("GET", "/api/jobs/deleg", nil, &apiJob)
	_, detail := admin.get("/admin/jobs/deleg")
	for what, text := range map[string]string{"job page": detail, "API": fmt.Sprint(apiJob), "log": s.logs.String()} {
		if strings.Contains(text, sourceAdminPW) {
			t.Errorf("the migration admin's password is in the %s", what)
		}
	}
}

// TestNamedAdmins: admins from an htpasswd-style list sign in under their
// own names, and the event log says which of them paused and resumed.
func TestNamedAdmins(t *testing.T) {
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	s := newSite(t, siteOptions{accounts: 1, messages: 5, admins: map[string]string{"alice": hash("alice-pw-1"), "bob": hash("bob-pw-2")}})
	code := s.api("POST", "/api/jobs", map[string]any{"id": "named", "mode": "member", "domain": "old.test", "new_domain": "new.test",
		"source": s.endpointURL(s.w.Src.IMAPAddr), "target": s.endpointURL(s.w.Dst.IMAPAddr), "start": true}, nil)
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	signIn := func(user, pw string) (*client, int) {
		c := s.client("en")
		c.get("/admin/login")
		code, _ := c.post("/admin/login", url.Values{"user": {user}, "password": {pw}})
		return c, code
	}
	for _, bad := range [][2]string{{"alice", "bob-pw-2"}, {"carol", "alice-pw-1"}, {"alice", ""}} {
		if _, code := signIn(bad[0], bad[1]); code != http.StatusUnauthorized {
			t.Fatalf("sign-in as %s with a wrong password: %d", bad[0], code)
		}
	}
	alice, code := signIn("alice", "alice-pw-1")
	if code != 200 {
		t.Fatalf("alice: %d", code)
	}
	if code, _ := alice.post("/admin/jobs/named/pause", url.Values{}); code != 200 {
		t.Fatalf("alice pauses: %d", code)
	}
	bob, code := signIn("bob", "bob-pw-2")
	if code != 200 {
		t.Fatalf("bob: %d", code)
	}
	if code, _ := bob.post("/admin/jobs/named/resume", url.Values{}); code != 200 {
		t.Fatalf("bob resumes: %d", code)
	}
	var events []struct{ Kind, Message string }
	if code := s.api("GET", "/api/events?job=named", nil, &events); code != 200 {
		t.Fatalf("events: %d", code)
	}
	var log []string
	for _, e := range events {
		log = append(log, e.Kind+": "+e.Message)
	}
	all := strings.Join(log, "\n")
	if !strings.Contains(all, "admin.pause: admin alice (dashboard) asked to pause job named") ||
		!strings.Contains(all, "admin.resume: admin bob (dashboard) asked to resume job named") {
		t.Fatalf("the event log does not say who:\n%s", all)
	}
	if strings.Contains(all+s.logs.String(), "alice-pw-1") || strings.Contains(all+s.logs.String(), "bob-pw-2") {
		t.Fatal("an admin's password is in the event log or the server log")
	}
}

// TestViewer: a viewer signs in like an admin and sees the jobs, accounts
// and event log, with no button or form that changes anything; every
// change is refused (dashboard and API), and the job stays as it was.
func TestViewer(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("vera-pw-3"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, siteOptions{accounts: 2, messages: 3, viewers: map[string]string{"vera": string(h)}})
	s.secrets = append(s.secrets, "vera-pw-3")
	code := s.api("POST", "/api/jobs", map[string]any{"id": "watched", "mode": "member", "domain": "old.test", "new_domain": "new.test",
		"source": s.endpointURL(s.w.Src.IMAPAddr), "target": s.endpointURL(s.w.Dst.IMAPAddr), "start": true}, nil)
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	v := s.client("en")
	v.get("/admin/login")
	if code, _ := v.post("/admin/login", url.Values{"user": {"vera"}, "password": {"admin-pw-wrong"}}); code != http.StatusUnauthorized {
		t.Fatalf("a viewer with a wrong password: %d", code)
	}
	if code, body := v.post("/admin/login", url.Values{"user": {"vera"}, "password": {"vera-pw-3"}}); code != 200 || !strings.Contains(body, `id="job-watched"`) {
		t.Fatalf("the viewer's dashboard: %d\n%s", code, body)
	}
	for _, path := range []string{"/admin", "/admin/jobs/watched", "/admin/events"} {
		code, body := v.get(path)
		if code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		for _, form := range []string{"/pause\"", "/end\"", "/resume\"", "/start\"", `id="new-job"`, `id="add-form"`, `id="invite-form"`} {
			if strings.Contains(body, form) {
				t.Fatalf("GET %s shows the viewer %s", path, form)
			}
		}
	}
	if code, body := v.get("/admin/jobs/watched"); !strings.Contains(body, "watched") || code != 200 {
		t.Fatalf("job page: %d", code)
	}
	refused := func(what string, code int, body string) {
		t.Helper()
		if code != http.StatusForbidden || !strings.Contains(body, "viewer") {
			t.Fatalf("%s: %d %q, want 403 saying the viewer cannot", what, code, body)
		}
	}
	for _, op := range []string{"pause", "end"} {
		code, body := v.post("/admin/jobs/watched/"+op, url.Values{})
		refused("dashboard "+op, code, body)
	}
	code, body := v.post("/admin/jobs/watched/accounts", url.Values{"accounts": {"x@old.test,x@new.test"}})
	refused("add accounts", code, body)
	code, body = v.post("/admin/jobs/watched/invite", url.Values{})
	refused("invite", code, body)
	code, body = v.get("/admin/jobs/new")
	refused("new job page", code, body)
	code, body = v.post("/admin/jobs", url.Values{"id": {"other"}})
	refused("create a job", code, body)
	apiReq := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, s.http.URL+path, strings.NewReader("{}"))
		req.Header.Set("X-CSRF-Token", v.csrf)
		req.Header.Set("Content-Type", "application/json")
		return v.do(req)
	}
	if code, body := apiReq("GET", "/api/jobs/watched"); code != 200 || !strings.Contains(body, `"watched"`) {
		t.Fatalf("API GET as a viewer: %d %s", code, body)
	}
	code, body = apiReq("POST", "/api/jobs/watched/pause")
	refused("API pause", code, body)

	var job struct{ State string }
	if code := s.api("GET", "/api/jobs/watched", nil, &job); code != 200 || job.State != "running" {
		t.Fatalf("after the viewer's tries the job is %q (%d), want running", job.State, code)
	}
	var events []struct{ Kind, Message string }
	s.api("GET", "/api/events?job=watched", nil, &events)
	for _, e := range events {
		if strings.HasPrefix(e.Kind, "admin.") {
			t.Fatalf("a refused change is in the event log: %s: %s", e.Kind, e.Message)
		}
	}
	s.noSecrets()
}

// TestLockoutBehindAProxy: behind a trusted reverse proxy (here every
// request comes from 127.0.0.1), the lockout tells clients apart by
// X-Forwarded-For, so one guesser does not lock out everyone behind the
// proxy; with no proxy trusted, the header is ignored (anyone could write
// it to dodge the lockout).
func TestLockoutBehindAProxy(t *testing.T) {
	for _, trust := range []bool{true, false} {
		t.Run(fmt.Sprintf("trusted=%v", trust), func(t *testing.T) {
			var proxies []netip.Prefix
			if trust {
				proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			s := newSite(t, siteOptions{accounts: 1, messages: 2, proxies: proxies})
			s.memberJob("acme")
			u := s.w.Users[0]
			guesser := s.client("en")
			guesser.forwardedFor = "203.0.113.9, 127.0.0.1"
			guesser.get("/")
			for i := 0; i < 3; i++ {
				guesser.post("/login", url.Values{"address": {u.New}, "password": {fmt.Sprintf("guess-%d", i)}})
			}
			if code, _ := guesser.post("/login", url.Values{"address": {u.New}, "password": {u.NewPW}}); code != http.StatusTooManyRequests {
				t.Fatalf("the guesser is not locked out: %d", code)
			}
			member := s.client("en")
			member.forwardedFor = "198.51.100.7"
			member.get("/")
			code, _ := member.post("/login", url.Values{"address": {u.New}, "password": {u.NewPW}})
			switch {
			case trust && code != 200:
				t.Fatalf("behind a trusted proxy the member was locked out by another client: %d", code)
			case !trust && code != http.StatusTooManyRequests:
				t.Fatalf("an untrusted X-Forwarded-For dodged the lockout: %d", code)
			}
		})
	}
}
