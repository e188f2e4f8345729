package browser

import (
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// site is a small web application for the harness's tests: a sign-in form
// that sets a cookie, a page that shows the request's Accept-Language, and
// a page whose text changes a second after loading, through fetch.
type site struct {
	*httptest.Server
	mu        sync.Mutex
	signins   []string   // the names posted to /signin
	languages [][]string // the Accept-Language values of each /lang request
}

func newSite(t *testing.T) *site {
	s := &site{}
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, title, body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><meta charset=utf-8><title>%s</title></head><body>%s</body></html>", title, body)
	}
	mux.HandleFunc("GET /signin", func(w http.ResponseWriter, r *http.Request) {
		page(w, "Sign in", `<form method=post action=/signin>
			<label>Name <input id=name name=name required></label>
			<label>Password <input id=password name=password type=password required></label>
			<button id=submit>Sign in</button>
		</form>
		<button id=local type=button onclick="document.getElementById('out').textContent = 'clicked'">No navigation</button>
		<p id=out></p>`)
	})
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		name, password := r.PostFormValue("name"), r.PostFormValue("password")
		s.mu.Lock()
		s.signins = append(s.signins, name)
		s.mu.Unlock()
		if password != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			page(w, "Denied", `<p id=who>Wrong password</p>`)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: url.QueryEscape(name), Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /home", func(w http.ResponseWriter, r *http.Request) {
		who := "Not signed in"
		if c, err := r.Cookie("session"); err == nil {
			name, _ := url.QueryUnescape(c.Value)
			who = "Signed in as " + name
		}
		page(w, "Home", `<p id=who>`+html.EscapeString(who)+`</p>`)
	})
	mux.HandleFunc("GET /lang", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.languages = append(s.languages, r.Header.Values("Accept-Language"))
		s.mu.Unlock()
		page(w, "Language", `<p id=lang>`+html.EscapeString(r.Header.Get("Accept-Language"))+`</p>
		<p id=fetched>…</p>
		<script>fetch("/lang.txt").then(r => r.text()).then(t => { document.getElementById("fetched").textContent = "fetch: " + t; });</script>`)
	})
	mux.HandleFunc("GET /lang.txt", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Accept-Language"))
	})
	mux.HandleFunc("GET /late", func(w http.ResponseWriter, r *http.Request) {
		page(w, "Late", `<p id=status>waiting</p>
		<script>setTimeout(() => fetch("/late.txt").then(r => r.text()).then(t => { document.getElementById("status").textContent = t; }), 1000);</script>`)
	})
	mux.HandleFunc("GET /late.txt", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ready: 42 messages")
	})
	s.Server = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(s.Close)
	return s
}

func (s *site) signinsSeen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.signins...)
}

func signIn(p *Tab, base, name, password string) {
	p.Go(base + "/signin")
	p.Fill("#name", name)
	p.Fill("#password", password)
	p.Click("#submit")
}

func TestSignInAndSeparateCookies(t *testing.T) {
	s := newSite(t)
	b := Start(t)
	admin, member := b.Tab(t), b.Tab(t)

	signIn(admin, s.URL, "admin", "secret")
	if got := admin.Text("#who"); got != "Signed in as admin" {
		t.Fatalf("admin's page after signing in: %q", got)
	}

	// The member's tab has its own cookies: not signed in yet, then signed
	// in as someone else, while the admin stays the admin.
	member.Go(s.URL + "/home")
	if got := member.Text("#who"); got != "Not signed in" {
		t.Fatalf("member's tab sees the admin's cookie: %q", got)
	}
	signIn(member, s.URL, "成员 Zoë", "secret")
	if got := member.Text("#who"); got != "Signed in as 成员 Zoë" {
		t.Fatalf("member's page after signing in: %q", got)
	}
	admin.Go(s.URL + "/home")
	if got := admin.Text("#who"); got != "Signed in as admin" {
		t.Fatalf("admin's page after the member signed in: %q", got)
	}

	// A failed sign-in shows the server's answer (a 401 page still loads).
	signIn(member, s.URL, "mallory", "wrong")
	if got := member.Text("#who"); got != "Wrong password" {
		t.Fatalf("page after a wrong password: %q", got)
	}
	if got, want := strings.Join(s.signinsSeen(), ","), "admin,成员 Zoë,mallory"; got != want {
		t.Fatalf("server saw sign-ins %q, want %q", got, want)
	}
}

func TestClickWithoutNavigation(t *testing.T) {
	s := newSite(t)
	b := Start(t)
	p := b.Tab(t)
	p.Go(s.URL + "/signin")

	// A button that only runs script: Click returns at once.
	begin := time.Now()
	p.Click("#local")
	if d := time.Since(begin); d > navigationGrace {
		t.Errorf("a click that does not navigate took %v", d)
	}
	if got := p.Text("#out"); got != "clicked" {
		t.Fatalf("text after the click: %q", got)
	}

	// A submit that the browser's validation holds back (required fields
	// left empty) does not navigate: Click gives up waiting after the
	// grace period, and the page is still the form.
	p.Click("#submit")
	if got := len(s.signinsSeen()); got != 0 {
		t.Fatalf("an empty required form was posted (%d sign-ins)", got)
	}
	if got := p.Text("#out"); got != "clicked" {
		t.Fatalf("page changed after a held-back submit: %q", got)
	}
}

