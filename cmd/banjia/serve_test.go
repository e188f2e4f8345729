package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
)

var portalRe = regexp.MustCompile(`portal (http://[0-9.:]+)/`)

// startServe runs `banjia serve` and returns its base URL.
func (w *cliWorld) startServe(t *testing.T) (string, func() (string, error)) {
	t.Helper()
	cmd, out := w.start0(t, "serve", "--listen", "127.0.0.1:0")
	var base string
	waitUntil(t, func() bool {
		if m := portalRe.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			return true
		}
		return cmd.ProcessState != nil
	})
	if base == "" {
		t.Fatalf("serve did not start:\n%s", out)
	}
	stop := func() (string, error) {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return out.String(), err
		case <-time.After(30 * time.Second):
			t.Fatalf("serve did not stop on SIGTERM:\n%s", out)
		}
		return "", nil
	}
	return base, stop
}

// TestServeCLI: banjia serve runs a member-triggered job made with the CLI;
// while it holds the state file, job status / add / pause and logs talk to
// it; a member enrolls over HTTP; a restart picks the job up again.
func TestServeCLI(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 3, Messages: 50, BadPassword: -1})
	before := w.Sources()
	w.env = []string{"BANJIA_ADMIN_PASSWORD=admin-pw-cli-31"}
	from, to := "imap+plain://"+w.Src.IMAPAddr, "imap+plain://"+w.Dst.IMAPAddr
	out, err := w.banjia(t, "job", "create", "acme", "--mode", "member", "--from", from, "--to", to)
	if err == nil || !strings.Contains(out, "a member-triggered job needs the old domain and the new domain") {
		t.Fatalf("member job without domains: %v\n%s", err, out)
	}
	w.mustBanjia(t, "job", "create", "acme", "--mode", "member", "--domain", "old.test", "--new-domain", "new.test", "--from", from, "--to", to)
	base, stop := w.startServe(t)

	// Follow the job's log as JSON while things happen.
	follow, followOut := w.start0(t, "logs", "-f", "--json", "--job", "acme")

	// A member enrolls in the portal.
	u := w.Users[0]
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute}
	csrf := ""
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b); m != nil {
			csrf = string(m[1])
		}
		return string(b)
	}
	page(hc.Get(base + "/"))
	body := page(hc.PostForm(base+"/login", url.Values{"csrf": {csrf}, "address": {u.New}, "password": {u.NewPW}}))
	if !strings.Contains(body, "start-form") {
		t.Fatalf("portal sign-in: %s", body)
	}
	body = page(hc.PostForm(base+"/me/start", url.Values{"csrf": {csrf}, "old": {u.Old}, "password": {u.OldPW}}))
	if !strings.Contains(body, "Your move has started") {
		t.Fatalf("start: %s", body)
	}

	// The admin adds the other two with their passwords, through the running server.
	csv := strings.Join(strings.Split(w.CSV(), "\n")[2:], "\n")
	if err := os.WriteFile(w.csv, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := w.mustBanjia(t, "job", "add", "acme", "--accounts", w.csv); !strings.Contains(out, "2 accounts added or updated in job acme") {
		t.Fatalf("job add: %s", out)
	}
	var sts []*migrate.Status
	waitUntil(t, func() bool {
		raw := w.mustBanjia(t, "job", "status", "--json")
		sts = nil
		json.Unmarshal([]byte(raw), &sts)
		n := 0
		for _, st := range sts {
			for _, a := range st.Accounts {
				if a.State == "succeeded" {
					n++
				}
			}
		}
		return n == 3
	})
	if sts[0].Job.State != "running" || !sts[0].Attached {
		t.Fatalf("a member job with its window open keeps running, attached: %+v", sts[0].Job)
	}
	for _, u := range w.Users {
		migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	}
	table := w.mustBanjia(t, "job", "accounts", "acme")
	if !strings.Contains(table, "50 to import, 50 imported, 0 failed") {
		t.Fatalf("accounts table:\n%s", table)
	}

	// Pause through the socket; the server stops at a message boundary.
	w.mustBanjia(t, "job", "pause", "acme")
	if st := w.mustBanjia(t, "job", "status", "acme"); !strings.Contains(st, "paused") {
		t.Fatalf("status after pause:\n%s", st)
	}
	serveOut, err := stop()
	if err != nil {
		t.Fatalf("serve exit: %v\n%s", err, serveOut)
	}
	// logs -f outlives the server (it waits for the next runner): stop it.
	follow.Process.Signal(syscall.SIGTERM)
	follow.Wait()
	// logs -f printed the events and progress as JSON lines.
	kinds := map[string]bool{}
	progress := 0
	sc := bufio.NewScanner(strings.NewReader(followOut.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			continue
		}
		if k, ok := line["Kind"].(string); ok {
			kinds[k] = true
		}
		if _, ok := line["progress"]; ok {
			progress++
		}
	}
	for _, k := range []string{"account.enrolled", "job.accounts", "account.succeeded", "job.paused"} {
		if !kinds[k] {
			t.Errorf("logs -f --json lacks %s:\n%s", k, followOut)
		}
	}
	if progress == 0 {
		t.Errorf("logs -f --json printed no progress line")
	}

	// A restart brings the job back paused; resume reaches it.
	_, stop = w.startServe(t)
	if st := w.mustBanjia(t, "job", "status", "acme"); !strings.Contains(st, "paused") {
		t.Fatalf("after restart:\n%s", st)
	}
	w.mustBanjia(t, "job", "resume", "acme")
	if st := w.mustBanjia(t, "job", "status", "acme"); !strings.Contains(st, "running") {
		t.Fatalf("after resume:\n%s", st)
	}
	serveOut2, _ := stop()

	raw, _ := os.ReadFile(w.Path)
	logs := w.mustBanjia(t, "logs", "--json")
	for _, sec := range []string{"admin-pw-cli-31", u.OldPW, u.NewPW, w.Users[1].OldPW, w.Users[2].OldPW} {
		for name, text := range map[string]string{"serve output": serveOut + serveOut2, "logs": logs + followOut.String(), "state file": string(raw)} {
			if strings.Contains(text, sec) {
				t.Errorf("secret %q in the %s", sec, name)
			}
		}
	}
}
