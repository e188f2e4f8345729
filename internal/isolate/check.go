package isolate

// The checks the test-server packages run on their own instances: the
// point of running a server in a Namespace is that nothing of it outlives
// Stop, or a test binary killed before Stop.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/procstat"
)

// Instance is a server that runs in a Namespace, as CheckStop and
// CheckKilled see it.
type Instance struct {
	NS   *Namespace
	Dir  string       // its folder, which Stop removes
	Addr string       // where it answers
	Stop func() error // the server's Stop, which ends NS
}

// processes lists the namespace's live processes, each with its start time.
func (r *Namespace) processes() []procstat.Proc {
	if r == nil || r.nsRef == nil {
		return nil
	}
	var out []procstat.Proc
	for _, pid := range processesIn(r.pidNS) {
		if _, start, ok := procstat.Read(pid); ok {
			out = append(out, procstat.Proc{Pid: pid, Start: start})
		}
	}
	return out
}

// CheckStop stops in (twice: Stop must be safe to repeat) and checks that
// none of its processes is left, that unshare has exited, that its folder
// is gone and that answers(in.Addr) no longer holds. want names the three
// or more processes the instance must have before (for the failure message).
func CheckStop(t testing.TB, in Instance, want string, answers func(addr string) bool) {
	t.Helper()
	pids := in.NS.processes()
	if len(pids) < 3 {
		t.Fatalf("instance processes %v: want %s", pids, want)
	}
	t0 := time.Now()
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(t0).Round(time.Millisecond))
	if err := in.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// Stop checked that the namespace is empty; and each process seen
	// before is gone (same pid and start time).
	for _, p := range pids {
		if p.Alive() {
			t.Fatalf("process %d left after Stop", p.Pid)
		}
	}
	select {
	case <-in.NS.exited:
	default:
		t.Fatalf("unshare %d still running after Stop", in.NS.cmd.Process.Pid)
	}
	if _, err := os.Stat(in.Dir); !os.IsNotExist(err) {
		t.Fatalf("%s remains after Stop: %v", in.Dir, err)
	}
	if answers(in.Addr) {
		t.Fatal("still answering after Stop")
	}
}

// CheckKilled kills a test binary that runs an instance (as a panic or a
// -timeout would end it, skipping Stop) and checks that the instance's
// processes end with it and answers(its address) no longer holds. It runs
// the calling test again in a child test binary with env=1, where start
// starts the instance and CheckKilled never returns.
func CheckKilled(t *testing.T, env string, start func() (Instance, error), answers func(addr string) bool) {
	if os.Getenv(env) == "1" {
		in, err := start()
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println(in.NS.pidNS, in.Dir, in.Addr, in.NS.init.Pid)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1", "BANJIA_KEEP_SERVERS=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %v (%q)", err, line)
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] == "ERROR" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	ns, dir, addr, initPid := f[0], f[1], f[2], f[3]
	defer os.RemoveAll(dir)
	// Hold the namespace open, so that its number is not reused by another
	// instance's while we look for what is left in it.
	ref, err := os.Open("/proc/" + initPid + "/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if got, err := os.Readlink("/proc/" + initPid + "/ns/pid"); err != nil || got != ns {
		t.Fatalf("process %s is in %q (%v), not the helper's %s", initPid, got, err, ns)
	}
	if len(processesIn(ns)) == 0 {
		t.Fatalf("no processes in the helper's namespace %s", ns)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for len(processesIn(ns)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of the killed test's instance are left", processesIn(ns))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if answers(addr) {
		t.Fatalf("%s still answers", addr)
	}
}
