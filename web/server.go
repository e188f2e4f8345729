// Package web is `banjia serve`: the member portal (sign in with the new
// mailbox, type the old password, watch the move), the admin dashboard (the
// job table (docs/requirements.md R9), job creation, account detail, the event log), the JSON
// API behind both, Prometheus /metrics and /healthz. Pages are rendered on
// the server with html/template; the only script refreshes them live.
package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	netmail "net/mail"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Notifier tells members and admins by email when accounts and jobs finish.
type Notifier interface {
	// Invite asks a member to start their move at the portal; false if
	// the mail could not be queued.
	Invite(job *state.Job, a *state.Account, portal, lang string) bool
	AccountFinished(job *state.Job, a *state.Account, lang string)
	JobFinished(job *state.Job, accts []*state.Account, lang string)
}

// Config is what the server needs.
type Config struct {
	Manager *migrate.Manager
	// Admin credentials: a user and password for the dashboard, and/or a
	// token for the API (Authorization: Bearer) and the dashboard.
	AdminUser, AdminPassword string
	AdminToken               string
	// AdminTokenName names the token in the event log ("" is "api").
	AdminTokenName string
	// Admins are more dashboard admins, each signing in under their own
	// name, which the event log records: name -> bcrypt hash (the lines of
	// an htpasswd -B file).
	Admins map[string]string
	// Viewers sign in to the dashboard the same way (name -> bcrypt hash)
	// but only look: jobs, accounts, the event log and the API's GETs.
	// Starting, pausing, resuming or ending a job, creating one, adding
	// accounts and inviting members are refused. A name is an admin or a
	// viewer, not both.
	Viewers map[string]string
	// Login checks a login against a mail server (the target for members'
	// new passwords, the source for old ones) and returns the server's
	// refusal. It must not change the mailbox.
	Login    func(ctx context.Context, e mail.Endpoint) error
	Notifier Notifier // nil: no mail
	// Directory lists the users of a domain in a Microsoft Graph directory
	// (src's app and tenant, its secret as Password) as accounts old ->
	// same name at newDomain; nil: delegated Graph jobs need a CSV.
	Directory func(ctx context.Context, src mail.Endpoint, domain, newDomain string) ([]migrate.AccountRow, error)
	// PublicURL is the portal's address as members reach it, for the
	// invitation mails. Empty: the listen address when it is a loopback
	// one (a trial on one machine); otherwise invitations are refused. A
	// request's Host header is never used: anyone can write it.
	PublicURL string
	// Listen and TLS are where and how serve listens, for the invitation
	// links when there is no PublicURL.
	Listen string
	TLS    bool
	Lang   string // default language of pages and admin mail
	// SecureCookies marks cookies Secure even on plain HTTP (behind a TLS
	// proxy); over TLS they always are.
	SecureCookies bool
	// TrustedProxies are reverse proxies in front of serve: for requests
	// from them, the lockout takes the client from X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// MaxFailures failed attempts within FailWindow lock one client out of
	// one address (or the dashboard) for LockFor; see lockout for the wider
	// limits.
	MaxFailures int
	FailWindow  time.Duration
	LockFor     time.Duration
	// MaxSpreadDelay bounds the wait the all-clients limit puts on every
	// attempt for a name guessed from many clients (see lockout).
	MaxSpreadDelay time.Duration
	// MaxBody bounds a request's body, MaxUpload that of the requests that
	// carry an accounts CSV (a new job, added accounts). Larger bodies are
	// refused with 413, before they are read when they say their length.
	MaxBody, MaxUpload int64
	// Timeouts of the HTTP server (HTTPServer): for a request's headers,
	// for the whole request with its body, for writing the answer (which
	// includes the handler's time: a connection check takes up to a
	// minute), and for an idle keep-alive connection.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	Log                                                       *slog.Logger
}

// Defaults of the limits a person would pick: a form or JSON body is a few
// kilobytes, a CSV of 100,000 accounts a few megabytes; a person's browser
// sends a request in well under half a minute.
const (
	DefaultMaxBody           = 1 << 20
	DefaultMaxUpload         = 16 << 20
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 30 * time.Second
	DefaultMaxSpreadDelay    = 10 * time.Second
)

