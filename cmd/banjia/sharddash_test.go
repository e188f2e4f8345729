package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestServeShardsDashboard serves two shards of one job, their accounts in
// several states, with banjia serve --shards and reads them as an admin
// would: a wrong password is refused, the job list and the job page (both
// of its pages) show the sums of both shards, every account of both with
// its state and reason in Chinese, no secret, and no pause or end is taken.
func TestServeShardsDashboard(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "accounts.csv")
	var b strings.Builder
	b.WriteString("old address,new address\n")
	const total = 130 // more than a page (100)
	for i := range total {
		fmt.Fprintf(&b, "m%03d@old.test,m%03d@new.test\n", i, i)
	}
	if err := os.WriteFile(csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	shards := filepath.Join(dir, "shards")
	out, err := exec.Command(binary, "--lang", "en", "--state", filepath.Join(dir, "banjia.db"), "job", "create", "acme", "--mode", "member",
		"--domain", "old.test", "--new-domain", "new.test", "--from", "imap+plain://127.0.0.1:1", "--to", "imap+plain://127.0.0.1:1",
		"--accounts", csv, "--shards", "2", "--shard-dir", shards).CombinedOutput()
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}

	// Each shard's accounts moved on as if it had run: by their number,
	// succeeded, failed, finished with failures, or not started.
	const secret = "sealed-SECRET-of-m000"
	var sum state.Counts
	n := map[state.AccountState]int{}
	perShard := [2]int{}
	reason := map[string]string{}
	for i := range 2 {
		store, err := state.Open(state.ShardPath(shards, i))
		if err != nil {
			t.Fatal(err)
		}
		job, err := store.Job("acme")
		if err != nil {
			t.Fatal(err)
		}
		accts, err := store.Accounts("acme")
		if err != nil {
			t.Fatal(err)
		}
		var changed []*state.Account
		for _, a := range accts {
			if !job.Shard.Owns(a.ID) {
				continue
			}
			var k int
			fmt.Sscanf(a.ID, "m%03d@", &k)
			switch k % 4 {
			case 0:
				a.State, a.Counts = state.AccountSucceeded, state.Counts{ToImport: int64(k), Imported: int64(k), Bytes: 1000}
				a.SourceSecret, a.TargetSecret = []byte(secret), []byte(secret)
			case 1:
				a.State, a.Reason = state.AccountFailed, "old server refused the password of "+a.ID
				reason[a.ID] = a.Reason
			case 2:
				a.State, a.Counts = state.AccountPartial, state.Counts{ToImport: 10, Imported: 7, Failed: 3}
				a.Reason = "3 messages too large for the new server (" + a.ID + ")"
				reason[a.ID] = a.Reason
			}
			n[a.State]++
			sum.Add(a.Counts)
			perShard[i]++
			changed = append(changed, a)
		}
		if err := store.PutAccounts("acme", changed...); err != nil {
			t.Fatal(err)
		}
		store.Close()
	}
	if perShard[0] == 0 || perShard[1] == 0 || perShard[0]+perShard[1] != total {
		t.Fatalf("accounts per shard: %v", perShard)
	}

	const password, token = "pw-Admin-Secret-123", "tok-Api-Secret-456"
	const viewerPW = "pw-Viewer-Secret-789"
	hash, err := bcrypt.GenerateFromPassword([]byte(viewerPW), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	viewers := filepath.Join(dir, "viewers")
	if err := os.WriteFile(viewers, []byte("olga:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// With no way to sign in it does not start: it would show every
	// account to anyone, or to no one.
	bare := exec.Command(binary, "--lang", "en", "serve", "--shards", shards, "--listen", "127.0.0.1:0")
	bare.Env = append(os.Environ(), "BANJIA_ADMIN_PASSWORD=", "BANJIA_ADMIN_TOKEN=")
	if out, err := bare.CombinedOutput(); err == nil || !strings.Contains(string(out), "serve --shards needs an admin password") {
		t.Fatalf("serve --shards with no sign-in: %v\n%s", err, out)
	}
	srv := exec.Command(binary, "--lang", "en", "serve", "--shards", shards, "--listen", "127.0.0.1:0", "--viewers-file", viewers)
	srv.Env = append(os.Environ(), "BANJIA_ADMIN_PASSWORD="+password, "BANJIA_ADMIN_TOKEN="+token)
	sout := &outBuffer{}
	srv.Stdout, srv.Stderr = sout, sout
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
	})
	var base string
	waitUntil(t, func() bool {
		m := regexp.MustCompile(`dashboard (http://\S+)/admin`).FindStringSubmatch(sout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})

	zh := func(key string) string {
		w, ok := state.Word("zh", key)
		if !ok {
			t.Fatalf("no Chinese word for %s", key)
		}
		return w
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	var pages []string // every page served, to look for secrets
	do := func(method, path, lang string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept-Language", lang)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		pages = append(pages, string(b))
		return resp.StatusCode, string(b)
	}
	csrf := func(page string) string {
		t.Helper()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no CSRF token in:\n%.1000s", page)
		}
		return m[1]
	}

	// Not signed in: the pages send to the sign-in.
	code, page := do("GET", "/admin", "en", nil)
	if code != 200 || !strings.Contains(page, `id="admin-login"`) {
		t.Fatalf("/admin before signing in: %d\n%.1000s", code, page)
	}
	code, page = do("POST", "/admin/login", "en", url.Values{"csrf": {csrf(page)}, "user": {"admin"}, "password": {"not-" + password}})
	if code != http.StatusUnauthorized || !strings.Contains(page, "Wrong admin user, password or token.") {
		t.Fatalf("a wrong password: %d\n%.1000s", code, page)
	}
	if code, page = do("GET", "/admin/jobs/acme", "en", nil); !strings.Contains(page, `id="admin-login"`) || strings.Contains(page, "m000@old.test") {
		t.Fatalf("the job page after a wrong password: %d\n%.1000s", code, page)
	}
	code, page = do("POST", "/admin/login", "zh", url.Values{"csrf": {csrf(page)}, "user": {"admin"}, "password": {password}})
	if code != 200 || !strings.Contains(page, `id="jobs"`) {
		t.Fatalf("sign-in: %d\n%.1000s", code, page)
	}

	// The job list: one line, the sums of both shards, in Chinese.
	code, page = do("GET", "/admin", "zh", nil)
	cell := func(page, class string) string {
		m := regexp.MustCompile(`class="n-` + class + `[^"]*"><a [^>]*>(\d+)</a>`).FindStringSubmatch(page)
		if m == nil {
			return "?"
		}
		return m[1]
	}
	want := map[string]int{"all": total, "succeeded": n[state.AccountSucceeded], "failed": n[state.AccountFailed],
		"partial": n[state.AccountPartial], "not_started": n[state.AccountNotStarted], "in_progress": 0, "abandoned": 0}
	for class, w := range want {
		if got := cell(page, class); got != fmt.Sprint(w) {
			t.Errorf("job list: %s = %s, want %d (both shards)", class, got, w)
		}
	}
	if strings.Count(page, `<tr id="job-`) != 1 || !strings.Contains(page, `class="st s-created with-failures">`+zh("created")) ||
		!strings.Contains(page, "banjia job pause|resume|end 任务名 --shards "+shards) {
		t.Errorf("job list (zh):\n%s", page)
	}
	for _, forbidden := range []string{`action="/admin/jobs/acme/pause"`, `action="/admin/jobs/acme/end"`, `action="/admin/jobs/acme/start"`, `/admin/jobs/new`, `/admin/outbox`} {
		if strings.Contains(page, forbidden) {
			t.Errorf("job list offers %s", forbidden)
		}
	}

	// The job page: the merged counts, and over its two pages every
	// account of both shards once, with its state and reason.
	seen := map[string]int{}
	for p := 1; p <= 2; p++ {
		code, page = do("GET", fmt.Sprintf("/admin/jobs/acme?page=%d", p), "zh", nil)
		if code != 200 {
			t.Fatalf("job page %d: %d\n%.1000s", p, code, page)
		}
		if !strings.Contains(page, sum.Line("zh")) {
			t.Errorf("job page %d lacks the merged counts %q", p, sum.Line("zh"))
		}
		wantRange := map[int]string{1: "1", 2: "101"}[p]
		if m := regexp.MustCompile(`id="page-range">([^<]*)<`).FindStringSubmatch(page); m == nil || !strings.Contains(m[1], wantRange) || !strings.Contains(m[1], fmt.Sprint(total)) {
			t.Errorf("job page %d's range: %v", p, m)
		}
		rows := regexp.MustCompile(`(?s)<tr id="acct-([^"]+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(page, -1)
		if len(rows) != map[int]int{1: 100, 2: total - 100}[p] {
			t.Errorf("job page %d: %d rows", p, len(rows))
		}
		for _, r := range rows {
			id, cells := r[1], html.UnescapeString(r[2])
			seen[id]++
			var k int
			fmt.Sscanf(id, "m%03d@", &k)
			wantState := map[int]string{0: "succeeded", 1: "failed", 2: "partial", 3: "not_started"}[k%4]
			word := ""
			if wantState != "not_started" {
				// A member-triggered job's account not started says its
				// member has not started: its class says the state.
				word = zh(wantState)
			}
			if !strings.Contains(cells, "s-"+map[int]string{0: "succeeded", 1: "failed", 2: "partial", 3: "not_started"}[k%4]) || !strings.Contains(cells, word) {
				t.Errorf("account %s: want %s, row:\n%s", id, wantState, cells)
			}
			if rs, ok := reason[id]; ok && !strings.Contains(cells, rs) {
				t.Errorf("account %s: no reason %q in:\n%s", id, rs, cells)
			}
		}
		for _, forbidden := range []string{`/admin/jobs/acme/pause`, `/admin/jobs/acme/end`, `/admin/jobs/acme/retry`, `id="add-form"`, `id="acct-form"`, `/settings`} {
			if strings.Contains(page, forbidden) {
				t.Errorf("job page %d offers %s", p, forbidden)
			}
		}
		if !strings.Contains(page, "banjia job pause|resume|end acme --shards "+shards) {
			t.Errorf("job page %d does not say how to pause", p)
		}
	}
	if len(seen) != total {
		t.Errorf("job pages show %d accounts, want %d", len(seen), total)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s shown %d times", id, c)
		}
	}
	// A filter pages the failed accounts of both shards.
	if _, page = do("GET", "/admin/jobs/acme?state=failed", "zh", nil); strings.Count(page, `<tr id="acct-`) != n[state.AccountFailed] {
		t.Errorf("failed filter: %d rows, want %d", strings.Count(page, `<tr id="acct-`), n[state.AccountFailed])
	}
	if code, _ = do("GET", "/admin/jobs/nosuch", "zh", nil); code != http.StatusNotFound {
		t.Errorf("a job that is not there: %d", code)
	}

	// Orders sent to the view are refused, and nothing changes.
	tok := csrf(page)
	for _, path := range []string{"/admin/jobs/acme/pause", "/admin/jobs/acme/end", "/admin/jobs/acme", "/admin/jobs/acme/accounts/abandon", "/admin/jobs"} {
		if code, _ := do("POST", path, "en", url.Values{"csrf": {tok}, "confirm": {"1"}}); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 404 or 405", path, code)
		}
	}
	req, _ := http.NewRequest("POST", base+"/api/jobs/acme/pause", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || (resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed) {
		t.Errorf("POST /api/jobs/acme/pause: %v %v", resp.Status, err)
	}
	if _, err := os.Stat(filepath.Join(shards, migrate.ShardOrdersFile)); !os.IsNotExist(err) {
		t.Errorf("an order file was written: %v", err)
	}
	for i := range 2 {
		store, err := state.OpenExisting(state.ShardPath(shards, i))
		if err != nil {
			t.Fatal(err)
		}
		job, err := store.Job("acme")
		store.Close()
		if err != nil || job.State != state.JobCreated {
			t.Errorf("shard %d after the POSTs: %v %v", i, job.State, err)
		}
	}

	// The token API is as it was.
	req, _ = http.NewRequest("GET", base+"/api/jobs/acme", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var merged migrate.Status
	err = json.NewDecoder(resp.Body).Decode(&merged)
	resp.Body.Close()
	if err != nil || len(merged.Accounts) != total {
		t.Errorf("API: %v, %d accounts", err, len(merged.Accounts))
	}

	// Signed out, the pages are closed again.
	do("POST", "/logout", "en", url.Values{"csrf": {tok}})
	if _, page = do("GET", "/admin/jobs/acme", "en", nil); strings.Contains(page, "m000@old.test") {
		t.Errorf("job page after signing out")
	}
	// A viewer of --viewers-file signs in as on banjia serve.
	code, page = do("POST", "/admin/login", "en", url.Values{"csrf": {csrf(page)}, "user": {"olga"}, "password": {viewerPW}})
	if code != 200 || !strings.Contains(page, `id="job-acme"`) {
		t.Errorf("a viewer's sign-in: %d\n%.1000s", code, page)
	}

	for _, p := range pages {
		for _, s := range []string{password, token, viewerPW, secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
			if strings.Contains(p, s) {
				t.Fatalf("a page shows a secret (%.6s...)", s)
			}
		}
	}
}
