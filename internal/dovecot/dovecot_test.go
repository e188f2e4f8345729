package dovecot

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/banjia-mail/banjia/internal/imapfill"
	"github.com/banjia-mail/banjia/internal/instance"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/procstat"
	"github.com/banjia-mail/banjia/mail"
)

func msg(i int, date time.Time, flags ...string) Message {
	body := fmt.Sprintf("From: a@x.test\r\nTo: b@y.test\r\nSubject: test %d\r\nDate: %s\r\nMessage-ID: <%d@x.test>\r\n\r\nbody %d\r\nsecond line\r\n",
		i, date.Format(time.RFC1123Z), i, i)
	return Message{Body: []byte(body), Flags: flags, Date: date}
}

func TestDeliverAndSnapshot(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{})
	if err := s.AddUser("u@x.test", "pw"); err != nil {
		t.Fatal(err)
	}
	d := time.Date(2017, 3, 4, 5, 6, 7, 0, time.FixedZone("", 8*3600))
	want := map[string][]Message{
		"INBOX": {msg(1, d, `\Seen`, "work"), msg(2, d.Add(time.Hour)), msg(3, d.Add(-24*time.Hour), `\Flagged`, `\Seen`)},
		"Sent":  {msg(4, d.Add(48*time.Hour), `\Answered`, `\Flagged`, `\Draft`, `\Seen`), msg(5, d.AddDate(-1, 0, 0), "$Label1")},
		"客户/北京": {msg(6, d.Add(72*time.Hour), "$Forwarded", `\Seen`, "work")},
	}
	for _, f := range []string{"INBOX", "Sent", "客户/北京"} {
		if err := s.Deliver("u@x.test", f, want[f]); err != nil {
			t.Fatal(err)
		}
	}
	// A second delivery to a folder lands after the first, in order.
	more := []Message{msg(7, d.AddDate(2, 0, 0), `\Seen`), msg(8, d.AddDate(-3, 0, 0), "$Label1")}
	if err := s.Deliver("u@x.test", "INBOX", more); err != nil {
		t.Fatal(err)
	}
	want["INBOX"] = append(want["INBOX"], more...)

	got, delim, err := Snapshot(s.IMAPAddr, "u@x.test", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if delim != "." || s.Delimiter() != "." {
		t.Fatalf("delimiter %q, Delimiter() %q, want .", delim, s.Delimiter())
	}
	if len(got) != 3 {
		t.Fatalf("folders %v, want INBOX, Sent, 客户.北京", slices.Sorted(maps.Keys(got)))
	}
	for f, msgs := range want {
		CompareFolder(t, f, got[strings.ReplaceAll(f, "/", ".")], msgs)
	}
}

func TestDeliverRefusesWhatMaildirCannotHold(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{})
	s.AddUser("u@x.test", "pw")
	d := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		folder string
		flags  []string
	}{
		{"v1.2", nil},
		{"a//b", nil},
		{"INBOX", []string{`\Bogus`}},
		{"INBOX", []string{"two words"}},
	} {
		if err := s.Deliver("u@x.test", c.folder, []Message{msg(1, d, c.flags...)}); err == nil {
			t.Errorf("Deliver to %q with flags %q: no error", c.folder, c.flags)
		}
	}
}

func TestSdbox(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{Format: "sdbox"})
	s.AddUser("u@x.test", "pw")
	d := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	want := []Message{msg(1, d, `\Seen`, "work"), msg(2, d.Add(-time.Hour), `\Draft`)}
	if err := s.Deliver("u@x.test", "项目/2024/报告", want); err != nil {
		t.Fatal(err)
	}
	got, delim, err := Snapshot(s.IMAPAddr, "u@x.test", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if delim != "/" || s.Delimiter() != "/" {
		t.Fatalf("delimiter %q, Delimiter() %q, want /", delim, s.Delimiter())
	}
	CompareFolder(t, "项目/2024/报告", got["项目/2024/报告"], want)
}

func TestCapabilitiesAndSpecialUse(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{TLS: true})
	s.AddUser("u@x.test", "pw")
	c, err := imapfill.Dial(s.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Caps().Has(imap.CapStartTLS) {
		t.Errorf("no STARTTLS before login with TLS on: %v", c.Caps())
	}
	if err := c.Login("u@x.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapUIDPlus, imap.CapLiteralPlus, imap.CapSpecialUse} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing: %v", want, caps)
		}
	}
	// Special-use folders exist only once created, and then carry their attribute.
	if err := c.Create("Sent", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
		if l.Mailbox == "Sent" && !slices.Contains(l.Attrs, imap.MailboxAttrSent) {
			t.Errorf("Sent has attributes %v, want \\Sent", l.Attrs)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"INBOX", "Sent"}) {
		t.Errorf("folders %v, want INBOX and Sent only", names)
	}
}