// Server serves the portal, the dashboard and the API.
type Server struct {
	cfg     Config
	m       *migrate.Manager
	store   *state.Store
	sess    *sessions
	lock    *lockout
	pages   map[string]*template.Template
	metrics *metrics
	mux     *http.ServeMux
	started time.Time
	// verifies are the last verification of each job (job page, API).
	verifies verifications
	// portalLink is the portal's address in invitation links ("" when
	// none can be trusted).
	portalLink string
}

// New builds a server; it starts nothing until its Handler is served.
func New(cfg Config) (*Server, error) {
	if cfg.Manager == nil || cfg.Login == nil {
		return nil, errors.New("web: Manager and Login are required")
	}
	if cfg.AdminToken == "" && (cfg.AdminUser == "" || cfg.AdminPassword == "") {
		return nil, errors.New("set an admin user and password, or an admin token: the dashboard is not left open")
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 5
	}
	if cfg.FailWindow <= 0 {
		cfg.FailWindow = 15 * time.Minute
	}
	if cfg.LockFor <= 0 {
		cfg.LockFor = 15 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&cfg.ReadTimeout, DefaultReadTimeout},
		{&cfg.WriteTimeout, DefaultWriteTimeout}, {&cfg.IdleTimeout, DefaultIdleTimeout}, {&cfg.MaxSpreadDelay, DefaultMaxSpreadDelay}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.MaxUpload < cfg.MaxBody {
		cfg.MaxUpload = cfg.MaxBody
	}
	portal, err := portalBase(cfg.PublicURL, cfg.Listen, cfg.TLS)
	if err != nil {
		return nil, err
	}
	if portal == "" {
		cfg.Log.Warn("no --public-url and serve does not listen on a loopback address: inviting members is refused until --public-url gives the portal's address as members reach it")
	} else if cfg.PublicURL == "" {
		cfg.Log.Warn("no --public-url: invitation links point to the loopback listen address, which only this machine reaches", "portal", portal)
	}
	s := &Server{cfg: cfg, m: cfg.Manager, store: cfg.Manager.Store(), sess: &sessions{m: map[string]*session{}},
		lock:    newLockout(cfg.MaxFailures, cfg.FailWindow, cfg.LockFor, cfg.MaxSpreadDelay),
		started: time.Now(), verifies: verifications{m: map[string]*verification{}}, portalLink: portal}
	s.lock.spread = s.spreadGuessing
	if err := s.parse(); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s)
	s.routes()
	// banjia job invite, through the control socket, sends from here.
	s.m.SetInviter(s.Invite)
	return s, nil
}

var funcs = template.FuncMap{
	"tr":     tr,
	"counts": func(lang string, c state.Counts) string { return c.Line(lang) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"day":  func(t time.Time) string { return t.Local().Format("2006-01-02") },
	"list": func(v ...string) []string { return v },
	"dict": func(v view, row jobRow, back string) buttons { return buttons{V: v, Row: row, Back: back} },
	// why is an account's reason without the counts line a finished
	// account's reason begins with: the page shows the counts already.
	"why": func(reason string) string { return countsLine.ReplaceAllString(reason, "") },
	"pct": func(c state.Counts) int {
		if c.ToImport <= 0 {
			return 0
		}
		return int(100 * (c.Imported + c.Failed) / c.ToImport)
	},
}

func (s *Server) parse() error {
	s.pages = map[string]*template.Template{}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasSuffix(n, "/layout.html") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("template %s: %w", n, err)
		}
		s.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.headers(s.limitBody(s.mux)) }

// HTTPServer is an http.Server for Handler with the configured timeouts:
// a client that sends slowly or holds an idle connection is cut off.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{Handler: s.Handler(), ReadHeaderTimeout: s.cfg.ReadHeaderTimeout, ReadTimeout: s.cfg.ReadTimeout,
		WriteTimeout: s.cfg.WriteTimeout, IdleTimeout: s.cfg.IdleTimeout}
}

