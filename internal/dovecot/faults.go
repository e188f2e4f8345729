package dovecot

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/banjia-mail/banjia/internal/procstat"
)

// Server-side faults for reliability tests: what a real server does to a
// client when an admin or the OS intervenes.

// Kick disconnects user's sessions the way an admin does (`doveadm kick`):
// Dovecot sends each an untagged BYE and closes it. It says how many
// connections were kicked, 0 when the user had none. doveadm names only the
// users it kicked, so the user's connections are listed (`doveadm who -1`,
// one line per connection) just before the kick; a session that ends
// between the two is counted although it was not kicked, one that starts
// between them is kicked but not counted.
func (s *Server) Kick(user string) (int, error) {
	out, err := exec.Command(doveadmBin, "-c", s.conf, "who", "-1", user).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("doveadm who %s: %v: %s", user, err, strings.TrimSpace(string(out)))
	}
	conns := 0
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == user {
			conns++
		}
	}
	out, err = exec.Command(doveadmBin, "-c", s.conf, "kick", user).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "no users") || strings.Contains(string(out), "No users") {
			return 0, nil
		}
		return 0, fmt.Errorf("doveadm kick %s: %v: %s", user, err, strings.TrimSpace(string(out)))
	}
	if !strings.Contains(string(out), "kicked connections") {
		return 0, nil
	}
	// It kicked the user, so at least one connection was there.
	return max(conns, 1), nil
}

// KillSessions SIGKILLs this instance's mail processes of service (its
// "imap" or "pop3" processes, as the OOM killer or a crash would end them),
// found among the children of our own master by pid, and says how many.
func (s *Server) KillSessions(service string) int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	n := 0
	for _, p := range procstat.Children(s.cmd.Process.Pid) {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Pid))
		if err != nil || strings.TrimSpace(string(comm)) != service {
			continue
		}
		if syscall.Kill(p.Pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// Reconfigure appends settings to the running instance's configuration
// (later settings override earlier ones) and reloads it, as an admin who
// raises a quota would.
func (s *Server) Reconfigure(extra string) error {
	f, err := os.OpenFile(s.conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n" + extra + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if out, err := exec.Command(doveadmBin, "-c", s.conf, "reload").CombinedOutput(); err != nil {
		return fmt.Errorf("doveadm reload: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
