package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
)

// The CLI tests run the real binary, as an admin would, against Dovecot.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "banjia-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "banjia")
	// Built without -race: these tests time and measure the real thing.
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build banjia: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cliWorld struct {
	*migratetest.World
	csv string
	env []string
}

func newCLIWorld(t *testing.T, o migratetest.Options) *cliWorld {
	o.NoStore = true
	w := &cliWorld{World: migratetest.New(t, o)}
	w.csv = filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(w.csv, []byte(w.CSV()), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *cliWorld) args(a ...string) []string {
	return append([]string{"--state", w.Path, "--lang", "en"}, a...)
}

// banjia runs the binary to completion.
func (w *cliWorld) banjia(t *testing.T, a ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, w.args(a...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), w.env...)
	err := cmd.Run()
	return out.String(), err
}

func (w *cliWorld) mustBanjia(t *testing.T, a ...string) string {
	t.Helper()
	out, err := w.banjia(t, a...)
	if err != nil {
		t.Fatalf("banjia %s: %v\n%s", strings.Join(a, " "), err, out)
	}
	return out
}

// start runs `job start` in the background.
func (w *cliWorld) start(t *testing.T, extra ...string) (*exec.Cmd, *outBuffer) {
	t.Helper()
	return w.start0(t, append([]string{"job", "start", w.Job}, extra...)...)
}

