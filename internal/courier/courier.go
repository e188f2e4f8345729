// Package courier runs private Courier-IMAP 5 instances on loopback for
// tests: each lives in its own temporary folder, on its own port, inside its
// own mount and pid namespaces, and is stopped by pid (never by process
// name).
//
// Debian's courier-imap package conflicts with dovecot-imapd, so
// scripts/install-deps.sh installs the non-conflicting courier-base
// (couriertcpd, maildirmake.courier), courier-authdaemon and
// courier-authlib-userdb, and unpacks courier-imap's imapd and imaplogin
// into CourierDir without dpkg.
//
// Courier's authentication library has compiled-in paths
// (/etc/courier/authdaemonrc, /etc/courier/userdb.dat,
// /run/courier/authdaemon/socket). Each instance therefore runs authdaemond
// and couriertcpd in a private mount namespace in which its own folders
// DIR/etc and DIR/run are bind-mounted over /etc/courier and /run/courier:
// the real ones are never written. Users live in DIR/etc/userdb (compiled
// with makeuserdb), their mail in DIR/home/LOGIN/Maildir, owned by the
// system user dovecot.MailUser.
package courier

import (
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/imapfill"
	"github.com/banjia-mail/banjia/internal/instance"
	"github.com/banjia-mail/banjia/internal/isolate"
)

// CourierDir is where scripts/install-deps.sh unpacks the courier-imap package.
const CourierDir = "/opt/banjia-servers/courier"

const (
	imapdBin       = CourierDir + "/usr/bin/imapd"
	imaploginBin   = CourierDir + "/usr/lib/courier/courier/imaplogin"
	couriertcpdBin = "/usr/sbin/couriertcpd"
	authdaemondBin = "/usr/lib/courier/courier-authlib/authdaemond"
	makeuserdbBin  = "/usr/sbin/makeuserdb"
	maildirmakeBin = "/usr/bin/maildirmake.courier"
)

// Capability is the IMAP_CAPABILITY an instance announces: Debian's
// (from courier-imap's /etc/courier/imapd) with AUTH=PLAIN, as its
// start script offers when TLS is on, since tests run plain on loopback.
const Capability = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE AUTH=PLAIN"

// Server is a running instance.
type Server struct {
	Dir      string
	IMAPAddr string // plain IMAP on 127.0.0.1; LOGIN and AUTHENTICATE PLAIN allowed

	uid, gid int
	ns       *isolate.Namespace
	fill     *imapfill.Folders

	usersMu sync.Mutex
	users   map[string]string // login -> password

	stopOnce sync.Once
	stopErr  error
}

var (
	availableOnce sync.Once
	availableErr  error
)

// Available says whether private Courier instances can run here; the error
// is a reason a person can act on.
func Available() error {
	availableOnce.Do(func() {
		for _, p := range []string{imapdBin, imaploginBin, couriertcpdBin, authdaemondBin, makeuserdbBin, maildirmakeBin} {
			if _, err := os.Stat(p); err != nil {
				availableErr = fmt.Errorf("Courier-IMAP not installed (%s missing): run scripts/install-deps.sh", p)
				return
			}
		}
		if os.Geteuid() != 0 {
			availableErr = errors.New("Courier-IMAP is installed but private instances need root (private mount namespaces, mail owned by a dedicated user): run the tests as root")
			return
		}
		availableErr = isolate.Usable()
	})
	return availableErr
}

// Require skips the test, loudly, when Courier cannot run here, or fails it
// when BANJIA_REQUIRE_SERVERS=1 (CI), so a missing server never passes silently.
func Require(t testing.TB) {
	t.Helper()
	instance.Require(t, "Courier-IMAP", Available())
}

// StartT starts an instance for a test and stops it when the test ends.
func StartT(t testing.TB) *Server {
	t.Helper()
	Require(t)
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop courier: %v", err)
		}
	})
	return s
}

// Delimiter is Courier's hierarchy separator.
func (s *Server) Delimiter() string { return "." }

// Prefix is the personal namespace's prefix: every folder is under INBOX.
func (s *Server) Prefix() string { return "INBOX." }

// Log returns the end of the instance's log (authdaemond, couriertcpd,
// imaplogin and imapd all write to it), for test failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log", "courier.log"))
	if len(b) == 0 {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "--- courier.log:\n" + strings.Join(lines, "\n")
}

// errPortInUse marks a start that lost the race for its port.
var errPortInUse = errors.New("port in use")

