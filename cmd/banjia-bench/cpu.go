package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
)

// usage is what a Dovecot instance has used so far: its master, the
// children it has reaped, and the children still running.
type usage struct {
	cpu   time.Duration // user + system
	reads int64         // read system calls (syscr): how finely the client's bytes arrived
}

func (u usage) sub(v usage) usage { return usage{cpu: u.cpu - v.cpu, reads: u.reads - v.reads} }

// dovecotUsage reads /proc for the instance's processes. A reaped child's
// CPU time and I/O counts are added to its parent's own, so the master's
// figures plus its living children's are the instance's total.
func dovecotUsage(s *dovecot.Server) usage {
	b, err := os.ReadFile(filepath.Join(s.Dir, "run", "master.pid"))
	if err != nil {
		return usage{}
	}
	master := strings.TrimSpace(string(b))
	ticks := func(stat string) (ppid string, t int64) {
		// Fields after the command name, which is in parentheses.
		i := strings.LastIndexByte(stat, ')')
		if i < 0 {
			return "", 0
		}
		f := strings.Fields(stat[i+1:])
		if len(f) < 15 {
			return "", 0
		}
		// utime, stime, cutime, cstime.
		for k := 0; k < 4; k++ {
			v, _ := strconv.ParseInt(f[11+k], 10, 64)
			t += v
		}
		return f[1], t
	}
	reads := func(pid string) int64 {
		b, err := os.ReadFile("/proc/" + pid + "/io")
		if err != nil {
			return 0
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "syscr: "); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		return 0
	}
	var total int64
	var u usage
	if st, err := os.ReadFile("/proc/" + master + "/stat"); err == nil {
		_, t := ticks(string(st))
		total += t
		u.reads += reads(master)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if ppid, t := ticks(string(st)); ppid == master {
			total += t
			u.reads += reads(e.Name())
		}
	}
	u.cpu = time.Duration(total) * time.Second / 100 // USER_HZ
	return u
}
