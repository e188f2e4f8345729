// Package dovecot runs private Dovecot instances on loopback for tests and
// benchmarks: each lives in its own temporary folder, on its own ports, and
// is stopped through its own pid file (never by process name).
package dovecot

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MailUser is the system user that owns the instances' mail.
const MailUser = "banjiamail"

// Options shape an instance.
type Options struct {
	// TLS adds IMAPS and POP3S listeners (and STARTTLS/STLS) with a
	// self-signed certificate for 127.0.0.1 and localhost.
	TLS bool
	// MasterUser, MasterPassword add a Dovecot master user, so that
	// "member*admin" LOGIN and SASL PLAIN with authzid=member work.
	MasterUser, MasterPassword string
	// Format is "maildir" (default; separator ".") or "sdbox" (separator "/").
	Format string
	// Fsync keeps Dovecot's default fsyncs; tests run with mail_fsync = never.
	Fsync bool
	// MaxUserIPConnections (default 100).
	MaxUserIPConnections int
	// ExtraConfig is appended to dovecot.conf.
	ExtraConfig string
}

// Server is a running instance.
type Server struct {
	Dir                  string
	IMAPAddr, POP3Addr   string
	IMAPSAddr, POP3SAddr string
	CertPEM              []byte
	opts                 Options
	conf                 string
	mu                   sync.Mutex
	uid, gid             int
}

// Available says whether Dovecot can run here.
func Available() error {
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/bin/doveadm"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s not found: run scripts/install-deps.sh (apt-get install dovecot-imapd dovecot-pop3d)", p)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("private Dovecot instances need root (mail is written as a dedicated user)")
	}
	return nil
}

// Require skips the test, loudly, when Dovecot cannot run, or fails it when
// BANJIA_REQUIRE_SERVERS=1 (CI), so a missing server never passes silently.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("BANJIA_REQUIRE_SERVERS") == "1" {
			t.Fatalf("Dovecot is required (BANJIA_REQUIRE_SERVERS=1) but unavailable: %v", err)
		}
		t.Skipf("SKIPPED: Dovecot-backed test: %v", err)
	}
}

// StartT starts an instance for a test and stops it when the test ends.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop dovecot: %v", err)
		}
	})
	return s
}

// Delimiter is the hierarchy separator of the instance's namespace.
func (s *Server) Delimiter() string {
	if s.opts.Format == "sdbox" {
		return "/"
	}
	return "."
}

