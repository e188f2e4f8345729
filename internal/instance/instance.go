// Package instance holds what the private test servers (internal/dovecot,
// internal/cyrus, internal/courier) do alike: a folder every mail user can
// reach, a free loopback port, the wait for the IMAP greeting, and the rule
// that a server missing in CI fails the test instead of skipping it.
package instance

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Dir makes an instance's folder, named after prefix, under TMPDIR, or
// under /tmp when TMPDIR is long (unix socket paths may not exceed 107
// bytes) or holds one of odd (paths go unquoted into configuration files).
// Every parent is made traversable, because the servers' processes run as
// other users than root.
func Dir(prefix, odd string) (string, error) {
	base := os.TempDir()
	if len(base) > 40 || (odd != "" && strings.ContainsAny(base, odd)) {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("instance folder: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o001); err != nil {
				return "", fmt.Errorf("make %s traversable for the mail user: %w", p, err)
			}
		}
		if p == filepath.Dir(p) {
			return dir, nil
		}
	}
}

// FreePort is a loopback port free a moment ago (a server started on it
// may still lose it to another: callers check for that).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Greeting connects to addr and reads the IMAP greeting: nil once the
// server answers "* OK".
func Greeting(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	return nil
}

// Require skips the test, loudly, when the server named cannot run here
// (why), or fails it when BANJIA_REQUIRE_SERVERS=1 (CI), so a missing
// server never passes silently.
func Require(t testing.TB, server string, why error) {
	t.Helper()
	if why == nil {
		return
	}
	if os.Getenv("BANJIA_REQUIRE_SERVERS") == "1" {
		t.Fatalf("FAILED: BANJIA_REQUIRE_SERVERS=1 but %s cannot run: %v", server, why)
	}
	if strings.Contains(why.Error(), "not installed") {
		t.Skipf("SKIPPED: %s not installed: run scripts/install-deps.sh (%v)", server, why)
	}
	t.Skipf("SKIPPED: %s cannot run here: %v", server, why)
}