func (w *cliWorld) create(t *testing.T) {
	t.Helper()
	w.mustBanjia(t, "job", "create", w.Job, "--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
}

func (w *cliWorld) createPOP3(t *testing.T) {
	t.Helper()
	w.mustBanjia(t, "job", "create", w.Job, "--from", "pop3+plain://"+w.Src.POP3Addr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
}

func (w *cliWorld) checkAll(t *testing.T, before map[string]migratetest.Mailbox) int {
	t.Helper()
	total := 0
	for _, u := range w.Users {
		if u.OldPW == migratetest.WrongPassword {
			continue
		}
		total += migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	}
	return total
}

// TestEndToEnd20x500 is the core's acceptance run: 20 accounts of 500
// messages (Chinese and nested folders, flags, dates over years, attachments
// up to 5 MB, missing and duplicate Message-IDs) plus one account with a
// wrong password; then a re-run that must append nothing.
func TestEndToEnd20x500(t *testing.T) {
	if testing.Short() {
		t.Skip("long end-to-end run")
	}
	w := newCLIWorld(t, migratetest.Options{Accounts: 21, Messages: 500, MaxAttachment: 5 << 20, BadPassword: 20})
	before := w.Sources()
	w.create(t)
	start := time.Now()
	rssFile := filepath.Join(t.TempDir(), "peak-rss")
	w.env = []string{"BANJIA_PEAKRSS_FILE=" + rssFile}
	if p := os.Getenv("BANJIA_TEST_HEAPPROFILE"); p != "" {
		w.env = append(w.env, "BANJIA_HEAPPROFILE="+p)
	}
	cmd, out := w.start(t, "--parallel", "8", "--conns", "2")
	w.env = nil
	err := cmd.Wait()
	elapsed := time.Since(start)
	// One account has a wrong password: the exit code says an account failed.
	if code := exitCode(err); code != 2 || !strings.Contains(out.String(), "1 of 21 accounts failed") {
		t.Fatalf("job start: exit code %d (%v), want 2 with the failed account named\n%s", code, err, out)
	}
	n := w.checkAll(t, before)
	// Not rusage: a child shares the test's memory until exec, and the test
	// holds every source message to compare.
	rss, _ := os.ReadFile(rssFile)
	t.Logf("20x500: %d messages in %v = %.0f msg/s; peak RSS %s", n, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds(), strings.TrimSpace(string(rss)))
	if fi, err := os.Stat(w.Path); err == nil {
		t.Logf("state file: %d KB", fi.Size()/1024)
	}
	migratetest.Unchanged(t, before, w.Sources())

	status := w.mustBanjia(t, "job", "status", w.Job)
	if !strings.Contains(status, "completed") || !regexpLine(status, w.Job, "21", "0", "0", "20", "0", "1", "0") {
		t.Fatalf("job table:\n%s", status)
	}
	accts := w.mustBanjia(t, "job", "accounts", w.Job)
	if strings.Count(accts, "500 to import, 500 imported, 0 failed") != 20 {
		t.Fatalf("account lines:\n%s", accts)
	}
	if !strings.Contains(accts, "wrong user name, password or authorization code") {
		t.Fatalf("no clear reason for the wrong password:\n%s", accts)
	}
	// No password anywhere: outputs, JSON status, the event log, the raw state file.
	statusJSON := w.mustBanjia(t, "job", "status", w.Job, "--json")
	logsJSON := w.mustBanjia(t, "logs", "--json")
	raw, err := os.ReadFile(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for _, u := range w.Users {
		for _, pw := range []string{u.OldPW, u.NewPW} {
			for _, text := range []string{accts, status, out.String(), statusJSON, logsJSON, string(raw)} {
				if strings.Contains(text, pw) {
					hits++
				}
			}
		}
	}
	if hits != 0 {
		t.Fatalf("passwords found %d times in outputs or the state file", hits)
	}
	if dir := os.Getenv("BANJIA_RELIABILITY_OUT"); dir != "" {
		line := fmt.Sprintf("| secrets grep | %d passwords searched in the run's output, `job status` (text and JSON), `job accounts`, `logs --json` and the raw state file (%d KB) | %d accounts | 0 hits | the binary as shipped |\n",
			2*len(w.Users), len(raw)/1024, len(w.Users))
		os.WriteFile(filepath.Join(dir, "secrets.md"), []byte(line), 0o644)
	}

	// Re-run with the passwords supplied again: nothing is appended.
	count := w.TotalTarget()
	w.mustBanjia(t, "job", "add", w.Job, "--accounts", w.csv)
	rerun := time.Now()
	cmd, out = w.start(t, "--rerun", "--parallel", "8")
	if err := cmd.Wait(); exitCode(err) != 2 {
		t.Fatalf("re-run: %v, want exit code 2 (the wrong password again)\n%s", err, out)
	}
	if after := w.TotalTarget(); after != count {
		t.Fatalf("re-run changed the target from %d to %d messages", count, after)
	}
	t.Logf("no-op re-run of %d messages: %v", n, time.Since(rerun).Round(time.Millisecond))
}

// regexpLine reports whether some line starts with first and then has the
// given fields in order.
func regexpLine(text, first string, fields ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < len(fields)+1 || f[0] != first {
			continue
		}
		// Skip the state words (one or more) between the name and the numbers.
		nums := f[len(f)-len(fields):]
		if strings.Join(nums, " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

// killLoop SIGKILLs `job start` at random moments, then lets it finish. It
// returns how many kills landed while the job was still running and how many
// times the next run found messages a killed one had appended but not
// recorded.
func (w *cliWorld) killLoop(t *testing.T, kills int) (killed, settled int) {
	r := w.killLoopIn(t, kills, 100*time.Millisecond, 600*time.Millisecond)
	return r.killed, r.settled
}

// crashRun is what a kill loop did.
type crashRun struct {
	killed int // kills that landed while the job was still running
	// grew is how many of those kills found more messages on the target
	// than the kill before (than at the start, for the first): the killed
	// run had been copying.
	grew    int
	settled int // settledCount after the loop
}

// killLoopIn is killLoop with each kill a random lo..hi after its run
// started. The random delays come from a seed that is logged; setting
// BANJIA_CRASH_SEED to it replays the same delays (the moments the runs
// reach are up to the machine).
func (w *cliWorld) killLoopIn(t *testing.T, kills int, lo, hi time.Duration) (r crashRun) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BANJIA_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("BANJIA_CRASH_SEED=%q: %v", s, err)
		}
	}
	t.Logf("kill delays from seed %d (replay with BANJIA_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	last := w.TotalTarget()
	for k := 0; k < kills; k++ {
		cmd, out := w.start(t, "--parallel", "2", "--conns", "2")
		delay := lo + time.Duration(rng.Int64N(int64(hi-lo)))
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("job start failed: %v", err)
			}
			t.Logf("job finished before kill %d:\n%s", k+1, out)
			r.settled = w.settledCount(t)
			return r
		case <-time.After(delay):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		r.killed++
		n := w.TotalTarget()
		if n > last {
			r.grew++
		}
		if testing.Verbose() {
			t.Logf("kill %d after %v: %d messages on the target (%+d)", k+1, delay, n, n-last)
		}
		last = n
	}
	t.Logf("after %d kills: %d messages on the target; %d kills came after the target had grown since the one before", r.killed, last, r.grew)
	cmd, out := w.start(t)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	r.settled = w.settledCount(t)
	t.Logf("%d kills; %d times, messages appended before a kill were found on the target and not copied again", r.killed, r.settled)
	return r
}

func (w *cliWorld) settledCount(t *testing.T) int {
	return strings.Count(w.mustBanjia(t, "logs", "--job", w.Job), "already on the target from an interrupted run")
}

// TestCrashLoop kills `job start` with SIGKILL at 50 random moments over one
// job (between an APPEND and its checkpoint among them) and resumes it each
// time; then every mailbox must equal its source, nothing more, nothing less.
// The kills must hit copying: the target grows between a good share of
// them, and resumed runs find messages a killed one appended but did not
// record. The kill delays' seed is logged; BANJIA_CRASH_SEED=<seed> replays
// them.
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	w := newCLIWorld(t, migratetest.Options{Accounts: 8, Messages: 1500, MaxAttachment: 300 << 10, BadPassword: -1})
	before := w.Sources()
	w.create(t)
	start := time.Now()
	// A resumed run first waits for what the killed one left with the
	// server (about half a second after its last progress), so kills land
	// in that wait, at login and scan, and in copying. Later kills would
	// let the job finish before the fiftieth: pipelined APPENDs are fast.
	r := w.killLoopIn(t, 50, 50*time.Millisecond, 700*time.Millisecond)
	if r.killed < 50 {
		t.Fatalf("the job finished after %d kills; the suite promises 50", r.killed)
	}
	// Kills that all landed before copying would test nothing of the
	// kind: at least one in crashGrewShare found the target grown since
	// the kill before, and some run found what a killed one left.
	if r.grew*crashGrewShare < r.killed {
		t.Errorf("only %d of %d kills came after the target had grown since the one before: the kills did not hit copying", r.grew, r.killed)
	}
	if r.settled == 0 {
		t.Errorf("no resumed run found messages a killed run had appended but not recorded: the kills did not hit copying")
	}
	n := w.checkAll(t, before)
	if total := w.TotalTarget(); total != n {
		t.Fatalf("target holds %d messages, source %d", total, n)
	}
	migratetest.Unchanged(t, before, w.Sources())
	accts := w.mustBanjia(t, "job", "accounts", w.Job)
	if strings.Count(accts, "1500 to import, 1500 imported, 0 failed") != 8 {
		t.Fatalf("accounts:\n%s", accts)
	}
	if out := os.Getenv("BANJIA_RELIABILITY_OUT"); out != "" && !t.Failed() {
		line := fmt.Sprintf("| SIGKILL crash loop | %d kills of `job start` at random moments (50-700 ms into each run), resumed each time; %d of them after the target had grown since the one before | %d messages, 8 accounts | 0 lost, 0 duplicated; %d times a resumed run found messages appended but not recorded before a kill, and did not copy them again; %s | the binary as shipped |\n",
			r.killed, r.grew, n, r.settled, time.Since(start).Round(time.Second))
		os.WriteFile(filepath.Join(out, "crash.md"), []byte(line), 0o644)
	}
}

// crashGrewShare: at least one kill in this many must find the target
// grown since the kill before.
const crashGrewShare = 10

// TestPOP3ToIMAP: a POP3 maildrop lands in the target's INBOX byte for byte,
// stays whole on the source, survives SIGKILLs without loss or duplicates,
// and a re-run copies nothing.
func TestPOP3ToIMAP(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 3, Messages: 300, MaxAttachment: 400 << 10, BadPassword: -1, Folders: []string{"INBOX"}})
	before := w.Sources()
	w.createPOP3(t)
	w.killLoop(t, 3)
	total := 0
	for _, u := range w.Users {
		total += migratetest.SameBodies(t, u.Old, before[u.Old], w.Target(u))
	}
	if n := w.TotalTarget(); n != total || total != 900 {
		t.Fatalf("target %d messages, source %d", n, total)
	}
	migratetest.Unchanged(t, before, w.Sources())
	w.mustBanjia(t, "job", "add", w.Job, "--accounts", w.csv)
	cmd, out := w.start(t, "--rerun")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	if n := w.TotalTarget(); n != total {
		t.Fatalf("re-run changed the target to %d messages", n)
	}
	accts := w.mustBanjia(t, "job", "accounts", w.Job)
	if strings.Count(accts, "300 to import, 300 imported, 0 failed") != 3 {
		t.Fatalf("accounts:\n%s", accts)
	}
}

