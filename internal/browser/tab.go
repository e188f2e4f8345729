package browser

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// DefaultTimeout is how long a Tab's action waits (for an element to
// appear, a page to load) before it fails the test.
const DefaultTimeout = 30 * time.Second

// navigationGrace is how long Click waits for a navigation to start after
// clicking something that normally navigates (a submit button, a link). A
// form that script handles, or that the browser's validation holds back,
// never navigates; then Click returns after this.
const navigationGrace = 2 * time.Second

// Tab is one page of the browser in a browser context of its own: its
// cookies, storage and cache are its own, as in a separate profile.
type Tab struct {
	// Timeout bounds each action; DefaultTimeout unless changed.
	Timeout time.Duration

	t      testing.TB
	b      *Browser
	n      int // the tab's number in its browser, for names
	ctx    context.Context
	cancel context.CancelFunc

	// The main frame's loading state, from the page's events.
	mu      sync.Mutex
	frame   cdp.FrameID
	starts  int           // main-frame loads started so far
	loading bool          // a main-frame load is under way
	changed chan struct{} // closed (and replaced) on every change above
}

// Tab opens a fresh tab in a new browser context (its own cookies), and
// closes it in t.Cleanup. On failure, and when the test runs with
// -artifacts, the tab's last screen is saved in t.ArtifactDir().
func (b *Browser) Tab(t testing.TB) *Tab {
	t.Helper()
	b.tabsMu.Lock()
	b.tabs++
	n := b.tabs
	b.tabsMu.Unlock()

	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	p := &Tab{Timeout: DefaultTimeout, t: t, b: b, n: n, ctx: ctx, cancel: cancel, changed: make(chan struct{})}
	// Opening the tab must run on the tab's own context (it lives as long
	// as that context), so a timer cancels it instead of a timeout.
	watchdog := time.AfterFunc(DefaultTimeout, cancel)
	err := chromedp.Do(ctx)
	if !watchdog.Stop() {
		err = fmt.Errorf("not open after %v (%v)", DefaultTimeout, err)
	}
	if err != nil {
		cancel()
		t.Fatalf("browser: opening tab %d: %v\nChromium's output:\n%s", n, err, b.out.String())
	}
	t.Cleanup(p.close)

	if err := chromedp.Listen(ctx, p.event); err != nil {
		t.Fatalf("browser: tab %d: listening to its events: %v", n, err)
	}
	actx, acancel := p.actionCtx()
	defer acancel()
	tree, err := chromedp.Run(actx, func(ctx context.Context, tg *chromedp.Target) (*page.GetFrameTreeResult, error) {
		r, err := cdp.Call(ctx, tg, page.GetFrameTree, cdp.Empty{})
		return &r, err
	})
	if err != nil {
		t.Fatalf("browser: tab %d: frame tree: %v", n, err)
	}
	p.mu.Lock()
	p.frame = tree.FrameTree.Frame.ID
	p.mu.Unlock()
	return p
}

// close saves a screenshot of a failed test's tab when -artifacts is on,
// then closes the tab and disposes of its browser context.
func (p *Tab) close() {
	if p.t.Failed() && artifactsOn() && p.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err == nil {
			path := filepath.Join(p.t.ArtifactDir(), fmt.Sprintf("tab%d.png", p.n))
			if err := os.WriteFile(path, png, 0o644); err == nil {
				p.t.Logf("browser: tab %d's last screen: %s", p.n, path)
			}
		}
	}
	p.cancel()
}

func artifactsOn() bool {
	f := flag.Lookup("test.artifacts")
	return f != nil && f.Value.String() == "true"
}

// event follows the main frame's loads. It runs on chromedp's reading
// goroutine, so it only updates the state.
func (p *Tab) event(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *page.EventFrameNavigated:
		if ev.Frame.ParentID == "" {
			p.frame = ev.Frame.ID
		}
		return
	case *page.EventFrameStartedLoading:
		if ev.FrameID != p.frame {
			return
		}
		p.starts++
		p.loading = true
	case *page.EventFrameStoppedLoading:
		if ev.FrameID != p.frame {
			return
		}
		p.loading = false
	default:
		return
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// loadState is the number of main-frame loads started so far and whether
// one is under way, with a channel closed on the next change.
func (p *Tab) loadState() (starts int, loading bool, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.loading, p.changed
}

// waitLoaded waits until a main-frame load after the first `before` ones
// has started (within start) and finished (within p.Timeout); it reports
// whether one started.
func (p *Tab) waitLoaded(before int, start time.Duration, what string) bool {
	p.t.Helper()
	startBy := time.Now().Add(start)
	var doneBy time.Time
	for {
		starts, loading, changed := p.loadState()
		if starts > before {
			if !loading {
				return true
			}
			if doneBy.IsZero() {
				doneBy = time.Now().Add(p.Timeout)
			}
		}
		var limit time.Time
		if doneBy.IsZero() {
			limit = startBy
		} else {
			limit = doneBy
		}
		wait := time.Until(limit)
		if wait <= 0 {
			if doneBy.IsZero() {
				return false
			}
			p.fatalf("%s: the page did not finish loading within %v", what, p.Timeout)
		}
		timer := time.NewTimer(wait)
		select {
		case <-changed:
		case <-timer.C:
		case <-p.ctx.Done():
			timer.Stop()
			p.fatalf("%s: the tab closed (did the browser stop?)", what)
		}
		timer.Stop()
	}
}

// actionCtx bounds one protocol exchange by p.Timeout.
func (p *Tab) actionCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, p.Timeout)
}

