// Package browser drives a real headless Chromium for end-to-end tests of
// banjia's web pages: a test starts a browser, opens tabs (each with its own
// cookies, so an admin and a member can be signed in at once), and uses
// them as a person would: go to a page, fill fields, click, read text.
//
// Chromium is Debian's package at /usr/bin/chromium (scripts/install-deps.sh
// installs it), driven over the DevTools protocol by chromedp. Without it a
// test is skipped, loudly, or fails when BANJIA_REQUIRE_SERVERS=1 (CI).
//
// Every method fails the test (t.Fatalf, with the page's address and what
// was expected) instead of returning an error, so it must be called from
// the test's own goroutine.
//
//	b := browser.Start(t)
//	admin, member := b.Tab(t), b.Tab(t)
//	admin.Go(base + "/signin")
//	admin.Fill("#name", "admin")
//	admin.Fill("#password", pw)
//	admin.Click("button[type=submit]") // waits for the next page
//	member.SetLanguage("zh-CN,zh;q=0.9")
//	member.Go(base + "/")
//	member.WaitText("#progress", "完成", 10*time.Second)
//
// Accept-Language is set as a request header (SetLanguage): the server sees
// it, but the page's navigator.languages stays the browser's own.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// StartTimeout bounds how long Start waits for Chromium to come up. A cold
// start on a loaded 2-core machine takes a few seconds at most.
const StartTimeout = 60 * time.Second

// stopTimeout bounds the graceful close; after it the process is killed.
const stopTimeout = 10 * time.Second

// Available says whether Chromium can run here; the error is a reason a
// person can act on.
func Available() error {
	fi, err := os.Stat(ChromiumPath)
	if err != nil {
		return fmt.Errorf("Chromium not installed (%s missing): run scripts/install-deps.sh", ChromiumPath)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", ChromiumPath)
	}
	return nil
}

// Require skips the test, loudly, when Chromium cannot run here, or fails
// it when BANJIA_REQUIRE_SERVERS=1 (CI), so a missing browser never passes
// silently.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv("BANJIA_REQUIRE_SERVERS") == "1" {
		t.Fatalf("FAILED: BANJIA_REQUIRE_SERVERS=1 but Chromium cannot run: %v", err)
	}
	t.Skipf("SKIPPED: %v", err)
}

// Browser is one headless Chromium process, with its own temporary profile.
type Browser struct {
	t       testing.TB
	dir     string // the temporary --user-data-dir
	pid     int
	started time.Duration
	out     *tailBuffer // Chromium's own output, for failure messages

	ctx         context.Context // the chromedp context that owns the browser
	cancel      context.CancelFunc
	allocCancel context.CancelFunc

	tabsMu sync.Mutex
	tabs   int

	stopOnce sync.Once
}

// Start launches headless Chromium for one test and stops it in
// t.Cleanup; when the test ends no Chromium process is left and the
// temporary profile is removed. Without /usr/bin/chromium it skips the
// test, unless BANJIA_REQUIRE_SERVERS=1, where it fails (CI forbids skips).
func Start(t testing.TB) *Browser {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "banjia-chromium-")
	if err != nil {
		t.Fatalf("browser: temporary profile: %v", err)
	}
	b := &Browser{t: t, dir: dir, out: &tailBuffer{max: 16 << 10}}
	t.Cleanup(b.Stop)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		// Measured necessary here, as root in a container: without
		// --no-sandbox Chromium does not start as root; the others keep it
		// from reaching for the network (QUIC, component updates, sync,
		// field trials) and from GPU probing.
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// A desktop-sized window, for layouts and screenshots.
		chromedp.WindowSize(1280, 1024),
		// Our own directory: chromedp removes only the ones it makes, and
		// the processes are found by it when the browser stops.
		chromedp.UserDataDir(dir),
		chromedp.CombinedOutput(b.out),
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b.ctx, b.cancel, b.allocCancel = ctx, cancel, allocCancel

	// The first Run starts the process and opens its first tab; it must run
	// on the browser's own context (a timeout there would be the browser's
	// lifetime), so a timer cancels it instead.
	begin := time.Now()
	watchdog := time.AfterFunc(StartTimeout, cancel)
	err = chromedp.Do(ctx)
	if !watchdog.Stop() {
		err = fmt.Errorf("not up after %v (%v)", StartTimeout, err)
	}
	if err != nil {
		t.Fatalf("browser: starting %s: %v\nChromium's output:\n%s", ChromiumPath, err, b.out.String())
	}
	b.started = time.Since(begin)
	if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		b.pid = c.Browser.Process().Pid
	}
	t.Logf("browser: Chromium (pid %d) up in %v", b.pid, b.started.Round(time.Millisecond))
	return b
}

// StartupTime is how long Start took to have Chromium up with a first tab.
func (b *Browser) StartupTime() time.Duration { return b.started }

// PID is the browser's main process.
func (b *Browser) PID() int { return b.pid }

// UserDataDir is the browser's temporary profile; every Chromium process of
// this browser has --user-data-dir=UserDataDir() on its command line.
func (b *Browser) UserDataDir() string { return b.dir }

// Stop closes the browser, makes sure none of its processes is left, and
// removes its profile. Start registers it with t.Cleanup; a test may call
// it earlier, and calling it again does nothing. Tabs are unusable after.
func (b *Browser) Stop() {
	b.stopOnce.Do(b.stop)
}

func (b *Browser) stop() {
	t := b.t
	begin := time.Now()
	if b.ctx != nil {
		// A graceful close first (Browser.close lets Chromium end its
		// children), then cancel, which kills what is left of the main
		// process and waits for it.
		ctx, cancel := context.WithTimeout(b.ctx, stopTimeout)
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("browser: closing Chromium: %v", err)
		}
		cancel()
		b.cancel()
		b.allocCancel() // waits for the process to be reaped
	}
	// Chromium's helpers (zygotes, utility and renderer processes) are not
	// its children in a way cmd.Wait sees; they share the profile argument.
	want := "--user-data-dir=" + b.dir
	deadline := time.Now().Add(5 * time.Second)
	killed := false
	for {
		left := processesWithArg(want)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("browser: Chromium processes still running after stop: %v", left)
			break
		}
		// Give them a moment to exit on their own after the graceful close.
		if !killed && time.Until(deadline) < 4*time.Second {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Logf("browser: killed leftover Chromium processes %v", left)
			killed = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Chromium can still be flushing files when it exits: retry briefly.
	var err error
	for range 50 {
		if err = os.RemoveAll(b.dir); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("browser: removing the profile %s: %v", b.dir, err)
	}
	t.Logf("browser: Chromium (pid %d) stopped in %v", b.pid, time.Since(begin).Round(time.Millisecond))
}

// processesWithArg lists the processes that have arg, exactly, among their
// command-line arguments.
func processesWithArg(arg string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for a := range bytes.SplitSeq(cmdline, []byte{0}) {
			if string(a) == arg {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// tailBuffer keeps the last max bytes written to it; chromedp writes
// Chromium's output from its own goroutine.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = w.buf[len(w.buf)-w.max:]
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimSpace(string(w.buf))
	if s == "" {
		return "(none)"
	}
	return s
}