// TestPauseResumeEndFromAnotherShell drives a running job from other processes.
func TestPauseResumeEndFromAnotherShell(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 6, Messages: 300, BadPassword: -1})
	before := w.Sources()
	w.create(t)
	cmd, out := w.start(t, "--parallel", "2", "--conns", "1")
	waitUntil(t, func() bool { return w.TotalTarget() > 50 })
	follow, followOut := w.start0(t, "logs", "-f", "--job", w.Job)
	t0 := time.Now()
	w.mustBanjia(t, "job", "pause", w.Job)
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("pause took %v", d)
	}
	time.Sleep(300 * time.Millisecond)
	at := w.TotalTarget()
	time.Sleep(2 * time.Second)
	if n := w.TotalTarget(); n != at {
		t.Fatalf("%d messages appended after pause", n-at)
	}
	status := w.mustBanjia(t, "job", "status", w.Job)
	if !strings.Contains(status, "paused") {
		t.Fatalf("status while paused:\n%s", status)
	}
	logs := w.mustBanjia(t, "logs", "--job", w.Job)
	if !strings.Contains(logs, "job.paused") {
		t.Fatalf("logs:\n%s", logs)
	}
	// Filtered through the running job's socket: the creation and the
	// pause were this shell's.
	mine := strings.Split(strings.TrimSpace(w.mustBanjia(t, "logs", "--job", w.Job, "--who", "cli", "--format", "jsonl")), "\n")
	if len(mine) != 2 || !strings.Contains(mine[0], `"Kind":"job.created"`) || !strings.Contains(mine[1], `"Kind":"admin.pause"`) ||
		!strings.Contains(mine[1], `"Who":"`+migrate.CommandLine+`"`) {
		t.Fatalf("the command line's events while the job runs:\n%s", strings.Join(mine, "\n"))
	}
	w.mustBanjia(t, "job", "resume", w.Job)
	waitUntil(t, func() bool { return w.TotalTarget() > at+30 })
	w.mustBanjia(t, "job", "end", w.Job)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		// Ended with accounts abandoned: not every mailbox moved.
		if code := exitCode(err); code != 4 {
			t.Fatalf("job start after end: exit code %d (%v), want 4\n%s", code, err, out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("end did not reach the running job")
	}
	time.Sleep(1500 * time.Millisecond)
	follow.Process.Signal(syscall.SIGTERM)
	follow.Wait()
	for _, want := range []string{"job.started", "job.paused", "job.resumed", "job.ended", "account.abandoned", "imported"} {
		if !strings.Contains(followOut.String(), want) {
			t.Fatalf("logs -f lacks %q:\n%s", want, followOut)
		}
	}
	accts := w.mustBanjia(t, "job", "accounts", w.Job)
	if !strings.Contains(accts, "abandoned") {
		t.Fatalf("no abandoned account after end:\n%s", accts)
	}
	status = w.mustBanjia(t, "job", "status", w.Job)
	if !strings.Contains(status, "ended") {
		t.Fatalf("status after end:\n%s", status)
	}
	// What was copied is exact, even for accounts cut short: every target
	// message is a message of its source folder, copied at most once.
	copied := 0
	for _, u := range w.Users {
		copied += migratetest.PartOf(t, u.Old, before[u.Old], w.Target(u))
	}
	if copied <= at {
		t.Fatalf("%d messages on the target, %d before the resume", copied, at)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDemo runs `banjia demo` as the README says, with no mail server involved.
func TestDemo(t *testing.T) {
	cmd := exec.Command(binary, "demo", "--accounts", "2", "--messages", "60")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"verified:", "60 to import, 60 imported, 0 failed", "banjia migrate --from imaps://"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestMigrateOneMailbox is the imapsync-style single-account path: passwords
// from the environment and a file, never argv; a re-run copies nothing.
func TestMigrateOneMailbox(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 150, BadPassword: -1})
	u := w.Users[0]
	before := w.Sources()
	pwFile := filepath.Join(t.TempDir(), "to-pw")
	os.WriteFile(pwFile, []byte(u.NewPW+"\n"), 0o600)
	from := "imap+plain://" + u.Old + "@" + w.Src.IMAPAddr
	to := "imap+plain://" + u.New + "@" + w.Dst.IMAPAddr
	w.env = []string{"BANJIA_FROM_PASSWORD=" + u.OldPW}
	run := func() string {
		cmd, out := w.start0(t, "migrate", "--from", from, "--to", to, "--to-pass-file", pwFile)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		return out.String()
	}
	out := run()
	if !strings.Contains(out, "150 to import, 150 imported, 0 failed") {
		t.Fatalf("output:\n%s", out)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	n := w.TotalTarget()
	out = run()
	if after := w.TotalTarget(); after != n {
		t.Fatalf("re-run added %d messages", after-n)
	}
	if strings.Contains(out, u.OldPW) || strings.Contains(out, u.NewPW) {
		t.Fatal("a password was printed")
	}
	w.env = nil

	// A password in the URL is refused; no password source is a clear error.
	out, err := w.banjia(t, "migrate", "--from", "imap+plain://"+u.Old+":"+u.OldPW+"@"+w.Src.IMAPAddr, "--to", to)
	if err == nil || !strings.Contains(out, "do not put the password in the URL") || strings.Contains(out, u.OldPW) {
		t.Fatalf("password in URL: %v\n%s", err, out)
	}
	out, err = w.banjia(t, "migrate", "--from", from, "--to", to, "--to-pass-file", pwFile)
	if err == nil || !strings.Contains(out, "no old mailbox's password") {
		t.Fatalf("no password: %v\n%s", err, out)
	}
}

// start0 runs any banjia command in the background.
// outBuffer collects a running process's output; tests read it while the
// process still writes.
type outBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *outBuffer) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *outBuffer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func (w *cliWorld) start0(t *testing.T, a ...string) (*exec.Cmd, *outBuffer) {
	t.Helper()
	cmd := exec.Command(binary, w.args(a...)...)
	var out outBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), w.env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out
}