func TestTLSAndMasterUser(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{TLS: true, MasterUser: "admin", MasterPassword: "adminpw"})
	s.AddUser("member@x.test", "memberpw")
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.CertPEM) {
		t.Fatal("CertPEM holds no certificate")
	}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		c, err := imapclient.DialTLS(s.IMAPSAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: roots, ServerName: name}})
		if err != nil {
			t.Fatalf("IMAPS as %s: %v", name, err)
		}
		if err := c.Login("member@x.test*admin", "adminpw").Wait(); err != nil {
			t.Fatalf("master LOGIN over IMAPS: %v", err)
		}
		c.Close()
	}
	c, err := imapclient.DialStartTLS(s.IMAPAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Authenticate(sasl.NewPlainClient("member@x.test", "admin", "adminpw")); err != nil {
		t.Fatalf("master SASL PLAIN: %v", err)
	}
	c.Close()
	c, err = imapfill.Dial(s.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("member@x.test*admin", "wrong").Wait(); err == nil {
		t.Error("master LOGIN with a wrong password succeeded")
	}
	c.Close()
	conn, err := tls.Dial("tcp", s.POP3SAddr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("POP3S: %v", err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(line, "+OK") {
		t.Fatalf("POP3S greeting %q", line)
	}
}

func TestPOP3(t *testing.T) {
	t.Parallel()
	s := StartT(t, Options{})
	s.AddUser("u@x.test", "pw")
	d := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := s.Deliver("u@x.test", "INBOX", []Message{msg(1, d), msg(2, d)}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", s.POP3Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	read := func() string {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return line
	}
	if l := read(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("greeting %q", l)
	}
	for _, cmd := range []string{"USER u@x.test", "PASS pw", "STAT"} {
		fmt.Fprintf(conn, "%s\r\n", cmd)
		if l := read(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("%s: %q", cmd, l)
		} else if cmd == "STAT" && !strings.HasPrefix(l, "+OK 2 ") {
			t.Fatalf("STAT %q, want 2 messages", l)
		}
	}
	fmt.Fprintf(conn, "UIDL 1\r\n")
	// pop3_uidl_format %08Xu%08Xv: UID 1 and the UIDVALIDITY, 16 hex digits.
	if l := strings.Fields(read()); len(l) != 3 || len(l[2]) != 16 || !strings.HasPrefix(l[2], "00000001") {
		t.Fatalf("UIDL %q", l)
	}
}

func TestStopLeavesNothing(t *testing.T) {
	t.Parallel()
	Require(t)
	s, err := Start(Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	pid := s.cmd.Process.Pid
	c, err := imapfill.Dial(s.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	children := procstat.Children(pid)
	if len(children) == 0 {
		t.Fatal("found no processes under the master")
	}
	dir := s.Dir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("master %d still exists", pid)
	}
	if left := waitGone(children, 0); len(left) > 0 {
		t.Errorf("processes %v remain", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s remains: %v", dir, err)
	}
	if _, err := net.DialTimeout("tcp", s.IMAPAddr, time.Second); err == nil {
		t.Errorf("%s still accepts connections", s.IMAPAddr)
	}
}

// TestPortRace loses the race for a port once (another process binds it
// between the pick and Dovecot's bind): Start must retry on fresh ports.
func TestPortRace(t *testing.T) {
	Require(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 && err == nil {
			ports[1] = taken.Addr().(*net.TCPAddr).Port
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()
	s := StartT(t, Options{})
	if calls != 2 {
		t.Fatalf("ports picked %d times, want 2 (one lost race, one retry)", calls)
	}
	if s.POP3Addr == taken.Addr().String() {
		t.Fatal("POP3 on the taken port")
	}
	if err := instance.Greeting(s.IMAPAddr); err != nil {
		t.Fatal(err)
	}
}

// TestDeliverFast fills 20 users with 500 messages each, the size a
// benchmark uses: it must take seconds, not minutes.
func TestDeliverFast(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 10,000 messages")
	}
	t.Parallel()
	s := StartT(t, Options{})
	type job struct {
		user    string
		folders []string
		msgs    map[string][]Message
	}
	var jobs []job
	for u := 0; u < 20; u++ {
		j := job{user: fmt.Sprintf("u%02d@x.test", u), msgs: map[string][]Message{}}
		for _, m := range mailgen.Mailbox(j.user, mailgen.Options{Seed: int64(u), Messages: 500}) {
			if _, ok := j.msgs[m.Folder]; !ok {
				j.folders = append(j.folders, m.Folder)
			}
			j.msgs[m.Folder] = append(j.msgs[m.Folder], Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
		}
		if err := s.AddUser(j.user, "pw"); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	deliver := func(j job) error {
		for _, f := range j.folders {
			if err := s.Deliver(j.user, f, j.msgs[f]); err != nil {
				return err
			}
		}
		return nil
	}
	start := time.Now()
	for _, j := range jobs[:10] {
		if err := deliver(j); err != nil {
			t.Fatal(err)
		}
	}
	sequential := time.Since(start)
	start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for _, j := range jobs[10:] {
		wg.Go(func() { errs <- deliver(j) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	parallel := time.Since(start)
	t.Logf("Deliver 10 users x 500 messages: %v one user after another, %v for 10 more in parallel", sequential, parallel)
	if sequential+parallel > 60*time.Second {
		t.Errorf("Deliver of 20 x 500 messages took %v", sequential+parallel)
	}
	for _, j := range []job{jobs[0], jobs[19]} {
		got, _, err := Snapshot(s.IMAPAddr, j.user, "pw")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range j.folders {
			CompareFolder(t, f, got[strings.ReplaceAll(f, "/", ".")], j.msgs[f])
		}
	}
}

func TestEncodeUTF7(t *testing.T) {
	for in, want := range map[string]string{"INBOX": "INBOX", "客户": "&W6JiNw-", "a&b": "a&-b", "Entwürfe": "Entw&APw-rfe",
		"Projects & Plans": "Projects &- Plans", "~peter/mail/台北/日本語": "~peter/mail/&U,BTFw-/&ZeVnLIqe-"} {
		if got := mail.EncodeMailbox(in); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	t.Parallel()
	Require(t)
	s, err := Start(Options{ExtraConfig: "no_such_setting = 1"})
	if err == nil {
		s.Stop()
		t.Fatal("Start with a bad setting succeeded")
	}
	if !strings.Contains(err.Error(), "no_such_setting") {
		t.Fatalf("error does not show Dovecot's complaint: %v", err)
	}
	if _, err := Start(Options{Format: "mbox"}); err == nil {
		t.Fatal("Start with format mbox succeeded")
	}
}