// fatalf fails the test with the tab's address for context.
func (p *Tab) fatalf(format string, args ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, args...)
	p.t.Fatalf("browser: tab %d at %s: %s", p.n, p.location(), msg)
}

// location is the page's address, or why it is unknown.
func (p *Tab) location() string {
	if p.ctx.Err() != nil {
		return "(closed)"
	}
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return fmt.Sprintf("(address unknown: %v)", err)
	}
	return loc
}

// Go navigates to url and waits until the page has loaded. A page the
// server answers with an error status still loads; a network error (no
// server, refused connection) fails the test.
func (p *Tab) Go(url string) {
	p.t.Helper()
	ctx, cancel := p.actionCtx()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		p.fatalf("go to %s: %v", url, err)
	}
	// Navigate returns on the load event; wait for the frame to stop
	// loading too, so the next action starts from a quiet page.
	starts, _, _ := p.loadState()
	if starts > 0 {
		p.waitLoaded(starts-1, 0, "go to "+url)
	}
}

// jsCall is a call of the JavaScript function fn with args, JSON-encoded.
func jsCall(fn string, args ...any) string {
	enc := make([]string, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			panic(err)
		}
		enc[i] = string(b)
	}
	return "(" + fn + ")(" + strings.Join(enc, ", ") + ")"
}

// found is the answer of the page functions below: whether the element
// was there, and what they found.
type found struct {
	OK     bool    `json:"ok"`
	Reason string  `json:"reason"` // why not OK
	Text   string  `json:"text"`
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	Nav    bool    `json:"nav"`
}

// poll evaluates expr (which gives a found) until it is OK or p.Timeout
// passes; evaluation errors, as while a page is replaced, count as not yet.
func (p *Tab) poll(what, expr string) found {
	p.t.Helper()
	deadline := time.Now().Add(p.Timeout)
	var last found
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		f, err := chromedp.Run(ctx, chromedp.Evaluate[found](expr))
		cancel()
		if err == nil && f.OK {
			return f
		}
		if err != nil {
			last = found{Reason: err.Error()}
		} else {
			last = f
		}
		if p.ctx.Err() != nil {
			p.fatalf("%s: the tab closed (did the browser stop?)", what)
		}
		if time.Now().After(deadline) {
			p.fatalf("%s: after %v: %s", what, p.Timeout, last.Reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The element checks shared by Fill and Click: present, shown, enabled.
const jsFind = `
	const e = document.querySelector(sel);
	if (!e) return {ok: false, reason: "no element matches " + JSON.stringify(sel)};
	const shown = e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
	if (!shown) return {ok: false, reason: JSON.stringify(sel) + " is not visible"};
	if (e.disabled) return {ok: false, reason: JSON.stringify(sel) + " is disabled"};
`

// Fill sets a form field's value as typing would (focus, then inserted
// text, with input and change events). A <select> takes the value of one
// of its options.
func (p *Tab) Fill(selector, value string) {
	p.t.Helper()
	what := fmt.Sprintf("fill %q", selector)
	f := p.poll(what, jsCall(`(sel, value) => {`+jsFind+`
		if (e.tagName === "SELECT") {
			if (![...e.options].some(o => o.value === value))
				return {ok: false, reason: "no option has the value " + JSON.stringify(value)};
			e.value = value;
			e.dispatchEvent(new Event("input", {bubbles: true}));
			e.dispatchEvent(new Event("change", {bubbles: true}));
			return {ok: true, text: "done"};
		}
		const typed = e.tagName === "TEXTAREA" ||
			(e.tagName === "INPUT" && !["checkbox", "radio", "submit", "button", "reset", "image", "file", "hidden"].includes(e.type));
		if (!typed) return {ok: false, reason: JSON.stringify(sel) + " is not a text field (a " + e.tagName.toLowerCase() + (e.type ? " of type " + e.type : "") + "): click it instead"};
		if (e.readOnly) return {ok: false, reason: JSON.stringify(sel) + " is read-only"};
		e.scrollIntoView({block: "center"});
		e.focus();
		if (e.value !== "") {
			e.value = "";
			e.dispatchEvent(new Event("input", {bubbles: true}));
		}
		return {ok: true, text: "focused"};
	}`, selector, value))
	if f.Text == "done" {
		return
	}
	ctx, cancel := p.actionCtx()
	defer cancel()
	if value != "" {
		err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: value})
			return err
		}))
		if err != nil {
			p.fatalf("%s: typing: %v", what, err)
		}
	}
	// Fields that take no typed text (a date, a colour) get the value set;
	// then the value must be what was asked.
	res, err := chromedp.Run(ctx, chromedp.Evaluate[found](jsCall(`(sel, value) => {
		const e = document.querySelector(sel);
		if (!e) return {ok: false, reason: "the field went away"};
		if (e.value !== value) {
			e.value = value;
			e.dispatchEvent(new Event("input", {bubbles: true}));
		}
		e.dispatchEvent(new Event("change", {bubbles: true}));
		return e.value === value ? {ok: true} : {ok: false, reason: "the field holds " + JSON.stringify(e.value)};
	}`, selector, value)))
	if err != nil {
		p.fatalf("%s: %v", what, err)
	}
	if !res.OK {
		p.fatalf("%s with %q: %s", what, value, res.Reason)
	}
}