// TestSIGTERMStopsCleanly: a signal stops at a message boundary, saves the
// checkpoints and exits; the next start finishes with nothing lost or doubled.
func TestSIGTERMStopsCleanly(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 3, Messages: 300, BadPassword: -1})
	before := w.Sources()
	w.create(t)
	cmd, out := w.start(t, "--parallel", "3", "--conns", "1")
	waitUntil(t, func() bool { return w.TotalTarget() > 60 })
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not stop the job")
	}
	if !strings.Contains(out.String(), "stopping at the next message boundary") || !strings.Contains(out.String(), "progress is saved") {
		t.Fatalf("output:\n%s", out)
	}
	cmd, out = w.start(t)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	n := w.checkAll(t, before)
	if total := w.TotalTarget(); total != n {
		t.Fatalf("target %d messages, source %d", total, n)
	}
}

// TestCheckFailureClasses runs `banjia check` against real local listeners,
// one per failure class, and reads the step that failed and its reason.
func TestCheckFailureClasses(t *testing.T) {
	dovecot.Require(t)
	s := dovecot.StartT(t, dovecot.Options{TLS: true})
	s.AddUser("u@x.test", "pw")
	s.AddRefusedUser("locked@x.test", "pw", "Account_locked_by_the_administrator")
	s.AddRefusedUser("noimap@x.test", "pw", "IMAP_access_is_disabled_for_this_account")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, s.CertPEM, 0o644)
	w := &cliWorld{World: &migratetest.World{Path: filepath.Join(t.TempDir(), "s.db")}}
	type report struct {
		Role, Account string
		OK            bool
		Steps         []struct {
			Name, Detail, Hint string
			OK                 bool
		}
	}
	cases := []struct {
		name, from, pw string
		extra          []string
		step, want     string
	}{
		{"passes with the CA", "imaps://u@x.test@" + s.IMAPSAddr, "pw", []string{"--ca-file", ca}, "", ""},
		{"passes over STARTTLS", "imap://u@x.test@" + s.IMAPAddr, "pw", []string{"--ca-file", ca}, "", ""},
		{"closed port", "imap+plain://u@x.test@127.0.0.1:1", "pw", nil, "tcp", "connection refused"},
		{"self-signed certificate", "imaps://u@x.test@" + s.IMAPSAddr, "pw", nil, "tls", "is not trusted"},
		{"TLS spoken to a plain port", "imaps://u@x.test@" + s.IMAPAddr, "pw", nil, "tls", "does not speak TLS"},
		{"wrong password", "imap+plain://u@x.test@" + s.IMAPAddr, "nope", nil, "login", "wrong user name, password or authorization code"},
		{"unknown host", "imaps://u@x.test@no-such-host.invalid", "pw", nil, "dns", "cannot resolve host"},
		{"account locked", "imap+plain://locked@x.test@" + s.IMAPAddr, "pw", nil, "login", "refused"},
		{"protocol disabled", "imap+plain://noimap@x.test@" + s.IMAPAddr, "pw", nil, "login", "refused"},
		{"POP3 wrong password", "pop3+plain://u@x.test@" + s.POP3Addr, "nope", nil, "login", "wrong user name, password or authorization code"},
		{"POP3 with the CA", "pop3s://u@x.test@" + s.POP3SAddr, "pw", []string{"--ca-file", ca}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.env = []string{"BANJIA_FROM_PASSWORD=" + c.pw}
			cmd, out := w.start0(t, append([]string{"check", "--from", c.from, "--json"}, c.extra...)...)
			err := cmd.Wait()
			var reps []report
			if jerr := json.Unmarshal([]byte(out.String()), &reps); jerr != nil || len(reps) != 1 {
				t.Fatalf("output: %v\n%s", jerr, out)
			}
			r := reps[0]
			if c.step == "" {
				if err != nil || !r.OK {
					t.Fatalf("check failed: %v\n%s", err, out)
				}
				return
			}
			if err == nil || r.OK {
				t.Fatalf("check passed, want a failure at %s:\n%s", c.step, out)
			}
			last := r.Steps[len(r.Steps)-1]
			if last.Name != c.step || !strings.Contains(last.Detail, c.want) || last.Hint == "" {
				t.Fatalf("failed at %s: %q (hint %q), want %s: %q", last.Name, last.Detail, last.Hint, c.step, c.want)
			}
			switch c.name {
			case "account locked":
				if !strings.Contains(last.Hint, "locked") {
					t.Fatalf("hint %q", last.Hint)
				}
			case "protocol disabled":
				if !strings.Contains(last.Hint, "protocol is disabled") {
					t.Fatalf("hint %q", last.Hint)
				}
			}
			if strings.Contains(out.String(), `"`+c.pw+`"`) {
				t.Fatal("the password is in the report")
			}
		})
	}
	// A whole accounts CSV, concurrently, with a summary line.
	csv := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(csv, []byte("u@x.test,u@x.test,pw,pw\nu@x.test2,u@x.test,bad,pw\n"), 0o600)
	w.env = nil
	out, err := w.banjia(t, "check", "--from", "imap+plain://"+s.IMAPAddr, "--to", "imap+plain://"+s.IMAPAddr, "--accounts", csv)
	if err == nil || !strings.Contains(out, "4 checks: 3 passed, 1 failed") {
		t.Fatalf("CSV check: %v\n%s", err, out)
	}
	// Verification is on unless asked off, and asking says so.
	w.env = []string{"BANJIA_FROM_PASSWORD=pw"}
	out, err = w.banjia(t, "check", "--from", "imaps://u@x.test@"+s.IMAPSAddr, "--insecure")
	if err != nil || !strings.Contains(out, "warning: TLS certificates of "+s.IMAPSAddr+" are not verified") {
		t.Fatalf("--insecure: %v\n%s", err, out)
	}
}

