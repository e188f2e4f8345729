// Package dovecot runs private Dovecot instances on loopback for tests and
// benchmarks: each lives in its own temporary folder, on its own ports, and
// is stopped through its own pid file (never by process name).
package dovecot

import (
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

	"github.com/banjia-mail/banjia/internal/instance"
	"github.com/banjia-mail/banjia/internal/procstat"
)

// MailUser is the system user that owns the instances' mail; Start creates
// it when missing.
const MailUser = "banjiamail"

const (
	dovecotBin = "/usr/sbin/dovecot"
	doveadmBin = "/usr/bin/doveadm"
)

// Options shape an instance. The zero value is a maildir instance without
// TLS or master users.
type Options struct {
	// TLS adds IMAPS and POP3S listeners (and STARTTLS/STLS on the plain
	// ports) with a self-signed certificate for 127.0.0.1 and localhost.
	TLS bool
	// MasterUser, MasterPassword add a Dovecot master user, so that LOGIN
	// "member*admin" and SASL PLAIN with authzid=member, authcid=admin work.
	MasterUser, MasterPassword string
	// Format is "maildir" (default; maildir++, separator ".") or "sdbox"
	// (separator "/").
	Format string
	// Fsync keeps Dovecot's default fsyncs; otherwise mail_fsync = never.
	Fsync bool
	// MaxUserIPConnections is mail_max_userip_connections (default 100;
	// Dovecot's own 10 is too few for parallel tests).
	MaxUserIPConnections int
	// ExtraConfig is appended to dovecot.conf (for example an APPENDLIMIT a
	// benchmark needs); later settings override earlier ones.
	ExtraConfig string
}

// Server is a running instance.
type Server struct {
	Dir                  string
	IMAPAddr, POP3Addr   string // plain; STARTTLS/STLS offered when TLS is on
	IMAPSAddr, POP3SAddr string // set when TLS is on
	CertPEM              []byte // the self-signed certificate, for RootCAs

	opts     Options
	conf     string
	uid, gid int

	cmd    *exec.Cmd
	exited chan struct{} // closed when the master process has exited

	usersMu sync.Mutex // the passwd-file

	deliverMu  sync.Mutex
	userLocks  map[string]*sync.Mutex // Deliver writes one user's folders at a time
	deliverSeq uint64                 // orders maildir file names across Deliver calls

	stopOnce sync.Once
	stopErr  error
}

var (
	availableOnce sync.Once
	availableErr  error
)

// Available says whether private Dovecot instances can run here; the error
// is a reason a person can act on.
func Available() error {
	availableOnce.Do(func() {
		for _, p := range []string{dovecotBin, doveadmBin} {
			if _, err := os.Stat(p); err != nil {
				availableErr = fmt.Errorf("Dovecot not installed (%s missing): run scripts/install-deps.sh", p)
				return
			}
		}
		// Mail is written as a dedicated system user, which only root can arrange.
		if os.Geteuid() != 0 {
			availableErr = errors.New("Dovecot is installed but private instances need root (mail is owned by a dedicated user): run the tests as root")
			return
		}
		if out, err := exec.Command(dovecotBin, "--version").CombinedOutput(); err != nil {
			availableErr = fmt.Errorf("%s --version: %v: %s", dovecotBin, err, strings.TrimSpace(string(out)))
		}
	})
	return availableErr
}

// Require skips the test, loudly, when Dovecot cannot run here, or fails it
// when BANJIA_REQUIRE_SERVERS=1 (CI), so a missing server never passes silently.
func Require(t testing.TB) {
	t.Helper()
	instance.Require(t, "Dovecot", Available())
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

// Log returns the end of the instance's logs, for test failure messages.
func (s *Server) Log() string { return s.logTail() }

// errPortInUse marks a start that lost the race for its ports.
var errPortInUse = errors.New("port in use")

// Start starts an instance on free loopback ports. Ports are picked by
// binding :0 and closing, so another process can take one before Dovecot
// binds it; such a start is retried on fresh ports.
func Start(opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	switch opts.Format {
	case "":
		opts.Format = "maildir"
	case "maildir", "sdbox":
	default:
		return nil, fmt.Errorf("dovecot: unknown mail format %q (want maildir or sdbox)", opts.Format)
	}
	if opts.MaxUserIPConnections <= 0 {
		opts.MaxUserIPConnections = 100
	}
	if strings.ContainsAny(opts.MasterUser+opts.MasterPassword, ":\n") {
		return nil, errors.New("dovecot: master user and password may not contain ':' or newlines")
	}
	uid, gid, err := MailIDs()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		s, err := start(opts, uid, gid)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == 8 {
			return nil, err
		}
	}
}