// Start starts an instance on a free loopback port. The port is picked by
// binding :0 and closing, so another process can take it before
// couriertcpd binds it; such a start is retried on a fresh port.
func Start() (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	uid, gid, err := dovecot.MailIDs()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		s, err := start(uid, gid)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == 8 {
			return nil, err
		}
	}
}

// pickPort is instance.FreePort; a test swaps it to lose the port race on purpose.
var pickPort = instance.FreePort

func start(uid, gid int) (*Server, error) {
	dir, err := instance.Dir("cr", " \t\"'\\|=")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, uid: uid, gid: gid, users: map[string]string{}}
	fail := func(err error) (*Server, error) {
		s.Stop()
		return nil, err
	}
	// etc/ goes over /etc/courier and run/ over /run/courier, in the namespace.
	for _, d := range []string{"etc", "etc/shared", "run", "run/authdaemon", "home", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return fail(err)
		}
	}
	port, err := pickPort()
	if err != nil {
		return fail(err)
	}
	s.IMAPAddr = fmt.Sprintf("127.0.0.1:%d", port)
	s.fill = &imapfill.Folders{Addr: s.IMAPAddr, Prefix: s.Prefix(), Delim: s.Delimiter(), Password: s.password}
	files := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		// authuserdb only; authdaemond's own defaults otherwise.
		{"etc/authdaemonrc", "authmodulelist=\"authuserdb\"\nauthmodulelistorig=\"authuserdb\"\ndaemons=3\nauthdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\nDEFAULTOPTIONS=\"\"\nLOGGEROPTS=\"\"\n", 0o644},
		// makeuserdb refuses a userdb with group or world permissions.
		{"etc/userdb", "", 0o600},
		{"start.sh", s.startScript(port), 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.content), f.mode); err != nil {
			return fail(err)
		}
	}
	if err := s.makeuserdb(); err != nil {
		return fail(err)
	}
	if err := s.run(); err != nil {
		return fail(err)
	}
	return s, nil
}

// env is the environment Courier's own start script
// (/usr/lib/courier/imapd start) gives couriertcpd, from Debian's
// /etc/courier/imapd and imapd-ssl, for plain IMAP on loopback.
func env() [][2]string {
	return [][2]string{
		{"PATH", "/usr/bin:/bin:/usr/sbin:/sbin"},
		{"IMAP_CAPABILITY", Capability},
		{"IMAP_KEYWORDS", "1"},
		{"IMAP_ACL", "1"},
		{"IMAP_PROXY", "0"},
		{"IMAP_PROXY_FOREIGN", "0"},
		// How often IDLE polls the folder, in seconds (no FAM here).
		{"IMAP_IDLE_TIMEOUT", "60"},
		{"IMAP_MAILBOX_SANITY_CHECK", "1"},
		{"IMAP_DISABLETHREADSORT", "0"},
		{"IMAP_CHECK_ALL_FOLDERS", "0"},
		{"IMAP_OBSOLETE_CLIENT", "0"},
		{"IMAP_UMASK", "022"},
		{"IMAP_USELOCKS", "1"},
		{"IMAP_SHAREDINDEXFILE", "/etc/courier/shared/index"},
		{"IMAP_ENHANCEDIDLE", "0"},
		{"IMAP_TRASHFOLDERNAME", "Trash"},
		// Purges Trash messages moved there over 7 days ago (by ctime, so
		// not what Deliver puts there).
		{"IMAP_EMPTYTRASH", "Trash:7"},
		{"IMAP_MOVE_EXPUNGE_TO_TRASH", "0"},
		{"IMAP_STARTTLS", "NO"},
		{"IMAP_TLS_REQUIRED", "0"},
		{"SENDMAIL", "/usr/sbin/sendmail"},
		{"HEADERFROM", "X-IMAP-Sender"},
		{"MAILDIRPATH", "Maildir"},
	}
}