// TestDateRange: --since copies only mail that arrived since then, from IMAP
// (INTERNALDATE) and from POP3 (the headers' date), and counts the rest as skipped.
func TestDateRange(t *testing.T) {
	since := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, proto := range []string{"imap", "pop3"} {
		t.Run(proto, func(t *testing.T) {
			w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 200, BadPassword: -1, Folders: []string{"INBOX"}})
			u := w.Users[0]
			before := w.Sources()[u.Old]
			from := "imap+plain://" + w.Src.IMAPAddr
			if proto == "pop3" {
				from = "pop3+plain://" + w.Src.POP3Addr
			}
			w.mustBanjia(t, "job", "create", w.Job, "--from", from, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv, "--since", since.Format("2006-01-02"))
			cmd, out := w.start(t)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			want := migratetest.Mailbox{}
			for _, m := range before["INBOX"] {
				if !m.Date.Before(since) {
					want["INBOX"] = append(want["INBOX"], m)
				}
			}
			n := len(want["INBOX"])
			if n == 0 || n == len(before["INBOX"]) {
				t.Fatalf("%d of %d messages in range: the corpus does not straddle the date", n, len(before["INBOX"]))
			}
			migratetest.SameBodies(t, u.Old, want, w.Target(u))
			accts := w.mustBanjia(t, "job", "accounts", w.Job, "--json")
			if !strings.Contains(accts, fmt.Sprintf(`"ToImport": %d`, n)) || !strings.Contains(accts, fmt.Sprintf(`"Skipped": %d`, len(before["INBOX"])-n)) {
				t.Fatalf("counts for %d in range:\n%s", n, accts)
			}
		})
	}
}