var mailIDsMu sync.Mutex

// MailIDs returns the uid and gid of MailUser, creating the user when
// missing. Several test processes may race to create it: useradd's lock
// errors are retried and "already exists" counts as success.
func MailIDs() (int, int, error) {
	mailIDsMu.Lock()
	defer mailIDsMu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		if u, err := user.Lookup(MailUser); err == nil {
			uid, err1 := strconv.Atoi(u.Uid)
			gid, err2 := strconv.Atoi(u.Gid)
			if err := errors.Join(err1, err2); err != nil {
				return 0, 0, fmt.Errorf("system user %s: %w", MailUser, err)
			}
			return uid, gid, nil
		}
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", MailUser).CombinedOutput()
		if err == nil || strings.Contains(string(out), "already exists") {
			continue
		}
		lastErr = fmt.Errorf("create system user %s: useradd: %v: %s", MailUser, err, strings.TrimSpace(string(out)))
		time.Sleep(100 * time.Millisecond)
	}
	return 0, 0, lastErr
}

// pickPorts is freePorts; a test swaps it to lose the port race on purpose.
var pickPorts = freePorts

func freePorts(n int) ([]int, error) {
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		// Held until all are picked, so the n ports differ.
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func start(opts Options, uid, gid int) (*Server, error) {
	dir, err := instance.Dir("dc", "")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, opts: opts, uid: uid, gid: gid, userLocks: map[string]*sync.Mutex{}}
	fail := func(err error) (*Server, error) {
		s.Stop()
		return nil, err
	}
	for _, d := range []string{"run", "state", "log", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "mail"), uid, gid); err != nil {
		return fail(fmt.Errorf("chown mail folder to %s: %w", MailUser, err))
	}
	masters := ""
	if opts.MasterUser != "" {
		masters = fmt.Sprintf("%s:{PLAIN}%s\n", opts.MasterUser, opts.MasterPassword)
	}
	for f, content := range map[string]string{"users": "", "masters": masters} {
		if err := writeAuthFile(filepath.Join(dir, f), content); err != nil {
			return fail(err)
		}
	}
	ports, err := pickPorts(4)
	if err != nil {
		return fail(err)
	}
	s.IMAPAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.POP3Addr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	if opts.TLS {
		if err := s.makeCert(); err != nil {
			return fail(fmt.Errorf("self-signed certificate: %w", err))
		}
		s.IMAPSAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
		s.POP3SAddr = fmt.Sprintf("127.0.0.1:%d", ports[3])
	}
	s.conf = filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(s.conf, []byte(s.config(ports)), 0o644); err != nil {
		return fail(err)
	}
	if err := s.run(); err != nil {
		return fail(err)
	}
	return s, nil
}

