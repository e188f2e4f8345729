package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestShardsControlAndAdd drives a sharded member-triggered job (its
// shards wait for members, so no mail server is needed) as an operator
// would: each shard process refuses a state file of another index, an
// Indexed Job's pod without the shard count is refused, pause, resume and
// end given once reach both running shards, the merged status shows one
// job, and an account added to the wrong shard is refused with the right
// one named.
func TestShardsControlAndAdd(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "banjia.db")
	csv := filepath.Join(dir, "accounts.csv")
	var b strings.Builder
	b.WriteString("old address,new address\n")
	for i := range 20 {
		fmt.Fprintf(&b, "m%02d@old.test,m%02d@new.test\n", i, i)
	}
	if err := os.WriteFile(csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"--lang", "en"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(nil, args...)
		if err != nil {
			t.Fatalf("banjia %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	create := []string{"--state", main, "job", "create", "acme", "--mode", "member", "--domain", "old.test", "--new-domain", "new.test",
		"--from", "imap+plain://127.0.0.1:1", "--to", "imap+plain://127.0.0.1:1", "--accounts", csv}
	if out, err := run(nil, append(create, "--shards", "2")...); err == nil || !strings.Contains(out, "--shards needs --shard-dir") {
		t.Fatalf("--shards without its folder: %v\n%s", err, out)
	}
	shards := filepath.Join(dir, "shards")
	if out := must(append(create, "--shards", "2", "--shard-dir", shards)...); !strings.Contains(out, "20 accounts in 2 shards") {
		t.Fatalf("create with shards:\n%s", out)
	}
	s0, s1 := state.ShardPath(shards, 0), state.ShardPath(shards, 1)

	if out, err := run(nil, "--state", s0, "job", "start", "acme", "--shard", "1/2"); err == nil || !strings.Contains(out, "holds shard 0/2") {
		t.Fatalf("shard 0's file started as shard 1: %v\n%s", err, out)
	}
	// Each shard needs a session to list and one to copy: 3 for the job
	// cannot be shared by 2 shards.
	if out, err := run(nil, "--state", s1, "job", "start", "acme", "--per-host", "3"); err == nil || !strings.Contains(out, "give --per-host 4 or more") {
		t.Fatalf("--per-host 3 over 2 shards: %v\n%s", err, out)
	}
	if out, err := run([]string{"JOB_COMPLETION_INDEX=1"}, "--state", main, "job", "start", "acme"); err == nil || !strings.Contains(out, "BANJIA_SHARDS") {
		t.Fatalf("an Indexed Job's pod without the shard count: %v\n%s", err, out)
	}

	// As in a cluster: each shard's state file on a volume of its own, the
	// orders and the shards' published statuses on one they all share.
	cluster := filepath.Join(dir, "cluster")
	os.Mkdir(cluster, 0o700)
	procs := make([]*exec.Cmd, 2)
	startShard := func(i int, p string) {
		// The index from the Indexed Job's environment.
		cmd := exec.Command(binary, "--state", p, "--lang", "en", "job", "start", "acme")
		cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i), "BANJIA_SHARDS=2",
			"BANJIA_CONTROL_FILE="+filepath.Join(cluster, "control.json"))
		out := &outBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		procs[i] = cmd
	}
	for i, p := range []string{s0, s1} {
		startShard(i, p)
	}
	attached := func(want state.JobState) {
		t.Helper()
		waitUntil(t, func() bool {
			for _, p := range []string{s0, s1} {
				out, err := run(nil, "job", "status", "acme", "--state", p)
				if err != nil || !regexp.MustCompile(`acme\s+`+string(want)).MatchString(out) {
					return false
				}
			}
			// What the shards publish, for a machine that sees only the
			// shared volume.
			out, err := run(nil, "job", "status", "acme", "--shards", cluster)
			return err == nil && regexp.MustCompile(`acme\s+`+string(want)+`\s+first pass\s+2\d\s`).MatchString(out)
		})
	}
	attached(state.JobRunning)
	table := must("job", "status", "acme", "--shards", shards)
	if !strings.Contains(table, "2 shards:") || !regexp.MustCompile(`acme\s+running\s+first pass\s+20\s+20\s`).MatchString(table) {
		t.Fatalf("merged table:\n%s", table)
	}
	if out := must("job", "accounts", "acme", "--state", s0, "--state", s1); strings.Count(out, "@old.test") != 20 {
		t.Fatalf("merged accounts:\n%s", out)
	}

	// banjia serve --shards: the same merged view as JSON, with the token.
	srv := exec.Command(binary, "serve", "--shards", cluster, "--listen", "127.0.0.1:0")
	srv.Env = append(os.Environ(), "BANJIA_ADMIN_TOKEN=s3cret")
	sout := &outBuffer{}
	srv.Stdout, srv.Stderr = sout, sout
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
	})
	var api string
	waitUntil(t, func() bool {
		m := regexp.MustCompile(`(http://\S+)/api/jobs`).FindStringSubmatch(sout.String())
		if m != nil {
			api = m[1]
		}
		return m != nil
	})
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", api+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/api/jobs/acme", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("serve --shards without the token: %d", code)
	}
	if code, body := get("/api/jobs", "s3cret"); code != 200 || !strings.Contains(body, `"acme"`) {
		t.Fatalf("serve --shards jobs: %d %s", code, body)
	}
	code, body := get("/api/jobs/acme", "s3cret")
	var merged migrate.Status
	if code != 200 || json.Unmarshal([]byte(body), &merged) != nil || len(merged.Accounts) != 20 || merged.Job.State != state.JobRunning {
		t.Fatalf("serve --shards status: %d %.500s", code, body)
	}
	if regexp.MustCompile(`(Source|Target|AdminSecret|SourceAdmin)Secret"`).MatchString(body) {
		t.Fatalf("serve --shards shows secrets: %.500s", body)
	}

	// Through the order file alone, as on a machine that holds no shard.
	if out := must("job", "pause", "acme", "--shards", cluster); !strings.Contains(out, "0 reached at once") {
		t.Fatalf("pause through the order file:\n%s", out)
	}
	attached(state.JobPaused)
	// A pod killed while its job is paused starts again and waits, paused.
	procs[0].Process.Signal(syscall.SIGKILL)
	procs[0].Wait()
	startShard(0, s0)
	waitUntil(t, func() bool {
		out, err := run(nil, "job", "status", "acme", "--state", s0, "--json")
		var sts []*migrate.Status
		return err == nil && json.Unmarshal([]byte(out), &sts) == nil && len(sts) == 1 && sts[0].Attached && sts[0].Job.State == state.JobPaused
	})
	must("job", "resume", "acme", "--shards", cluster)
	attached(state.JobRunning)
	// And through the shards' own sockets, here.
	for _, op := range []string{"pause", "resume"} {
		if out := must("job", op, "acme", "--shards", shards); !strings.Contains(out, "2 reached at once") {
			t.Fatalf("%s through the sockets:\n%s", op, out)
		}
		attached(map[string]state.JobState{"pause": state.JobPaused, "resume": state.JobRunning}[op])
	}

	// An account goes to its own shard: the other refuses it by name.
	other := ""
	for j := 0; other == ""; j++ {
		if a := fmt.Sprintf("late%d@old.test", j); state.ShardOf(a, 2) == 1 {
			other = a
		}
	}
	late := filepath.Join(dir, "late.csv")
	os.WriteFile(late, []byte("old address,new address\n"+other+",late@new.test\n"), 0o600)
	if out, err := run(nil, "--state", s0, "job", "add", "acme", "--accounts", late); err == nil || !strings.Contains(out, "belongs to shard 1/2") {
		t.Fatalf("shard 0 took %s: %v\n%s", other, err, out)
	}
	must("--state", s1, "job", "add", "acme", "--accounts", late)

	// A copy of the whole job's file run as shard 1 becomes shard 1's: with
	// shard 0's file it shows every account once.
	cp := filepath.Join(dir, "copy.db")
	for _, ext := range []string{"", ".key"} {
		b, err := os.ReadFile(main + ext)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(cp+ext, b, 0o600)
	}
	whole := exec.Command(binary, "--state", cp, "job", "start", "acme", "--shard", "1/2")
	wout := &outBuffer{}
	whole.Stdout, whole.Stderr = wout, wout
	if err := whole.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if whole.ProcessState == nil {
			whole.Process.Kill()
			whole.Wait()
		}
	})
	waitUntil(t, func() bool { return strings.Contains(wout.String(), "now holds shard 1/2") })
	must("--state", cp, "job", "end", "acme")
	whole.Wait()
	if out, err := run(nil, "--state", cp, "job", "start", "acme", "--shard", "0/2"); err == nil || !strings.Contains(out, "holds shard 1/2") {
		t.Fatalf("the copy started again as shard 0: %v\n%s", err, out)
	}
	if out := must("job", "accounts", "acme", "--state", s0, "--state", cp); strings.Count(out, "@old.test") != 20 {
		t.Fatalf("shard 0 and the copy run as shard 1:\n%s", out)
	}

	must("job", "end", "acme", "--shards", cluster)
	for i, p := range procs {
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if code := exitCode(err); code != exitUnfinished {
				t.Fatalf("shard %d ended with exit code %d, want %d", i, code, exitUnfinished)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("shard %d still runs after the job was ended", i)
		}
	}
	table = must("job", "status", "acme", "--shards", shards)
	if !regexp.MustCompile(`acme\s+ended\s+first pass\s+21\s+0\s+0\s+0\s+0\s+0\s+21`).MatchString(table) {
		t.Fatalf("merged table after the end:\n%s", table)
	}
	// Logs merged: both shards' ends, in time order.
	if out := must("job", "logs", "acme", "--shards", shards, "--kind", "job"); strings.Count(out, "job.ended") != 2 {
		t.Fatalf("merged logs:\n%s", out)
	}
}