// startScript runs inside the new namespaces, as their first process: the
// bind mounts, authdaemond, then couriertcpd in the foreground with
// Courier's environment.
func (s *Server) startScript(port int) string {
	dir := s.Dir
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Runs inside private mount and pid namespaces (unshare); see internal/courier.")
	p("mount --bind %s /etc/courier", isolate.Quote(dir+"/etc"))
	p("mount --bind %s /run/courier", isolate.Quote(dir+"/run"))
	p("umask 022")
	p("env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin %s &", authdaemondBin)
	p("i=0")
	p("while [ ! -S /run/courier/authdaemon/socket ]; do")
	p("  i=$((i+1)); [ $i -lt 500 ] || { echo 'authdaemond made no socket within 10s' >&2; exit 1; }")
	p("  sleep 0.02")
	p("done")
	var e []string
	for _, kv := range env() {
		e = append(e, kv[0]+"="+isolate.Quote(kv[1]))
	}
	// Up to 200 connections in all and from one address (Debian: 40 and
	// 20; couriertcpd's own per-address default is 4): tests connect a lot.
	p("env -i %s %s -address=127.0.0.1 -maxprocs=200 -maxperip=200 -nodnslookup -noidentlookup %d %s %s Maildir &",
		strings.Join(e, " "), couriertcpdBin, port, imaploginBin, imapdBin)
	// The shell stays, as the namespace's first process, until couriertcpd ends.
	p("wait $!")
	return b.String()
}

// run starts the namespace and waits for the IMAP greeting.
func (s *Server) run() error {
	ns, err := isolate.Start(filepath.Join(s.Dir, "start.sh"), filepath.Join(s.Dir, "log", "courier.log"))
	s.ns = ns
	if err != nil {
		return fmt.Errorf("start courier: %w; its log ends:\n%s", err, s.Log())
	}
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if !ns.Running() {
			if strings.Contains(s.Log(), "Address already in use") {
				return fmt.Errorf("start courier on %s: %w:\n%s", s.IMAPAddr, errPortInUse, s.Log())
			}
			return fmt.Errorf("courier exited at start; its log ends:\n%s", s.Log())
		}
		if last = instance.Greeting(s.IMAPAddr); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("courier did not greet on %s within 30s (%v); its log ends:\n%s", s.IMAPAddr, last, s.Log())
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
			errs = append(errs, fmt.Errorf("stop courier: %w", err))
		}
	}
	if s.Dir != "" && os.Getenv("BANJIA_KEEP_SERVERS") != "1" {
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AddUser adds a login (any name without spaces, controls or '|', e.g.
// alice@new.example) with its password, and makes its Maildir, so the user
// can log in and has an INBOX. It works while the instance runs: authlib
// reopens userdb.dat when makeuserdb replaces it.
func (s *Server) AddUser(addr, password string) error {
	if addr == "" || strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '|' || r == '/' }) || addr == "." || addr == ".." {
		return fmt.Errorf("add user %q: empty, or holds spaces, controls, '|' or '/'", addr)
	}
	if password == "" || strings.ContainsAny(password, "\r\n") {
		return fmt.Errorf("add user %s: password empty or with a line break", addr)
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if _, ok := s.users[addr]; ok {
		return fmt.Errorf("add user %s: already added", addr)
	}
	home := filepath.Join(s.Dir, "home", addr)
	if err := os.Mkdir(home, 0o700); err != nil {
		return fmt.Errorf("add user %s: %w", addr, err)
	}
	maildir := filepath.Join(home, "Maildir")
	if out, err := exec.Command(maildirmakeBin, maildir).CombinedOutput(); err != nil {
		return fmt.Errorf("add user %s: maildirmake: %v: %s", addr, err, strings.TrimSpace(string(out)))
	}
	if err := chownTree(home, s.uid, s.gid); err != nil {
		return fmt.Errorf("add user %s: %w", addr, err)
	}
	// authlib checks {SHA512} (base64 of the SHA-512 of the password)
	// besides crypt(3) hashes.
	sum := sha512.Sum512([]byte(password))
	line := fmt.Sprintf("%s\tuid=%d|gid=%d|home=%s|mail=%s|systempw={SHA512}%s\n",
		addr, s.uid, s.gid, home, maildir, base64.StdEncoding.EncodeToString(sum[:]))
	f, err := os.OpenFile(filepath.Join(s.Dir, "etc", "userdb"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("add user %s: %w", addr, err)
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("add user %s: %w", addr, err)
	}
	if err := s.makeuserdb(); err != nil {
		return fmt.Errorf("add user %s: %w", addr, err)
	}
	s.users[addr] = password
	return nil
}

// makeuserdb compiles DIR/etc/userdb into userdb.dat and userdbshadow.dat,
// which authdaemond sees as /etc/courier/userdb.dat in the namespace.
func (s *Server) makeuserdb() error {
	out, err := exec.Command(makeuserdbBin, "-f", filepath.Join(s.Dir, "etc", "userdb")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("makeuserdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
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
