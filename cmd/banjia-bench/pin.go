package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/banjia-mail/banjia/internal/dovecot"
)

// The benchmark models separate machines on one box: the target Dovecot
// gets the first half of the CPUs to itself, and everything that feeds it
// (the source Dovecot, banjia, the raw client, the delaying proxies) shares
// the other half. Without this, on a 2-CPU machine the source server and
// the copier take CPU from the very server whose limit is measured, and the
// comparison says more about the box than about banjia.
type cpuPlan struct {
	target, feeders []int
}

func planCPUs(enabled bool) *cpuPlan {
	n := runtime.NumCPU()
	if !enabled || n < 2 {
		return nil
	}
	p := &cpuPlan{}
	for i := 0; i < n; i++ {
		if i < n/2 {
			p.target = append(p.target, i)
		} else {
			p.feeders = append(p.feeders, i)
		}
	}
	return p
}

func (p *cpuPlan) String() string {
	if p == nil {
		return "not pinned"
	}
	return "target Dovecot pinned to CPU " + cpuList(p.target) + "; source Dovecot, banjia and the benchmark's own client and proxies to CPU " + cpuList(p.feeders)
}

func cpuList(cpus []int) string {
	var s []string
	for _, c := range cpus {
		s = append(s, strconv.Itoa(c))
	}
	return strings.Join(s, ",")
}

// pinSelf pins every thread of this process; processes it starts inherit it.
func (p *cpuPlan) pinSelf() error {
	if p == nil {
		return nil
	}
	return pinPID(os.Getpid(), p.feeders)
}

// pinServer pins a Dovecot instance: its master (whose later children
// inherit the mask) and the children already running.
func (p *cpuPlan) pinServer(s *dovecot.Server, target bool) error {
	if p == nil {
		return nil
	}
	cpus := p.feeders
	if target {
		cpus = p.target
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, "run", "master.pid"))
	if err != nil {
		return err
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	pids := []int{master}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			i := strings.LastIndexByte(string(st), ')')
			if f := strings.Fields(string(st)[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(master) {
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		if err := pinPID(pid, cpus); err != nil {
			return err
		}
	}
	return nil
}

// pinPID sets the CPU mask of every thread of pid.
func pinPID(pid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil // gone already
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return err
		}
	}
	return nil
}