// headers sets what every response carries: no framing, no sniffing, a
// strict content policy (pages use only their own script and style).
func (s *Server) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", s.metrics.handler())

	// Member portal.
	mux.HandleFunc("GET /{$}", s.portal)
	mux.HandleFunc("POST /login", s.memberLogin)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /me", s.me)
	mux.HandleFunc("POST /me/start", s.memberStart)
	mux.HandleFunc("GET /api/me", s.apiMe)

	// Admin dashboard.
	mux.HandleFunc("GET /admin/login", s.adminLoginPage)
	mux.HandleFunc("POST /admin/login", s.adminLogin)
	mux.HandleFunc("GET /admin", s.admin(s.dashboard))
	mux.HandleFunc("GET /admin/jobs/new", s.operator(s.newJobPage))
	mux.HandleFunc("POST /admin/jobs", s.operator(s.createJobForm))
	mux.HandleFunc("POST /admin/check", s.operator(s.checkForm))
	mux.HandleFunc("GET /admin/jobs/{id}", s.admin(s.jobPage))
	mux.HandleFunc("GET /admin/jobs/{id}/live", s.admin(s.jobLive))
	mux.HandleFunc("POST /admin/jobs/{id}/accounts", s.operator(s.addAccountsForm))
	mux.HandleFunc("POST /admin/jobs/{id}/invite", s.operator(s.inviteForm))
	mux.HandleFunc("GET /admin/jobs/{id}/report", s.admin(s.reportPage))
	mux.HandleFunc("GET /admin/jobs/{id}/report.csv", s.admin(s.reportCSV))
	mux.HandleFunc("POST /admin/jobs/{id}/retry", s.operator(s.retryForm))
	mux.HandleFunc("POST /admin/jobs/{id}/verify", s.operator(s.verifyForm))
	mux.HandleFunc("POST /admin/jobs/{id}/{op}", s.operator(s.controlForm))
	mux.HandleFunc("GET /admin/jobs/{id}/settings", s.admin(s.settingsPage))
	mux.HandleFunc("POST /admin/jobs/{id}/accounts/{op}", s.operator(s.accountForm))
	mux.HandleFunc("POST /admin/jobs/{id}/delete", s.operator(s.deleteForm))
	s.auditRoutes(mux)
	mux.HandleFunc("GET /admin/outbox", s.admin(s.outboxPage))
	mux.HandleFunc("POST /admin/outbox/{op}", s.operator(s.outboxForm))
	mux.HandleFunc("GET /admin/accounts-template.csv", s.admin(s.templateCSV))
	mux.HandleFunc("GET /api/outbox", s.api(s.apiOutbox))

	// JSON API (the dashboard's every action).
	mux.HandleFunc("GET /api/jobs", s.api(s.apiJobs))
	mux.HandleFunc("POST /api/jobs", s.api(s.apiCreateJob))
	mux.HandleFunc("GET /api/jobs/{id}", s.api(s.apiJob))
	mux.HandleFunc("GET /api/jobs/{id}/accounts", s.api(s.apiAccounts))
	mux.HandleFunc("POST /api/jobs/{id}/accounts", s.api(s.apiAddAccounts))
	mux.HandleFunc("POST /api/jobs/{id}/invite", s.api(s.apiInvite))
	mux.HandleFunc("GET /api/jobs/{id}/events", s.api(s.apiEvents))
	mux.HandleFunc("GET /api/jobs/{id}/report", s.api(s.apiReport))
	mux.HandleFunc("POST /api/jobs/{id}/retry", s.api(s.apiRetry))
	mux.HandleFunc("POST /api/jobs/{id}/verify", s.api(s.apiVerify))
	mux.HandleFunc("GET /api/jobs/{id}/verify", s.api(s.apiVerifyResult))
	mux.HandleFunc("POST /api/jobs/{id}/{op}", s.api(s.apiControl))
	mux.HandleFunc("GET /api/jobs/{id}/settings", s.api(s.apiSettings))
	mux.HandleFunc("POST /api/jobs/{id}/accounts/{op}", s.api(s.apiAccountControl))
	mux.HandleFunc("DELETE /api/jobs/{id}", s.api(s.apiDelete))
	mux.HandleFunc("GET /api/events", s.api(s.apiEvents))
	mux.HandleFunc("POST /api/check", s.api(s.apiCheck))
	mux.HandleFunc("GET /api/providers", s.api(s.apiProviders))
	s.mux = mux
}

func (s *Server) secure(r *http.Request) bool { return r.TLS != nil || s.cfg.SecureCookies }

