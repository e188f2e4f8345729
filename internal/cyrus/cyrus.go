// Package cyrus runs private Cyrus IMAP 3.6 instances on loopback for tests:
// each lives in its own temporary folder, on its own port, inside its own
// mount and pid namespaces, and is stopped by pid (never by process name).
//
// Debian's cyrus-imapd package conflicts with dovecot-imapd, so
// scripts/install-deps.sh installs the non-conflicting cyrus-common (master,
// ctl_cyrusdb), cyrus-admin and sasl2-bin, and unpacks cyrus-imapd's imapd
// into CyrusDir without dpkg.
//
// An instance: master runs in the foreground as the namespace's first
// process with its imapd.conf and cyrus.conf in the instance's folder; logins
// are checked against a sasldb file there (saslpasswd2 -f), plain LOGIN is
// allowed, and virtdomains: userid makes "alice@new.example" a login and
// "user.alice@new.example" its mailbox (created by an admin, as Cyrus does
// not create mailboxes at login). Cyrus logs only to syslog: the namespace
// gets a private /dev whose /dev/log is a socket this package reads, so the
// instance's log is in its folder too (Log).
package cyrus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/imapfill"
	"github.com/banjia-mail/banjia/internal/instance"
	"github.com/banjia-mail/banjia/internal/isolate"
)

// CyrusDir is where scripts/install-deps.sh unpacks the cyrus-imapd package.
const CyrusDir = "/opt/banjia-servers/cyrus"

const (
	masterBin     = "/usr/lib/cyrus/bin/master"
	ctlCyrusdbBin = "/usr/lib/cyrus/bin/ctl_cyrusdb"
	saslpasswdBin = "/usr/sbin/saslpasswd2"
	imapdBin      = CyrusDir + "/usr/lib/cyrus/bin/imapd"
	idledBin      = CyrusDir + "/usr/lib/cyrus/bin/idled"
)

// Options shape an instance. The zero value is Debian's default namespace:
// altnamespace: no (personal folders under "INBOX."), unixhierarchysep: no
// (separator ".").
type Options struct {
	// AltNamespace puts personal folders beside INBOX ("Sent" rather than
	// "INBOX.Sent"): personal namespace prefix "".
	AltNamespace bool
	// UnixHierarchySep makes "/" the hierarchy separator instead of ".".
	UnixHierarchySep bool
}

// Server is a running instance.
type Server struct {
	Dir      string
	IMAPAddr string // plain IMAP on 127.0.0.1; LOGIN and AUTHENTICATE PLAIN allowed
	// AdminUser and AdminPassword are the instance's Cyrus admin (listed
	// in admins and proxyservers): it creates the users' mailboxes, and may
	// log in as any user with SASL PLAIN (authzid = the user).
	AdminUser, AdminPassword string

	opts     Options
	conf     string
	cyrusUID int
	mailGID  int

	ns     *isolate.Namespace
	syslog *syslogReader
	fill   *imapfill.Folders

	usersMu sync.Mutex
	users   map[string]string // login -> password

	stopOnce sync.Once
	stopErr  error
}

// servername is the instance's servername, and so the SASL realm of logins
// without a domain (the admin's).
const servername = "banjia-cyrus.test"

var (
	availableOnce sync.Once
	availableErr  error
)

// Available says whether private Cyrus instances can run here; the error is
// a reason a person can act on.
func Available() error {
	availableOnce.Do(func() {
		for _, p := range []string{masterBin, ctlCyrusdbBin, saslpasswdBin, imapdBin, idledBin} {
			if _, err := os.Stat(p); err != nil {
				availableErr = fmt.Errorf("Cyrus IMAP not installed (%s missing): run scripts/install-deps.sh", p)
				return
			}
		}
		if os.Geteuid() != 0 {
			availableErr = errors.New("Cyrus IMAP is installed but private instances need root (files owned by user cyrus, private namespaces): run the tests as root")
			return
		}
		if _, _, err := cyrusIDs(); err != nil {
			availableErr = err
			return
		}
		availableErr = isolate.Usable()
	})
	return availableErr
}

// Require skips the test, loudly, when Cyrus cannot run here, or fails it
// when BANJIA_REQUIRE_SERVERS=1 (CI), so a missing server never passes silently.
func Require(t testing.TB) {
	t.Helper()
	instance.Require(t, "Cyrus IMAP", Available())
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
			t.Errorf("stop cyrus: %v", err)
		}
	})
	return s
}

// Delimiter is the hierarchy separator: "." or, with UnixHierarchySep, "/".
func (s *Server) Delimiter() string {
	if s.opts.UnixHierarchySep {
		return "/"
	}
	return "."
}