func mailIDs() (int, int, error) {
	u, err := user.Lookup(MailUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", MailUser).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "already exists") {
			return 0, 0, fmt.Errorf("useradd %s: %v: %s", MailUser, err, out)
		}
		if u, err = user.Lookup(MailUser); err != nil {
			return 0, 0, err
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Start starts an instance; the port race with other processes is retried.
func Start(opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.Format == "" {
		opts.Format = "maildir"
	}
	if opts.MaxUserIPConnections == 0 {
		opts.MaxUserIPConnections = 100
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	return nil, lastErr
}

func start(opts Options) (*Server, error) {
	uid, gid, err := mailIDs()
	if err != nil {
		return nil, err
	}
	// A short path: Dovecot's unix sockets live under it.
	dir, err := os.MkdirTemp("", "dc")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, opts: opts, uid: uid, gid: gid}
	fail := func(err error) (*Server, error) {
		s.Stop()
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	for _, d := range []string{"run", "state", "log", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "mail"), uid, gid); err != nil {
		return fail(err)
	}
	for _, f := range []string{"users", "masters"} {
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, nil, 0o640); err != nil {
			return fail(err)
		}
		chgrpDovecot(p)
	}
	if opts.MasterUser != "" {
		if err := os.WriteFile(filepath.Join(dir, "masters"), []byte(fmt.Sprintf("%s:{PLAIN}%s\n", opts.MasterUser, opts.MasterPassword)), 0o640); err != nil {
			return fail(err)
		}
	}
	ports, err := freePorts(4)
	if err != nil {
		return fail(err)
	}
	s.IMAPAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.POP3Addr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	sslConf := "ssl = no\n"
	imapsListener, pop3sListener := "", ""
	if opts.TLS {
		if err := s.makeCert(); err != nil {
			return fail(err)
		}
		s.IMAPSAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
		s.POP3SAddr = fmt.Sprintf("127.0.0.1:%d", ports[3])
		sslConf = fmt.Sprintf("ssl = yes\nssl_cert = <%s\nssl_key = <%s\n", filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
		imapsListener = fmt.Sprintf("  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n", ports[2])
		pop3sListener = fmt.Sprintf("  inet_listener pop3s {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n", ports[3])
	} else {
		imapsListener = "  inet_listener imaps {\n    port = 0\n  }\n"
		pop3sListener = "  inet_listener pop3s {\n    port = 0\n  }\n"
	}
	sep, location := ".", "maildir:~/Maildir"
	if opts.Format == "sdbox" {
		sep, location = "/", "sdbox:~/sdbox"
	}
	fsync := "never"
	if opts.Fsync {
		fsync = "optimized"
	}
	conf := fmt.Sprintf(`# private instance for banjia's tests
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/log/dovecot.log
info_log_path = %[1]s/log/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
%[2]s
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
mail_location = %[3]s
mail_uid = %[4]d
mail_gid = %[5]d
first_valid_uid = 1
first_valid_gid = 1
mail_fsync = %[6]s
mail_max_userip_connections = %[7]d
pop3_uidl_format = %%08Xu%%08Xv
imap_client_workarounds =
passdb {
  driver = passwd-file
  master = yes
  args = %[1]s/masters
  pass = yes
}
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = static
  args = uid=%[4]d gid=%[5]d home=%[1]s/mail/%%u allow_all_users=yes
}
namespace inbox {
  inbox = yes
  separator = %[8]s
  mailbox Sent {
    special_use = \Sent
  }
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Archive {
    special_use = \Archive
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[9]d
  }
%[10]s  service_count = 0
  process_min_avail = 1
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[11]d
  }
%[12]s}
service anvil {
  chroot =
}
%[13]s
`, dir, sslConf, location, uid, gid, fsync, opts.MaxUserIPConnections, sep, ports[0], imapsListener, ports[1], pop3sListener, opts.ExtraConfig)
	s.conf = filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		return fail(err)
	}
	stdin, _ := os.Open(os.DevNull)
	logf, err := os.Create(filepath.Join(dir, "log", "start.log"))
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command("/usr/sbin/dovecot", "-c", s.conf)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, logf, logf
	err = cmd.Run()
	stdin.Close()
	logf.Close()
	if err != nil {
		return fail(fmt.Errorf("start dovecot: %v\n%s", err, s.logTail()))
	}
	if err := waitGreeting(s.IMAPAddr, 10*time.Second); err != nil {
		return fail(fmt.Errorf("dovecot did not answer on %s: %v\n%s", s.IMAPAddr, err, s.logTail()))
	}
	return s, nil
}

func chgrpDovecot(path string) {
	if g, err := user.LookupGroup("dovecot"); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		os.Chown(path, 0, gid)
	}
}

func waitGreeting(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "* OK") {
				return nil
			}
			last = fmt.Errorf("greeting %q: %v", line, err)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

func (s *Server) logTail() string {
	var out []string
	for _, f := range []string{"start.log", "dovecot.log"} {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "log", f))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		out = append(out, lines...)
	}
	joined := strings.Join(out, "\n")
	if strings.Contains(joined, "Address already in use") {
		joined += "\n(port in use)"
	}
	return joined
}

// Log is the instance's log, for test failure messages.
func (s *Server) Log() string { return s.logTail() }

// Stop stops the instance through its master pid and removes its folder.
func (s *Server) Stop() error {
	if s == nil || s.Dir == "" {
		return nil
	}
	var err error
	pidFile := filepath.Join(s.Dir, "run", "master.pid")
	if b, rerr := os.ReadFile(pidFile); rerr == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 1 {
			syscall.Kill(pid, syscall.SIGTERM)
			deadline := time.Now().Add(10 * time.Second)
			for syscall.Kill(pid, 0) == nil {
				if time.Now().After(deadline) {
					syscall.Kill(pid, syscall.SIGKILL)
					err = fmt.Errorf("dovecot %d did not stop on SIGTERM", pid)
					time.Sleep(100 * time.Millisecond)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	os.RemoveAll(s.Dir)
	s.Dir = ""
	return err
}

// AddUser adds a login; passwd-file is re-read on change, so this works while running.
func (s *Server) AddUser(addr, password string) error { return s.addUser(addr, password, "") }

func (s *Server) addUser(addr, password, extra string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.ContainsAny(addr+password+extra, ":\n") {
		return fmt.Errorf("user and password may not contain ':' or newlines")
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "users"), os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s:{PLAIN}%s::::::%s\n", addr, password, extra)
	return err
}

// AddRefusedUser adds a login that Dovecot refuses, with the password right,
// giving reason (one word: passwd-file splits extra fields at spaces) as its
// answer: how tests get "account locked" or "IMAP disabled" replies from a
// real server.
func (s *Server) AddRefusedUser(addr, password, reason string) error {
	return s.addUser(addr, password, "nologin reason="+reason)
}

func (s *Server) makeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	s.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "cert.pem"), s.CertPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}
