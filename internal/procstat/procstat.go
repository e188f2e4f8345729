// Package procstat names processes by pid and start time, read from
// /proc/PID/stat, so that the test servers (Dovecot, and the Cyrus and
// Courier instances isolate runs) are stopped by pid and a pid the kernel
// has since reused for something else is never mistaken for theirs.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Proc is one process: its pid and its start time.
type Proc struct {
	Pid   int
	Start string
}

func (p Proc) String() string { return strconv.Itoa(p.Pid) }

// Alive says whether p is still running: the same start time under its pid,
// and not a zombie (which holds no ports or files).
func (p Proc) Alive() bool {
	_, start, ok := Read(p.Pid)
	return ok && start == p.Start && !Zombie(p.Pid)
}

// Read returns the parent pid and start time from /proc/PID/stat.
func Read(pid int) (ppid int, start string, ok bool) {
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

// Pids lists the pids in /proc.
func Pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Children lists the processes whose parent is pid.
func Children(pid int) []Proc {
	var out []Proc
	for _, p := range Pids() {
		if ppid, start, ok := Read(p); ok && ppid == pid {
			out = append(out, Proc{p, start})
		}
	}
	return out
}

// Zombie says whether pid has exited and waits to be reaped (or is gone).
func Zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