// Prefix is the personal namespace's prefix: "INBOX." (or "INBOX/"), or ""
// with AltNamespace.
func (s *Server) Prefix() string {
	if s.opts.AltNamespace {
		return ""
	}
	return "INBOX" + s.Delimiter()
}

// Log returns the end of the instance's logs (master's output and what
// Cyrus sent to syslog), for test failure messages.
func (s *Server) Log() string {
	var out []string
	for _, f := range []string{"start.log", "syslog.log"} {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "log", f))
		if len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		out = append(out, fmt.Sprintf("--- %s:", f))
		out = append(out, lines...)
	}
	if len(out) == 0 {
		return "(no log)"
	}
	return strings.Join(out, "\n")
}

// errPortInUse marks a start that lost the race for its port.
var errPortInUse = errors.New("port in use")

// Start starts an instance on a free loopback port. The port is picked by
// binding :0 and closing, so another process can take it before master
// binds it; such a start is retried on a fresh port.
func Start(opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	uid, gid, err := cyrusIDs()
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

// cyrusIDs returns the uid of user cyrus and the gid of group mail (made
// by the cyrus-common package), which own an instance's files.
func cyrusIDs() (int, int, error) {
	u, err := user.Lookup("cyrus")
	if err != nil {
		return 0, 0, fmt.Errorf("Cyrus IMAP not installed (no system user cyrus, made by cyrus-common): run scripts/install-deps.sh (%v)", err)
	}
	g, err := user.LookupGroup("mail")
	if err != nil {
		return 0, 0, fmt.Errorf("group mail: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(g.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return uid, gid, nil
}

// pickPort is instance.FreePort; a test swaps it to lose the port race on purpose.
var pickPort = instance.FreePort

func randomPassword() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func start(opts Options, uid, gid int) (*Server, error) {
	dir, err := instance.Dir("cy", " \t\"'\\")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, opts: opts, cyrusUID: uid, mailGID: gid,
		AdminUser: "admin", AdminPassword: randomPassword(),
		users: map[string]string{}}
	fail := func(err error) (*Server, error) {
		s.Stop()
		return nil, err
	}
	// Cyrus's control folders (as Debian's makedirs lays them out), the
	// spool, runtime sockets and locks, and the log.
	var owned []string
	for _, d := range []string{"db", "proc", "socket", "log", "msg", "user", "quota", "lock"} {
		owned = append(owned, filepath.Join("conf", d))
	}
	for _, d := range []string{"user", "quota", "lock"} {
		for c := 'a'; c <= 'z'; c++ {
			owned = append(owned, filepath.Join("conf", d, string(c)))
		}
	}
	owned = append(owned, "spool", "spool/stage.", "run", "run/proc", "run/lock", "run/socket", "sieve")
	if err := os.MkdirAll(filepath.Join(dir, "conf"), 0o750); err != nil {
		return fail(err)
	}
	if err := os.Chown(filepath.Join(dir, "conf"), uid, gid); err != nil {
		return fail(err)
	}
	for _, d := range owned {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o750); err != nil {
			return fail(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return fail(err)
		}
	}
	// The private /dev is mounted here inside the namespace; log/ is ours.
	for _, d := range []string{"dev", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return fail(err)
		}
	}
	if s.syslog, err = listenSyslog(filepath.Join(dir, "log", "syslog.sock"), filepath.Join(dir, "log", "syslog.log")); err != nil {
		return fail(fmt.Errorf("cyrus syslog socket: %w", err))
	}
	if err := s.saslpasswd(s.AdminUser, s.AdminPassword); err != nil {
		return fail(err)
	}
	port, err := pickPort()
	if err != nil {
		return fail(err)
	}
	s.IMAPAddr = fmt.Sprintf("127.0.0.1:%d", port)
	s.fill = &imapfill.Folders{Addr: s.IMAPAddr, Prefix: s.Prefix(), Delim: s.Delimiter(), Password: s.password}
	s.conf = filepath.Join(dir, "imapd.conf")
	files := map[string]string{
		"imapd.conf": s.imapdConf(),
		"cyrus.conf": s.cyrusConf(port),
		"start.sh":   s.startScript(),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fail(err)
		}
	}
	if err := s.run(); err != nil {
		return fail(err)
	}
	return s, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (s *Server) imapdConf() string {
	dir := s.Dir
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# A private Cyrus instance for banjia's tests: everything under %s.", dir)
	p("configdirectory: %s/conf", dir)
	p("proc_path: %s/run/proc", dir)
	p("mboxname_lockpath: %s/run/lock", dir)
	p("defaultpartition: default")
	p("partition-default: %s/spool", dir)
	p("sievedir: %s/sieve", dir)
	p("lmtpsocket: %s/run/socket/lmtp", dir)
	p("idlesocket: %s/run/socket/idle", dir)
	p("notifysocket: %s/run/socket/notify", dir)
	p("servername: %s", servername)
	p("syslog_prefix: banjia-cyrus")
	p("altnamespace: %s", yesNo(s.opts.AltNamespace))
	p("unixhierarchysep: %s", yesNo(s.opts.UnixHierarchySep))
	p("virtdomains: userid")
	p("admins: %s", s.AdminUser)
	p("proxyservers: %s", s.AdminUser)
	p("allowplaintext: yes")
	p("sasl_pwcheck_method: auxprop")
	p("sasl_auxprop_plugin: sasldb")
	p("sasl_sasldb_path: %s/sasldb2", dir)
	p("sasl_mech_list: PLAIN LOGIN")
	p("umask: 077")
	return b.String()
}

func (s *Server) cyrusConf(port int) string {
	c := s.conf
	return fmt.Sprintf(`# A private Cyrus instance for banjia's tests.
START {
  recover cmd="%[1]s -C %[2]s -r"
}
SERVICES {
  imap cmd="%[3]s -C %[2]s" listen="127.0.0.1:%[4]d" prefork=1 maxchild=200
}
EVENTS {
  checkpoint cmd="%[1]s -C %[2]s -c" period=30
}
DAEMON {
  idled cmd="%[5]s -C %[2]s"
}
`, ctlCyrusdbBin, c, imapdBin, port, idledBin)
}

// startScript runs inside the new namespaces, as their first process: a
// private /dev (the few device nodes Cyrus uses, and /dev/log pointing at
// our syslog socket), then master in the foreground.
func (s *Server) startScript() string {
	dir := s.Dir
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Runs inside private mount and pid namespaces (unshare); see internal/cyrus.")
	p("mount -t tmpfs -o mode=755,size=1m banjia-cyrus-dev %s", isolate.Quote(dir+"/dev"))
	for _, n := range []struct {
		name         string
		major, minor int
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		p("mknod -m 666 %s c %d %d", isolate.Quote(dir+"/dev/"+n.name), n.major, n.minor)
	}
	p("ln -s /proc/self/fd %s", isolate.Quote(dir+"/dev/fd"))
	p("ln -s %s %s", isolate.Quote(dir+"/log/syslog.sock"), isolate.Quote(dir+"/dev/log"))
	p("mount --bind %s /dev", isolate.Quote(dir+"/dev"))
	// Not exec: master changes to user cyrus, which clears the parent-death
	// signal unshare --kill-child gave it; this root shell keeps it, so the
	// namespace (master and all) ends with unshare even when the test binary
	// is killed. The shell ends when master does.
	p("%s -C %s -M %s -p %s &", masterBin, isolate.Quote(s.conf), isolate.Quote(dir+"/cyrus.conf"), isolate.Quote(dir+"/run/master.pid"))
	p("wait $!")
	return b.String()
}

// run starts master and waits for the IMAP greeting.
func (s *Server) run() error {
	started := time.Now()
	ns, err := isolate.Start(filepath.Join(s.Dir, "start.sh"), filepath.Join(s.Dir, "log", "start.log"))
	s.ns = ns
	if err != nil {
		return fmt.Errorf("start cyrus: %w; its log ends:\n%s", err, s.Log())
	}
	deadline := started.Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if !ns.Running() {
			return fmt.Errorf("cyrus master exited at start; its log ends:\n%s", s.Log())
		}
		// Checked first: whoever holds the port may accept and never greet.
		if s.syslog.contains("Address already in use") {
			return fmt.Errorf("start cyrus on %s: %w:\n%s", s.IMAPAddr, errPortInUse, s.Log())
		}
		if last = instance.Greeting(s.IMAPAddr); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cyrus did not greet on %s within 30s (%v); its log ends:\n%s", s.IMAPAddr, last, s.Log())
}

// Stop ends every process of the instance (by killing its namespace's first
// process, by pid), checks that none is left, and removes the instance's
// folder (kept when BANJIA_KEEP_SERVERS=1, for reading logs). Safe to call
// more than once.
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	var errs []error
	if s.ns != nil {
		if err := s.ns.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop cyrus: %w", err))
		}
	}
	if s.syslog != nil {
		s.syslog.close()
	}
	if s.Dir != "" && os.Getenv("BANJIA_KEEP_SERVERS") != "1" {
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// splitLogin splits a login into its local part and domain ("" without
// '@'), refusing what sasldb or Cyrus's mailbox names cannot hold.
func splitLogin(addr string) (local, domain string, err error) {
	if addr == "" || strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(`"\%*/(){}`, r) }) {
		return "", "", fmt.Errorf("login %q: empty, or holds spaces, controls or one of \" \\ %% * / ( ) { }", addr)
	}
	local, domain, _ = strings.Cut(addr, "@")
	if local == "" || strings.Contains(domain, "@") || strings.HasSuffix(addr, "@") {
		return "", "", fmt.Errorf("login %q: want NAME or NAME@DOMAIN", addr)
	}
	return local, domain, nil
}