// TestGmailLabelsCopiedOnce: with the Gmail preset a message filed under
// several labels (and again in [Gmail]/All Mail) is copied once, from the
// first label folder; All Mail keeps only what no label had.
func TestGmailLabelsCopiedOnce(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 0, BadPassword: -1})
	u := w.Users[0]
	d := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	msg := func(id, text string) dovecot.Message {
		h := ""
		if id != "" {
			h = "Message-ID: <" + id + "@mail.gmail.com>\r\n"
		}
		return dovecot.Message{Body: []byte(h + "Subject: " + text + "\r\n\r\n" + text + "\r\n"), Date: d, Flags: []string{`\Seen`}}
	}
	a, b, c, only := msg("a", "in the inbox"), msg("b", "also in the inbox"), msg("c", "labelled Work"), msg("d", "archived, no label")
	for folder, msgs := range map[string][]dovecot.Message{
		"INBOX": {a, b}, "Work": {c}, "[Gmail]/All Mail": {a, b, c, only},
	} {
		if err := w.Src.Deliver(u.Old, folder, msgs); err != nil {
			t.Fatal(err)
		}
	}
	w.mustBanjia(t, "job", "create", w.Job, "--provider", "gmail", "--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
	for run := 0; run < 2; run++ {
		cmd, out := w.start(t, "--rerun")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		got := w.Target(u)
		if len(got["INBOX"]) != 2 || len(got["Work"]) != 1 || len(got["[Gmail]/All Mail"]) != 1 || w.TotalTarget() != 4 {
			t.Fatalf("run %d: INBOX %d, Work %d, All Mail %d, total %d", run, len(got["INBOX"]), len(got["Work"]), len(got["[Gmail]/All Mail"]), w.TotalTarget())
		}
		if !bytes.Equal(got["[Gmail]/All Mail"][0].Body, only.Body) {
			t.Fatalf("All Mail kept %q", got["[Gmail]/All Mail"][0].Body)
		}
		w.mustBanjia(t, "job", "add", w.Job, "--accounts", w.csv)
	}
	accts := w.mustBanjia(t, "job", "accounts", w.Job)
	if !strings.Contains(accts, "4 to import, 4 imported, 0 failed") {
		t.Fatalf("accounts:\n%s", accts)
	}
}