// clientIP is who is on the other end, for the lockout: the TCP peer, or,
// when the peer is a trusted reverse proxy, the nearest address in
// X-Forwarded-For that is not one. A header from anyone else is ignored:
// a client could write any address there.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(host) {
		return host
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, a := range strings.Split(h, ",") {
			hops = append(hops, strings.TrimSpace(a))
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			// Nothing to the left of a hop we cannot read can be believed.
			return host
		}
		if !s.trusted(a.String()) {
			return a.String()
		}
		host = a.String()
	}
	return host
}

func (s *Server) trusted(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.store.Jobs(); err != nil {
		http.Error(w, "state file: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// buttons are a job's pause / resume / start / end forms.
type buttons struct {
	V    view
	Row  jobRow
	Back string
}

// view is what every page template gets.
type view struct {
	Lang    string
	Other   string // the other language, for the switch link
	Path    string
	CSRF    string
	Admin   bool
	Viewer  bool // a dashboard viewer: no forms that change anything
	Member  string
	Error   string
	Notice  string
	Data    any
	Refresh bool // the page refreshes its live part
	// Shards: the read-only view of a job's shards (ShardView), which
	// has no event log, outbox, settings or reports to link to.
	Shards bool
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, page string, status int, v view) {
	t, ok := s.pages[page]
	if !ok {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	if v.Lang == "" {
		v.Lang = langOf(r, s.cfg.Lang)
	}
	v.Other = "zh"
	if v.Lang == "zh" {
		v.Other = "en"
	}
	v.Path = r.URL.Path
	if l := r.URL.Query().Get("lang"); l != "" {
		// The choice sticks for the next pages.
		http.SetCookie(w, &http.Cookie{Name: "lang", Value: norm(l), Path: "/", SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600})
	}
	if ss := s.sess.get(r); v.Admin && ss != nil && ss.viewer {
		v.Viewer = true
	}
	name := "layout.html"
	if r.Header.Get("X-Partial") == "1" {
		name = "live"
	}
	// Rendered whole before sending: a template error never shows half a page.
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		s.cfg.Log.Error("page", "page", page, "err", err)
		http.Error(w, "page "+page+": internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", map[string]string{"zh": "zh-CN", "en": "en"}[v.Lang])
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// event records who did what in the audit log (搬家查询).
func (s *Server) event(job, account, kind, msg string) {
	if s.m == nil {
		// The view of a job's shards writes no state file: the process
		// log has it (see adminLocked, spreadGuessing).
		return
	}
	s.m.Event(job, account, kind, msg)
}

// HandleEvent is given every engine event (migrate.Config.OnEvent): it sends
// the notifications and counts for /metrics. It never blocks the engine.
func (s *Server) HandleEvent(e *state.Event) {
	s.metrics.event(e)
	if s.cfg.Notifier == nil {
		return
	}
	s.m.Notify(s.cfg.Notifier, e, norm(s.cfg.Lang))
}

// adminOK checks the API token in constant time.
func (s *Server) adminOK(token string) bool {
	return s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1
}

// adminName checks a dashboard sign-in (a user and password, or the API
// token) and says which of the named admins signed in ("" for the one
// configured admin and the token).
func (s *Server) adminName(user, password, token string) (name string, viewer, ok bool) {
	if token != "" {
		return "", false, s.adminOK(token)
	}
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if s.cfg.AdminUser != "" && s.cfg.AdminPassword != "" && eq(user, s.cfg.AdminUser) && eq(password, s.cfg.AdminPassword) {
		return "", false, true // the admin: so the event log calls them
	}
	hash, ok := s.cfg.Admins[user]
	if !ok {
		hash, ok = s.cfg.Viewers[user]
		viewer = ok
	}
	if !ok {
		// As long as a known name takes: the answer's time does not say
		// which names exist.
		hash = dummyHash()
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || !ok {
		return "", false, false
	}
	return user, viewer, true
}

// dummyHash is a bcrypt hash no password matches, compared for unknown
// names; made on first use (it takes a bcrypt's time).
var dummyHash = sync.OnceValue(func() string {
	h, _ := bcrypt.GenerateFromPassword([]byte("no admin has this password, it is thrown away"), bcrypt.DefaultCost)
	return string(h)
})

// who names a signed-in dashboard admin in the event log.
func who(ss *session) string {
	if ss == nil {
		return state.AdminActor("")
	}
	return state.AdminActor(ss.adminName)
}

// admin guards dashboard pages: a signed-in admin session, and a CSRF
// token on every POST.
func (s *Server) admin(h func(w http.ResponseWriter, r *http.Request, ss *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := s.sess.get(r)
		if ss == nil || !ss.admin {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in as the admin first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && !csrfOK(r, ss) {
			http.Error(w, tr(langOf(r, s.cfg.Lang), "csrf"), http.StatusForbidden)
			return
		}
		h(w, r, ss)
	}
}

// operator guards the dashboard's pages that change something: an admin
// signed in, not a viewer.
func (s *Server) operator(h func(w http.ResponseWriter, r *http.Request, ss *session)) http.HandlerFunc {
	return s.admin(func(w http.ResponseWriter, r *http.Request, ss *session) {
		if ss.viewer {
			http.Error(w, tr(langOf(r, s.cfg.Lang), "viewer"), http.StatusForbidden)
			return
		}
		h(w, r, ss)
	})
}

// spreadGuessing tells the admins, in the event log, that one name is being
// guessed from many clients: from now on every attempt for it waits.
func (s *Server) spreadGuessing(key string, failures int) {
	what := strings.TrimPrefix(key, "any:")
	whatWhy := wording.Plain(what)
	switch {
	case strings.HasPrefix(what, "admin:"):
		whatWhy = wording.New("lock.dashboard").With("name", s.nameShown(strings.TrimPrefix(what, "admin:")))
	case strings.HasPrefix(what, "login:"):
		whatWhy = wording.New("lock.portal").With("member", addressShown(strings.TrimPrefix(what, "login:")))
	}
	s.cfg.Log.Warn("spread-out password guessing", "what", whatWhy.String(), "failures", failures)
	s.m.EventOf(string(state.Engine), "", "", "warning", wording.New("ev.lock.spread", "failures", strconv.Itoa(failures),
		"minutes", strconv.Itoa(minutes(s.cfg.FailWindow)), "delay", s.cfg.MaxSpreadDelay.String()).With("what", whatWhy))
}

// adminLocked records in the event log, not only the process log, that a
// client is locked out of the dashboard or the API (user "" for tokens).
func (s *Server) adminLocked(client, user string) {
	what := wording.New("lock.token")
	if user != "" {
		what = wording.New("lock.dashboard").With("name", s.nameShown(user))
	}
	s.cfg.Log.Warn("admin sign-in locked after repeated failures", "client", client)
	s.m.EventOf(string(state.Engine), "", "", "warning", wording.New("ev.lock.admin", "client", client,
		"minutes", strconv.Itoa(minutes(s.cfg.LockFor))).With("what", what))
}

// nameShown is an admin name as the event log shows it: a name that is no
// admin's or viewer's is not repeated, since it may be a password typed
// into the wrong field.
func (s *Server) nameShown(name string) wording.Reason {
	_, admin := s.cfg.Admins[name]
	_, viewer := s.cfg.Viewers[name]
	if admin || viewer || (name != "" && name == s.cfg.AdminUser) {
		return wording.Plain(strconv.Quote(name))
	}
	return wording.New("lock.noadmin")
}

// addressShown is a typed member address as the event log shows it, for
// the same reason: only what looks like an address.
func addressShown(a string) wording.Reason {
	if _, err := netmail.ParseAddress(a); err != nil || strings.ContainsAny(a, " <>\"\t") {
		return wording.New("lock.noaddress")
	}
	return wording.Plain(a)
}

// probed counts a member's question whether another member moves an old
// address as a failed attempt: so it cannot be asked outside the lockout.
func (s *Server) probed(job, member, old string, keys []string) {
	locked := s.lock.fail(keys...)
	s.m.EventOf(state.MemberActor(member), job, "", "warning", wording.New("ev.portal.probed", "member", member, "old", old))
	if locked {
		s.m.EventOf(string(state.Engine), job, "", "warning", wording.New("ev.portal.locked.failures", "member", member, "minutes", strconv.Itoa(minutes(s.cfg.LockFor))))
	}
}

// slowDown waits as the lockout asks before an attempt on keys is checked;
// false if the client went away meanwhile.
func (s *Server) slowDown(r *http.Request, keys ...string) bool {
	d := s.lock.delay(keys...)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func minutes(d time.Duration) int {
	return int((d + time.Minute - 1) / time.Minute)
}
