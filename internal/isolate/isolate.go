// Package isolate runs a test server's processes in their own mount and pid
// namespaces, made by unshare(1), and stops them all by pid. The
// namespace's first process is a root shell that runs the server and waits
// for it, so killing that shell makes the kernel end every other process of
// the instance, and the mounts its script made (Cyrus's private /dev,
// Courier's folders over its compiled-in /etc/courier and /run/courier)
// vanish with it. Nothing is found or signalled by name.
package isolate

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/banjia-mail/banjia/internal/procstat"
)

const unshareBin = "/usr/bin/unshare"

// Namespace is one instance's unshare process and the namespace under it.
type Namespace struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when unshare has exited (and was reaped)
	init   procstat.Proc // the namespace's first process (pid 1 inside)
	pidNS  string        // its pid namespace, as /proc/PID/ns/pid reads: "pid:[...]"
	// nsRef holds the pid namespace open until Stop has checked it is
	// empty: a freed namespace's number is soon reused by a new one (another
	// test's instance), which must not be mistaken for ours.
	nsRef *os.File
}

// Start runs script with /bin/sh inside new mount and pid namespaces,
// output to logPath. unshare dies with the test binary (Pdeathsig) and takes
// the namespace with it (--kill-child), so a crashed or timed-out test
// leaves no server behind.
func Start(script, logPath string) (*Namespace, error) {
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
	r := &Namespace{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if kids := procstat.Children(cmd.Process.Pid); len(kids) > 0 {
			r.init = kids[0]
			path := fmt.Sprintf("/proc/%d/ns/pid", r.init.Pid)
			if f, err := os.Open(path); err == nil {
				ns, err := os.Readlink(path)
				// Still the same process (not a reused pid)?
				if _, start, ok := procstat.Read(r.init.Pid); err == nil && ok && start == r.init.Start {
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
			r.Stop()
			return nil, errors.New("unshare started no process within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Running says whether the namespace's first process is still there.
func (r *Namespace) Running() bool {
	select {
	case <-r.exited:
		return false
	default:
	}
	return r.init.Alive()
}

// Stop kills the namespace's first process by pid (the kernel then kills
// all others in the namespace), waits for unshare to reap it and exit, and
// checks that no process of the namespace is left.
func (r *Namespace) Stop() error {
	if r == nil || r.cmd == nil {
		return nil
	}
	var errs []error
	if r.init.Pid != 0 {
		if _, start, ok := procstat.Read(r.init.Pid); ok && start == r.init.Start {
			syscall.Kill(r.init.Pid, syscall.SIGKILL)
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
func (r *Namespace) waitEmpty(within time.Duration) []int {
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
// (named reliably only while something holds it open, as Namespace.nsRef does).
func processesIn(pidNS string) []int {
	if pidNS == "" {
		return nil
	}
	var out []int
	for _, pid := range procstat.Pids() {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns == pidNS && !procstat.Zombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// Usable says whether this machine lets us make mount and pid namespaces
// (a container without CAP_SYS_ADMIN does not); the error says why not.
func Usable() error {
	if _, err := os.Stat(unshareBin); err != nil {
		return fmt.Errorf("%s missing (util-linux)", unshareBin)
	}
	out, err := exec.Command(unshareBin, "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "/bin/true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cannot make private mount and pid namespaces (unshare: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Quote quotes s for the /bin/sh that runs Start's script.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