func TestAcceptLanguage(t *testing.T) {
	s := newSite(t)
	b := Start(t)
	zh, other := b.Tab(t), b.Tab(t)

	const want = "zh-CN,zh;q=0.9"
	zh.SetLanguage(want)
	zh.Go(s.URL + "/lang")
	if got := zh.Text("#lang"); got != want {
		t.Fatalf("page shows Accept-Language %q, want %q", got, want)
	}
	// Script requests carry it too.
	zh.WaitText("#fetched", "fetch: "+want, 10*time.Second)

	// Only that tab.
	other.Go(s.URL + "/lang")
	if got := other.Text("#lang"); got == want {
		t.Fatalf("a tab without SetLanguage also sent %q", got)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.languages) != 2 {
		t.Fatalf("server saw %d /lang requests, want 2", len(s.languages))
	}
	if got := s.languages[0]; len(got) != 1 || got[0] != want {
		t.Fatalf("server saw Accept-Language %q, want exactly [%q]", got, want)
	}
	t.Logf("a tab without SetLanguage sends Accept-Language %q", s.languages[1])
}

func TestWaitTextSeesLateChange(t *testing.T) {
	s := newSite(t)
	b := Start(t)
	p := b.Tab(t)
	p.Go(s.URL + "/late")
	begin := time.Now()
	if got := p.Text("#status"); got != "waiting" {
		t.Fatalf("status right after loading: %q", got)
	}
	p.WaitText("#status", "ready: 42", 10*time.Second)
	t.Logf("the late text appeared %v after Go returned", time.Since(begin).Round(time.Millisecond))
	if got := p.Text("#status"); got != "ready: 42 messages" {
		t.Fatalf("status: %q", got)
	}
}

// recorder stands in for the test in a Tab, to see how a method fails.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.failed = ""
	r.mu.Unlock()
}

func (r *recorder) message() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// fails runs f on a goroutine of its own, so that the recorder's Fatalf
// ends only f, and waits for it.
func fails(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func TestFailureMessages(t *testing.T) {
	s := newSite(t)
	b := Start(t)
	rec := &recorder{TB: t}
	p := b.Tab(rec)
	p.Go(s.URL + "/late")

	// WaitText gives the last text it saw.
	fails(func() { p.WaitText("#status", "never", 300*time.Millisecond) })
	msg := rec.message()
	for _, want := range []string{`"never"`, "#status", `last text: "waiting"`, s.URL + "/late"} {
		if !strings.Contains(msg, want) {
			t.Errorf("WaitText's failure %q does not mention %s", msg, want)
		}
	}

	// A missing element names the selector.
	p.Timeout = 300 * time.Millisecond
	rec.reset()
	fails(func() { p.Click("#nowhere") })
	if msg := rec.message(); !strings.Contains(msg, `no element matches "#nowhere"`) {
		t.Errorf("Click's failure on a missing element: %q", msg)
	}
	// A port nothing listens on (no longer).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()
	rec.reset()
	fails(func() { p.Go(closed) })
	if msg := rec.message(); !strings.Contains(msg, "ERR_CONNECTION_REFUSED") {
		t.Errorf("Go's failure on a closed port: %q", msg)
	}
}

func TestScreenshot(t *testing.T) {
	s := newSite(t)
	b := Start(t)
	p := b.Tab(t)
	p.Go(s.URL + "/signin")
	path := filepath.Join(t.TempDir(), "shots", "signin.png")
	p.Screenshot(path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "\x89PNG\r\n\x1a\n") || len(data) < 1000 {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(data))
	}
}

// chromiumProcesses lists, as ps shows them, the processes of the browser
// whose profile is dir.
func chromiumProcesses(t *testing.T, dir string) []string {
	t.Helper()
	out, err := exec.Command("ps", "-ww", "-eo", "pid=,args=").Output()
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	var procs []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "--user-data-dir="+dir) {
			procs = append(procs, strings.TrimSpace(line))
		}
	}
	return procs
}

func assertGone(t *testing.T, pid int, dir string) {
	t.Helper()
	if procs := chromiumProcesses(t, dir); len(procs) > 0 {
		t.Errorf("%d Chromium processes left after the browser stopped:\n%s", len(procs), strings.Join(procs, "\n"))
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("main process %d: kill -0 gives %v, want ESRCH", pid, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("profile %s not removed: %v", dir, err)
	}
}

func TestNoChromiumLeftAfterStop(t *testing.T) {
	s := newSite(t)

	// Stopped by the test's cleanup.
	var pid int
	var dir string
	t.Run("cleanup", func(t *testing.T) {
		b := Start(t)
		p := b.Tab(t)
		p.Go(s.URL + "/late")
		pid, dir = b.PID(), b.UserDataDir()
		procs := chromiumProcesses(t, dir)
		if len(procs) < 2 {
			t.Fatalf("ps shows %d processes of the browser; want its main process and helpers:\n%s", len(procs), strings.Join(procs, "\n"))
		}
		t.Logf("%d Chromium processes while running", len(procs))
	})
	if pid == 0 {
		t.Fatal("the browser did not start")
	}
	assertGone(t, pid, dir)

	// Stopped early by the test, with tabs open; Stop twice is harmless.
	b := Start(t)
	b.Tab(t).Go(s.URL + "/home")
	b.Tab(t).Go(s.URL + "/late")
	b.Stop()
	assertGone(t, b.PID(), b.UserDataDir())
	b.Stop()
}
