package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
)

// dovecotCPU is the CPU time an instance has used so far: its master, the
// children it has reaped, and the children still running.
func dovecotCPU(s *dovecot.Server) time.Duration {
	b, err := os.ReadFile(filepath.Join(s.Dir, "run", "master.pid"))
	if err != nil {
		return 0
	}
	master := strings.TrimSpace(string(b))
	ticks := func(stat string, children bool) (ppid string, t int64) {
		// Fields after the command name, which is in parentheses.
		i := strings.LastIndexByte(stat, ')')
		if i < 0 {
			return "", 0
		}
		f := strings.Fields(stat[i+1:])
		if len(f) < 15 {
			return "", 0
		}
		n := 2
		if children {
			n = 4
		}
		for k := 0; k < n; k++ {
			v, _ := strconv.ParseInt(f[11+k], 10, 64)
			t += v
		}
		return f[1], t
	}
	var total int64
	if st, err := os.ReadFile("/proc/" + master + "/stat"); err == nil {
		_, t := ticks(string(st), true)
		total += t
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
		if ppid, t := ticks(string(st), true); ppid == master {
			total += t
		}
	}
	return time.Duration(total) * time.Second / 100 // USER_HZ
}