// TestDelegatedCLI: `job create --mode delegated` with an accounts file of
// addresses only and the migration admin's password from the environment;
// the whole domain moves and the admin password appears nowhere.
func TestDelegatedCLI(t *testing.T) {
	const admin, adminPW = "migration-admin", "Adm1n-pa55-do-not-leak"
	w := newCLIWorld(t, migratetest.Options{Accounts: 3, Messages: 60, BadPassword: -1, SourceAdmin: admin, SourceAdminPW: adminPW})
	before := w.Sources()
	var b strings.Builder
	b.WriteString("old address,new address,,new password\n")
	for _, u := range w.Users {
		fmt.Fprintf(&b, "%s,%s,,%s\n", u.Old, u.New, u.NewPW)
	}
	if err := os.WriteFile(w.csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = []string{"BANJIA_FROM_ADMIN_PASSWORD=" + adminPW}

	// Without delegation the file is refused: it holds no old passwords.
	out, err := w.banjia(t, "job", "create", "nodeleg", "--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
	if err == nil || !strings.Contains(out, "no old password for u00@old.test (or create the job with --mode delegated or --mode member)") {
		t.Fatalf("create without old passwords: %v\n%s", err, out)
	}
	out, err = w.banjia(t, "job", "create", "badtpl", "--mode", "delegated", "--from-admin", admin, "--admin-login", "template",
		"--login-template", "DOMAIN\\admin", "--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
	if err == nil || !strings.Contains(out, "names no member: use {user} or {alias}") {
		t.Fatalf("template without the member: %v\n%s", err, out)
	}

	created := w.mustBanjia(t, "job", "create", w.Job, "--mode", "delegated", "--from-admin", admin, "--admin-login", "template",
		"--login-template", "{user}*{admin}", "--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", w.csv)
	cmd, run := w.start(t)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("job start: %v\n%s", err, run)
	}
	n := w.checkAll(t, before)
	migratetest.Unchanged(t, before, w.Sources())
	accts := w.mustBanjia(t, "job", "accounts", w.Job)
	if strings.Count(accts, "60 to import, 60 imported, 0 failed") != 3 {
		t.Fatalf("accounts:\n%s", accts)
	}
	raw, err := os.ReadFile(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	logs := w.mustBanjia(t, "logs", "--json")
	status := w.mustBanjia(t, "job", "status", w.Job, "--json")
	for _, text := range []string{created, run.String(), accts, logs, status, string(raw)} {
		if strings.Contains(text, adminPW) {
			t.Fatal("the admin password leaked into an output or the state file")
		}
	}
	t.Logf("%d messages moved with the admin's login only", n)
}

// TestGraphDomainCLI: a delegated job over Microsoft Graph (the emulator,
// reached by the real SDK inside the binary) whose accounts come from the
// directory: every user of the domain, none of another, moves with the app's
// secret only; the target is reached through a master user.
func TestGraphDomainCLI(t *testing.T) {
	srv := graphtest.New(t)
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", MasterUser: "master", MasterPassword: "master-pw"})
	names := []string{"alice", "bob", "carol"}
	for i, n := range names {
		var msgs []*graphtest.Message
		for _, m := range mailgen.Mailbox(n+"@contoso.test", mailgen.Options{Seed: int64(i + 1), Messages: 20, Folders: []string{"INBOX"}}) {
			msgs = append(msgs, &graphtest.Message{MIME: m.Body, Received: m.Date, Read: len(m.Flags) > 0})
		}
		srv.AddMailbox(&graphtest.Mailbox{Mail: n + "@contoso.test", Folders: []*graphtest.Folder{{Name: "Inbox", WellKnown: "inbox", Messages: msgs}}})
		if err := dst.AddUser(n+"@new.test", "unused-"+n); err != nil {
			t.Fatal(err)
		}
	}
	srv.AddMailbox(&graphtest.Mailbox{Mail: "dave@elsewhere.test", Folders: []*graphtest.Folder{{Name: "Inbox", WellKnown: "inbox"}}})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CA, 0o600); err != nil {
		t.Fatal(err)
	}
	w := &cliWorld{World: &migratetest.World{T: t, Path: filepath.Join(dir, "banjia.db"), Job: "graph"}}
	w.env = []string{"BANJIA_FROM_ADMIN_PASSWORD=" + srv.Secret, "BANJIA_TO_ADMIN_PASSWORD=master-pw"}
	from := fmt.Sprintf("graph://%s@%s:%d?tenant=%s", srv.ClientID, srv.Host, srv.Port, srv.Tenant)
	created := w.mustBanjia(t, "job", "create", "graph", "--mode", "delegated", "--from", from, "--ca-file", ca,
		"--domain", "contoso.test", "--new-domain", "new.test", "--to", "imap+plain://"+dst.IMAPAddr, "--to-admin", "master")
	if !strings.Contains(created, "created with 3 accounts") {
		t.Fatalf("create:\n%s", created)
	}
	cmd, run := w.start0(t, "job", "start", "graph")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("job start: %v\n%s", err, run)
	}
	accts := w.mustBanjia(t, "job", "accounts", "graph")
	if strings.Count(accts, "20 to import, 20 imported, 0 failed") != 3 || strings.Contains(accts, "dave") {
		t.Fatalf("accounts:\n%s", accts)
	}
	for _, n := range names {
		if got := migratetest.Count(t, dst, n+"@new.test*master", "master-pw"); got != 20 {
			t.Fatalf("%s: %d messages on the target", n, got)
		}
	}
	raw, _ := os.ReadFile(w.Path)
	for _, text := range []string{created, run.String(), accts, string(raw)} {
		if strings.Contains(text, srv.Secret) || strings.Contains(text, "master-pw") {
			t.Fatal("a secret leaked into an output or the state file")
		}
	}
}

// exitCode is a finished command's exit code (0 for no error, -1 when it
// did not exit by itself).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
