package cyrus

// The server runs inside its own mount and pid namespaces, made by
// unshare(1): the namespace's first process is a root shell that runs the
// server and waits for it, so killing that shell makes the kernel end every
// other process of the instance, and the instance's mounts (its private
// /dev, whose /dev/log goes to this package's syslog reader) vanish with it.
// Nothing is found or signalled by name. (A copy of this file lives in
// internal/courier.)

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const unshareBin = "/usr/bin/unshare"

// nsRun is one instance's unshare process and the namespace under it.
type nsRun struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when unshare has exited (and was reaped)
	init   proc          // the namespace's first process (pid 1 inside)
	pidNS  string        // its pid namespace, as /proc/PID/ns/pid reads: "pid:[...]"
	// nsRef holds the pid namespace open until stop has checked it is
	// empty: a freed namespace's number is soon reused by a new one (another
	// test's instance), which must not be mistaken for ours.
	nsRef *os.File
}

// startNS runs script with /bin/sh inside new mount and pid namespaces,
// output to logPath. unshare dies with the test binary (Pdeathsig) and takes
// the namespace with it (--kill-child), so a crashed or timed-out test
// leaves no server behind.
func startNS(script, logPath string) (*nsRun, error) {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer stdin.Close()
	// A file, never a pipe: the servers' processes keep the descriptors.
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(unshareBin, "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
		"--propagation", "private", "/bin/sh", "-e", script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, out
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", unshareBin, err)
	}
	r := &nsRun{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if kids := childrenOf(cmd.Process.Pid); len(kids) > 0 {
			r.init = kids[0]
			path := fmt.Sprintf("/proc/%d/ns/pid", r.init.pid)
			if f, err := os.Open(path); err == nil {
				ns, err := os.Readlink(path)
				// Still the same process (not a reused pid)?
				if _, start, ok := procStat(r.init.pid); err == nil && ok && start == r.init.start {
					r.pidNS, r.nsRef = ns, f
					return r, nil
				}
				f.Close()
			}
		}
		select {
		case <-r.exited:
			return r, fmt.Errorf("unshare exited at once (%v)", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, errors.New("unshare started no process within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// running says whether the namespace's first process is still there.
func (r *nsRun) running() bool {
	select {
	case <-r.exited:
		return false
	default:
	}
	_, start, ok := procStat(r.init.pid)
	return ok && start == r.init.start && !zombie(r.init.pid)
}

// stop kills the namespace's first process by pid (the kernel then kills
// all others in the namespace), waits for unshare to reap it and exit, and
// checks that no process of the namespace is left.
func (r *nsRun) stop() error {
	if r == nil || r.cmd == nil {
		return nil
	}
	var errs []error
	if r.init.pid != 0 {
		if _, start, ok := procStat(r.init.pid); ok && start == r.init.start {
			syscall.Kill(r.init.pid, syscall.SIGKILL)
		}
	}
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		// Our own child, by pid; --kill-child then ends the namespace.
		syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.exited
		errs = append(errs, fmt.Errorf("unshare %d did not exit within 10s of its namespace's end and was killed", r.cmd.Process.Pid))
	}
	if left := r.waitEmpty(5 * time.Second); len(left) > 0 {
		errs = append(errs, fmt.Errorf("processes %v of %s survive the end of its first process", left, r.pidNS))
	}
	if r.nsRef != nil {
		r.nsRef.Close()
		r.nsRef = nil
	}
	return errors.Join(errs...)
}

// waitEmpty waits until no live process is in the namespace and returns
// those still there at the deadline.
func (r *nsRun) waitEmpty(within time.Duration) []int {
	deadline := time.Now().Add(within)
	for {
		left := processesIn(r.pidNS)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesIn lists the live (not zombie) processes in a pid namespace
// (named reliably only while something holds it open, as nsRun.nsRef does).
func processesIn(pidNS string) []int {
	if pidNS == "" {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); err == nil && ns == pidNS && !zombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// proc names one process by pid and start time, so a pid the kernel has
// since reused for something else is never mistaken for ours.
type proc struct {
	pid   int
	start string
}

// procStat returns the parent pid and start time from /proc/PID/stat.
func procStat(pid int) (ppid int, start string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// The command name may hold spaces and parentheses; fields resume after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[19], true
}

func childrenOf(pid int) []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, start, ok := procStat(p); ok && ppid == pid {
			out = append(out, proc{p, start})
		}
	}
	return out
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// nsUsable checks once that this machine lets us make mount and pid
// namespaces (a container without CAP_SYS_ADMIN does not).
func nsUsable() error {
	if _, err := os.Stat(unshareBin); err != nil {
		return fmt.Errorf("%s missing (util-linux)", unshareBin)
	}
	out, err := exec.Command(unshareBin, "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "/bin/true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cannot make private mount and pid namespaces (unshare: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// shQuote quotes s for /bin/sh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