// saslpasswd sets a login's password in the instance's sasldb.
func (s *Server) saslpasswd(addr, password string) error {
	local, domain, err := splitLogin(addr)
	if err != nil {
		return err
	}
	if password == "" || strings.ContainsAny(password, "\r\n") {
		return fmt.Errorf("login %s: password empty or with a line break", addr)
	}
	if domain == "" {
		domain = servername
	}
	db := filepath.Join(s.Dir, "sasldb2")
	cmd := exec.Command(saslpasswdBin, "-f", db, "-p", "-c", "-u", domain, local)
	cmd.Stdin = strings.NewReader(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("saslpasswd2 %s: %v: %s", addr, err, strings.TrimSpace(string(out)))
	}
	// imapd (user cyrus) reads it.
	if err := os.Chown(db, s.cyrusUID, s.mailGID); err != nil {
		return err
	}
	return os.Chmod(db, 0o640)
}

// AddUser adds a login (NAME@DOMAIN, or NAME) with its password and creates
// the user's mailbox, so the user can log in and has an INBOX. It works
// while the instance runs.
func (s *Server) AddUser(addr, password string) error {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if _, ok := s.users[addr]; ok {
		return fmt.Errorf("add user %s: already added", addr)
	}
	if addr == s.AdminUser {
		return fmt.Errorf("add user %s: that is the instance's admin", addr)
	}
	if err := s.saslpasswd(addr, password); err != nil {
		return fmt.Errorf("add user %s: %w", addr, err)
	}
	if err := s.createUserMailbox(addr); err != nil {
		return fmt.Errorf("add user %s: %w\n%s", addr, err, s.Log())
	}
	s.users[addr] = password
	return nil
}