// writeAuthFile writes a passwd-file the auth process (group dovecot) can
// read and nobody else can.
func writeAuthFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		return err
	}
	g, err := user.LookupGroup("dovecot")
	if err != nil {
		return fmt.Errorf("group dovecot (made by the Dovecot package): %w", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	return os.Chown(path, 0, gid)
}

func (s *Server) config(ports []int) string {
	dir, o := s.Dir, s.opts
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# A private instance for banjia's tests: everything under %s.", dir)
	p("base_dir = %s/run", dir)
	p("state_dir = %s/state", dir)
	p("log_path = %s/log/dovecot.log", dir)
	p("info_log_path = %s/log/dovecot.log", dir)
	p("protocols = imap pop3")
	p("listen = 127.0.0.1")
	if o.TLS {
		p("ssl = yes")
		p("ssl_cert = <%s/cert.pem", dir)
		p("ssl_key = <%s/key.pem", dir)
	} else {
		p("ssl = no")
	}
	p("disable_plaintext_auth = no")
	p("auth_mechanisms = plain login")
	p("auth_master_user_separator = *")
	if o.Format == "sdbox" {
		p("mail_location = sdbox:~/sdbox")
	} else {
		p("mail_location = maildir:~/Maildir")
	}
	p("mail_uid = %d", s.uid)
	p("mail_gid = %d", s.gid)
	// The mail user is a system user, below Dovecot's default of 500.
	p("first_valid_uid = 1")
	p("first_valid_gid = 1")
	if o.Fsync {
		p("mail_fsync = optimized")
	} else {
		p("mail_fsync = never")
	}
	p("mail_max_userip_connections = %d", o.MaxUserIPConnections)
	p("pop3_uidl_format = %%08Xu%%08Xv")
	// pass = yes: a master login still needs the member to exist below.
	p("passdb {\n  driver = passwd-file\n  master = yes\n  args = %s/masters\n  pass = yes\n}", dir)
	p("passdb {\n  driver = passwd-file\n  args = %s/users\n}", dir)
	// Every user's home is under the instance; no per-user uid or home lines.
	p("userdb {\n  driver = static\n  args = uid=%d gid=%d home=%s/mail/%%u allow_all_users=yes\n}", s.uid, s.gid, dir)
	p("namespace inbox {\n  inbox = yes\n  separator = %s", s.Delimiter())
	for _, m := range [][2]string{{"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`}, {"Archive", `\Archive`}} {
		p("  mailbox %s {\n    special_use = %s\n    auto = no\n  }", m[0], m[1])
	}
	p("}")
	listener := func(name string, port int, ssl bool) string {
		if port == 0 {
			return fmt.Sprintf("  inet_listener %s {\n    port = 0\n  }\n", name)
		}
		return fmt.Sprintf("  inet_listener %s {\n    address = 127.0.0.1\n    port = %d\n    ssl = %s\n  }\n", name, port, map[bool]string{true: "yes", false: "no"}[ssl])
	}
	imaps, pop3s := 0, 0
	if o.TLS {
		imaps, pop3s = ports[2], ports[3]
	}
	// service_count = 0 keeps login processes alive across logins, and one
	// waiting process saves a fork on the first: tests log in a lot.
	p("service imap-login {\n%s%s  service_count = 0\n  process_min_avail = 1\n}",
		listener("imap", ports[0], false), listener("imaps", imaps, true))
	p("service pop3-login {\n%s%s  service_count = 0\n}",
		listener("pop3", ports[1], false), listener("pop3s", pop3s, true))
	if o.ExtraConfig != "" {
		p("%s", o.ExtraConfig)
	}
	return b.String()
}

// run starts the master in the foreground (-F) as our child rather than
// letting it daemonize: Pdeathsig then stops it when the test binary dies
// (a panic or a -timeout kill skips t.Cleanup) instead of leaving it
// running, as daemonized instances of killed test runs were found to be.
// (Pdeathsig follows the forking OS thread; Go keeps threads alive unless a
// goroutine locked to one exits, so do not Start from such a goroutine.)
func (s *Server) run() error {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer stdin.Close()
	// Output goes to a file, never a pipe: Dovecot's processes keep the
	// descriptors, and a reader of a pipe would wait on them.
	out, err := os.Create(filepath.Join(s.Dir, "log", "start.log"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(dovecotBin, "-F", "-c", s.conf)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", dovecotBin, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			tail := s.logTail()
			if strings.Contains(tail, "Address already in use") {
				return fmt.Errorf("start dovecot: %w:\n%s", errPortInUse, tail)
			}
			return fmt.Errorf("dovecot exited at start (%v); its log ends:\n%s", cmd.ProcessState, tail)
		default:
		}
		if last = instance.Greeting(s.IMAPAddr); last == nil {
			if _, err := os.Stat(s.pidFile()); err != nil {
				return fmt.Errorf("dovecot answers but wrote no %s: %w", s.pidFile(), err)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("dovecot did not greet on %s within 20s (%v); its log ends:\n%s", s.IMAPAddr, last, s.logTail())
}

func (s *Server) pidFile() string { return filepath.Join(s.Dir, "run", "master.pid") }

func (s *Server) logTail() string {
	var out []string
	for _, f := range []string{"start.log", "dovecot.log"} {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "log", f))
		if len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		out = append(out, fmt.Sprintf("--- %s:", f))
		out = append(out, lines...)
	}
	if len(out) == 0 {
		return "(no log)"
	}
	return strings.Join(out, "\n")
}

// Stop sends SIGTERM to the master (the pid in its pid file, which is the
// child Start ran) and to the processes it started, waits until all are
// gone, and removes the instance's folder (kept when BANJIA_KEEP_DOVECOT=1,
// for reading logs). Nothing is ever found or signalled by name. Safe to
// call more than once.
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	var errs []error
	if s.cmd != nil {
		pid := s.cmd.Process.Pid
		if b, err := os.ReadFile(s.pidFile()); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p != pid {
				errs = append(errs, fmt.Errorf("%s names %d, but the master we started is %d; stopping ours", s.pidFile(), p, pid))
			}
		}
		children := procstat.Children(pid)
		select {
		case <-s.exited:
			// Already reaped: its pid may belong to another process by now.
		default:
			syscall.Kill(pid, syscall.SIGTERM)
		}
		// The master alone takes a second to exit, and a login process
		// holding a client connection outlives it (keeping log, auth and
		// the rest alive) until that client hangs up. Tests stop servers
		// under live clients on purpose, so every process the master had
		// started gets SIGTERM too, by pid: then all are gone in a blink.
		signal(waitGone(children, 0), syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			// Our own child, by pid: the only way left to end it.
			syscall.Kill(pid, syscall.SIGKILL)
			<-s.exited
			errs = append(errs, fmt.Errorf("dovecot master %d ignored SIGTERM for 15s and was killed", pid))
		}
		if left := waitGone(children, 5*time.Second); len(left) > 0 {
			signal(left, syscall.SIGKILL)
			if left = waitGone(left, 2*time.Second); len(left) > 0 {
				errs = append(errs, fmt.Errorf("dovecot processes %v survive SIGKILL", left))
			}
		}
	}
	if s.Dir != "" && os.Getenv("BANJIA_KEEP_DOVECOT") != "1" {
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func signal(ps []procstat.Proc, sig syscall.Signal) {
	for _, p := range ps {
		syscall.Kill(p.Pid, sig)
	}
}

// waitGone waits until none of ps is alive (a zombie counts as gone: it
// holds no ports or files) and returns those still alive at the deadline.
func waitGone(ps []procstat.Proc, within time.Duration) []procstat.Proc {
	deadline := time.Now().Add(within)
	for {
		var left []procstat.Proc
		for _, p := range ps {
			if p.Alive() {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		ps = left
		time.Sleep(20 * time.Millisecond)
	}
}

// AddUser adds a login. Dovecot re-reads a passwd-file when it changes, so
// this works while the instance runs.
func (s *Server) AddUser(addr, password string) error { return s.addUser(addr, password, "") }

// AddRefusedUser adds a login that Dovecot refuses though the password is
// right, answering with reason (one word: passwd-file splits extra fields at
// spaces): how tests get "account locked" or "IMAP disabled" replies from a
// real server.
func (s *Server) AddRefusedUser(addr, password, reason string) error {
	return s.addUser(addr, password, "nologin reason="+reason)
}

func (s *Server) addUser(addr, password, extra string) error {
	if addr == "" || strings.ContainsAny(addr+password+extra, ":\n") || strings.ContainsAny(addr, " \t*") {
		return fmt.Errorf("add user %q: user and password may not be empty or contain ':' or newlines (user: no spaces or '*')", addr)
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.Dir, "users"), os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("add user %s: %w", addr, err)
	}
	// passwd-file: user:password:uid:gid:gecos:home:shell:extra_fields.
	_, err = fmt.Fprintf(f, "%s:{PLAIN}%s::::::%s\n", addr, password, extra)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("add user %s: %w", addr, err)
	}
	return nil
}

// password returns a user's password from the passwd-file, for Deliver's
// IMAP fallback.
func (s *Server) password(addr string) (string, error) {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.Dir, "users"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if u, rest, ok := strings.Cut(line, ":"); ok && u == addr {
			pw, _, _ := strings.Cut(strings.TrimPrefix(rest, "{PLAIN}"), ":")
			return pw, nil
		}
	}
	return "", fmt.Errorf("user %s was never added (AddUser)", addr)
}

func (s *Server) makeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"banjia test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:                  true, // its own root, so a test can put it in RootCAs
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	s.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(s.Dir, "cert.pem"), s.CertPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}