// Click clicks the middle of the element, as a mouse would, once it is
// visible and enabled; something else drawn over it gets the click instead,
// and fails the test. When the click navigates (a submit button, a link, or
// script), Click waits until the new page has loaded.
func (p *Tab) Click(selector string) {
	p.t.Helper()
	what := fmt.Sprintf("click %q", selector)
	f := p.poll(what, jsCall(`(sel) => {`+jsFind+`
		e.scrollIntoView({block: "center", inline: "center"});
		const r = e.getBoundingClientRect();
		const x = r.left + r.width / 2, y = r.top + r.height / 2;
		const hit = document.elementFromPoint(x, y);
		if (!hit || !(hit === e || e.contains(hit) || hit.contains(e) && hit.tagName === "LABEL"))
			return {ok: false, reason: JSON.stringify(sel) + " is covered by " + (hit ? hit.outerHTML.slice(0, 120) : "nothing")};
		const a = e.closest("a[href]");
		const b = e.closest("button, input");
		const nav = (!!a && !a.getAttribute("href").startsWith("#") && (!a.target || a.target === "_self")) ||
			(!!b && !!b.form && (b.type === "submit" || b.type === "image"));
		return {ok: true, x: x, y: y, nav: nav};
	}`, selector))
	before, _, _ := p.loadState()
	ctx, cancel := p.actionCtx()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(f.X, f.Y)); err != nil {
		p.fatalf("%s: %v", what, err)
	}
	grace := time.Duration(0)
	if f.Nav {
		grace = navigationGrace
	}
	p.waitLoaded(before, grace, what)
}

// Text is the element's visible text (innerText), waiting for the element
// to exist.
func (p *Tab) Text(selector string) string {
	p.t.Helper()
	f := p.poll(fmt.Sprintf("text of %q", selector), jsCall(`(sel) => {
		const e = document.querySelector(sel);
		if (!e) return {ok: false, reason: "no element matches " + JSON.stringify(sel)};
		return {ok: true, text: e.innerText};
	}`, selector))
	return f.Text
}

// WaitText polls until the element's visible text contains want, and
// fails the test with the last text seen when timeout passes.
func (p *Tab) WaitText(selector, want string, timeout time.Duration) {
	p.t.Helper()
	expr := jsCall(`(sel) => {
		const e = document.querySelector(sel);
		return e ? {ok: true, text: e.innerText} : {ok: false, reason: "no element matches " + JSON.stringify(sel)};
	}`, selector)
	deadline := time.Now().Add(timeout)
	last := "(nothing read yet)"
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		f, err := chromedp.Run(ctx, chromedp.Evaluate[found](expr))
		cancel()
		switch {
		case err != nil:
			last = "(" + err.Error() + ")"
		case !f.OK:
			last = "(" + f.Reason + ")"
		case strings.Contains(f.Text, want):
			return
		default:
			last = fmt.Sprintf("%q", f.Text)
		}
		if p.ctx.Err() != nil {
			p.fatalf("wait for %q in %q: the tab closed (did the browser stop?)", want, selector)
		}
		if time.Now().After(deadline) {
			p.fatalf("wait for %q in %q: not there after %v; last text: %s", want, selector, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SetLanguage sends acceptLanguage (e.g. "zh-CN,zh;q=0.9") as the
// Accept-Language header of every request of this tab from now on, pages
// and script requests alike.
func (p *Tab) SetLanguage(acceptLanguage string) {
	p.t.Helper()
	actx, cancel := p.actionCtx()
	defer cancel()
	err := chromedp.Do(actx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Accept-Language": acceptLanguage},
		})
		return err
	}))
	if err != nil {
		p.fatalf("set language %q: %v", acceptLanguage, err)
	}
}

// Screenshot saves the whole page as a PNG at path, making its directory.
func (p *Tab) Screenshot(path string) {
	p.t.Helper()
	ctx, cancel := p.actionCtx()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.fatalf("screenshot: %v", err)
	}
}