// userMailbox is the user's INBOX as the admin names it: "user.NAME@DOMAIN"
// (dots of NAME become '^', as Cyrus stores them, when "." separates
// levels) or "user/NAME@DOMAIN".
func (s *Server) userMailbox(addr string) string {
	local, domain, _ := strings.Cut(addr, "@")
	if s.Delimiter() == "." {
		local = strings.ReplaceAll(local, ".", "^")
	}
	name := "user" + s.Delimiter() + local
	if domain != "" {
		name += "@" + domain
	}
	return name
}

func (s *Server) password(addr string) (string, error) {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	pw, ok := s.users[addr]
	if !ok {
		return "", fmt.Errorf("user %s was never added (AddUser)", addr)
	}
	return pw, nil
}

// syslogReader receives what the instance's processes send to /dev/log and
// appends it, one line per message, to a file.
type syslogReader struct {
	conn *net.UnixConn
	done chan struct{}

	mu  sync.Mutex
	out *os.File
	buf []byte // everything so far, for contains
}

func listenSyslog(sock, logPath string) (*syslogReader, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		out.Close()
		return nil, err
	}
	// Cyrus's processes run as user cyrus.
	if err := os.Chmod(sock, 0o666); err != nil {
		conn.Close()
		out.Close()
		return nil, err
	}
	r := &syslogReader{conn: conn, done: make(chan struct{}), out: out}
	go r.read()
	return r, nil
}

func (r *syslogReader) read() {
	defer close(r.done)
	b := make([]byte, 64*1024)
	for {
		n, err := r.conn.Read(b)
		if err != nil {
			return
		}
		line := strings.TrimRight(string(b[:n]), "\x00\n") + "\n"
		r.mu.Lock()
		r.out.WriteString(line)
		if len(r.buf) < 8<<20 {
			r.buf = append(r.buf, line...)
		}
		r.mu.Unlock()
	}
}

func (r *syslogReader) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Contains(string(r.buf), s)
}

func (r *syslogReader) close() {
	r.conn.Close()
	<-r.done
	r.mu.Lock()
	r.out.Close()
	r.mu.Unlock()
}
