package migrate_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/internal/courier"
	"github.com/banjia-mail/banjia/internal/cyrus"
	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
)

// mailServer is what the cross-server tests need of a real IMAP server.
type mailServer interface {
	Addr() string
	AddUser(addr, password string) error
	// Deliver and CreateFolder take names relative to the personal
	// namespace, with "/" between levels.
	Deliver(user, folder string, msgs []dovecot.Message) error
	CreateFolder(user, folder string) error
	Prefix() string
}

type dovecotServer struct{ *dovecot.Server }

func (d dovecotServer) Addr() string   { return d.IMAPAddr }
func (d dovecotServer) Prefix() string { return "" }
func (d dovecotServer) CreateFolder(user, folder string) error {
	return d.Server.Deliver(user, folder, nil)
}

type cyrusServer struct{ *cyrus.Server }

func (c cyrusServer) Addr() string { return c.IMAPAddr }

type courierServer struct{ *courier.Server }

func (c courierServer) Addr() string { return c.IMAPAddr }

// serverKinds start each real server the tests run on.
var serverKinds = map[string]func(t *testing.T) mailServer{
	"dovecot": func(t *testing.T) mailServer {
		return dovecotServer{dovecot.StartT(t, dovecot.Options{Format: "sdbox"})}
	},
	"cyrus": func(t *testing.T) mailServer {
		cyrus.Require(t)
		return cyrusServer{cyrus.StartT(t, cyrus.Options{})}
	},
	"cyrus-altnamespace": func(t *testing.T) mailServer {
		cyrus.Require(t)
		return cyrusServer{cyrus.StartT(t, cyrus.Options{AltNamespace: true})}
	},
	"courier": func(t *testing.T) mailServer {
		courier.Require(t)
		return courierServer{courier.StartT(t)}
	},
}

// corpusSize is the accounts and messages per account of the cross-server
// runs: the acceptance corpus of 20 x 500, or 4 x 150 with -short;
// BANJIA_SERVERS_CORPUS=AxM sets it.
func corpusSize(t *testing.T) (accounts, messages int) {
	accounts, messages = 20, 500
	if testing.Short() {
		accounts, messages = 4, 150
	}
	if v := os.Getenv("BANJIA_SERVERS_CORPUS"); v != "" {
		a, m, ok := strings.Cut(v, "x")
		var err1, err2 error
		accounts, err1 = strconv.Atoi(a)
		messages, err2 = strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("BANJIA_SERVERS_CORPUS=%q: want ACCOUNTSxMESSAGES", v)
		}
	}
	return accounts, messages
}

// emptyFolders are created on every source, with nothing in them.
var emptyFolders = []string{"Empty", "空文件夹/子"}

// TestEveryServer copies the corpus (Chinese, nested and empty folders,
// flags, keywords, dates, duplicate and missing Message-IDs) between real
// servers with different namespaces: into Cyrus (both namespace layouts)
// and Courier from Dovecot, and out of each of them into Dovecot.
// Every message arrives byte for byte with its flags and INTERNALDATE,
// every folder (empty ones too) under its name in the target's namespace,
// subscriptions come along, every account reads 搬家成功 with counts the
// target proves, and a re-run appends nothing.
func TestEveryServer(t *testing.T) {
	migratetest.NeedsRealServers(t, "Cyrus and Courier, with their namespaces and limits")
	cases := []struct{ src, dst string }{
		{"dovecot", "cyrus"},
		{"dovecot", "cyrus-altnamespace"},
		{"dovecot", "courier"},
		{"cyrus", "dovecot"},
		{"cyrus-altnamespace", "dovecot"},
		{"courier", "dovecot"},
	}
	for _, c := range cases {
		t.Run(c.src+"-to-"+c.dst, func(t *testing.T) {
			t.Parallel()
			serverRun(t, serverKinds[c.src](t), serverKinds[c.dst](t))
		})
	}
}

func serverRun(t *testing.T, src, dst mailServer) {
	accounts, messages := corpusSize(t)
	var users []migratetest.User
	for i := 0; i < accounts; i++ {
		u := migratetest.User{Old: fmt.Sprintf("u%02d@old.test", i), New: fmt.Sprintf("u%02d@new.test", i),
			OldPW: fmt.Sprintf("old-pw-%d", i), NewPW: fmt.Sprintf("new-pw-%d", i)}
		u.SourcePW = u.OldPW
		if err := src.AddUser(u.Old, u.OldPW); err != nil {
			t.Fatal(err)
		}
		if err := dst.AddUser(u.New, u.NewPW); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	fill := time.Now()
	for i, u := range users {
		migratetest.Fill(t, src.Deliver, u.Old, mailgen.Options{Seed: int64(i + 1), Messages: messages, MaxAttachment: 100 << 10,
			NoMessageIDEvery: 17, DuplicateIDEvery: 23})
		for _, f := range emptyFolders {
			if err := src.CreateFolder(u.Old, f); err != nil {
				t.Fatal(err)
			}
		}
		// The member subscribed some folders, not all.
		c := session(t, src.Addr(), u.Old, u.OldPW)
		for _, f := range []string{"Sent", "Empty", "客户/北京"} {
			if err := c.Subscribe(fullName(src, f)).Wait(); err != nil {
				t.Fatal(err)
			}
		}
		c.Logout().Wait()
	}
	t.Logf("source filled in %v", time.Since(fill).Round(time.Millisecond))

	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w := &migratetest.World{T: t, Store: store, Job: "acme", Users: users}
	job := &state.Job{ID: w.Job, State: state.JobCreated, Created: time.Now(),
		Source: migratetest.Endpoint(src.Addr()), Target: migratetest.Endpoint(dst.Addr())}
	if err := store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		a := &state.Account{ID: u.Old, Source: u.Old, Target: u.New, State: state.AccountNotStarted}
		a.SourceSecret, _ = store.Seal(u.OldPW)
		a.TargetSecret, _ = store.Seal(u.NewPW)
		if err := store.PutAccounts(w.Job, a); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]migratetest.Mailbox{}
	for _, u := range users {
		before[u.Old] = migratetest.SnapshotAt(t, src.Addr(), src.Prefix(), u.Old, u.OldPW)
	}

	// The second member already used the new mailbox: mail of their own,
	// and a byte-identical copy of a source message with other flags (an
	// earlier try with another tool). It stays as it was, through every run.
	owner := users[1]
	own := putOwnMail(t, dst, owner, before[owner.Old]["INBOX"][0])
	onTarget := func(u migratetest.User) migratetest.Mailbox {
		got := migratetest.SnapshotAt(t, dst.Addr(), dst.Prefix(), u.New, u.NewPW)
		if u == owner {
			got = migratetest.WithoutOwn(t, u.New, got, "INBOX", own)
		}
		return got
	}

	start := time.Now()
	var appended atomic.Int64
	cfg := migrate.Config{Accounts: 4, Lanes: 2}
	if os.Getenv("BANJIA_TEST_LOG") != "" {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if err := countingRunner(w, cfg, &appended).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	total := 0
	for _, u := range users {
		got := onTarget(u)
		n := migratetest.SameMail(t, u.Old, before[u.Old], got)
		total += n
		for _, f := range emptyFolders {
			if _, ok := got[f]; !ok {
				t.Errorf("%s: empty folder %q is not on the target (it has %v)", u.New, f, keysOf(got))
			}
		}
		a, err := store.Account(w.Job, u.Old)
		if err != nil {
			t.Fatal(err)
		}
		// Every count a person reads is one the target proves.
		if a.State != state.AccountSucceeded || a.Counts.Imported != int64(n) || a.Counts.ToImport != int64(n) || a.Counts.Failed != 0 {
			t.Errorf("%s: %s %+v %q; the target holds %d of the source's messages", u.Old, a.State, a.Counts, a.Reason, n)
		}
		var subs []string
		for _, s := range lsub(t, dst.Addr(), u.New, u.NewPW) {
			if !strings.EqualFold(s, "INBOX") {
				subs = append(subs, strings.ReplaceAll(strings.TrimPrefix(s, dst.Prefix()), delimOf(dst), "/"))
			}
		}
		sort.Strings(subs)
		want := []string{"Empty", "Sent", "客户/北京"}
		if _, ok := src.(courierServer); ok {
			// Courier has no LIST-EXTENDED, and go-imap no LSUB: from such
			// a source every folder is subscribed on the target.
			want = nil
			for name := range before[u.Old] {
				if name != "INBOX" {
					want = append(want, name)
				}
			}
		}
		for i := range want {
			want[i] = mail.EncodeMailbox(want[i])
		}
		sort.Strings(want)
		if strings.Join(subs, ",") != strings.Join(want, ",") {
			t.Errorf("%s: target subscriptions %q, want %q", u.New, subs, want)
		}
	}
	if appended.Load() != int64(total) {
		t.Errorf("%d APPENDs for %d messages", appended.Load(), total)
	}
	t.Logf("%d accounts, %d messages in %v (%.0f msg/s)", len(users), total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())

	w.Resupply()
	appended.Store(0)
	cfg.Rerun = true
	// Nothing is new: the re-run asks the source for no body either, also
	// from a server without UIDNEXT in its SELECT answer (Courier).
	var bodies, lists atomic.Int64
	cfg.OpenSource = func(ctx context.Context, e mail.Endpoint) (sources.Source, error) {
		s, err := sources.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		return &countedSource{Source: s, bodies: &bodies, lists: &lists}, nil
	}
	if err := countingRunner(w, cfg, &appended).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	cfg.OpenSource = nil
	if n, b := appended.Load(), bodies.Load(); n != 0 || b != 0 {
		t.Errorf("re-run appended %d messages and fetched %d bodies from the source", n, b)
	}

	// The target is the truth on this server too (Courier has no
	// LIST-STATUS): one folder deleted and INBOX emptied by the target's
	// admin are noticed, and exactly what they held is copied again.
	u := users[0]
	lost := len(before[u.Old]["Archive/2019"]) + len(before[u.Old]["INBOX"])
	c := session(t, dst.Addr(), u.New, u.NewPW)
	if err := c.Delete(fullName(dst, "Archive/2019")).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	w.Resupply()
	appended.Store(0)
	if err := countingRunner(w, cfg, &appended).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	if n := appended.Load(); n != int64(lost) {
		t.Errorf("after the target lost %d messages, the re-run appended %d", lost, n)
	}
	migratetest.SameMail(t, u.Old, before[u.Old], onTarget(u))
	if a, _ := store.Account(w.Job, u.Old); a.State != state.AccountSucceeded || a.Counts.Imported != a.Counts.ToImport {
		t.Errorf("after the target reset: %s %+v %q", a.State, a.Counts, a.Reason)
	}
	migratetest.SameMail(t, owner.Old, before[owner.Old], onTarget(owner))

	// Three runs, and the source is as it was: nothing read, flagged,
	// moved or deleted.
	after := map[string]migratetest.Mailbox{}
	for _, u := range users {
		after[u.Old] = migratetest.SnapshotAt(t, src.Addr(), src.Prefix(), u.Old, u.OldPW)
	}
	migratetest.Unchanged(t, before, after)
}

// putOwnMail appends to the member's target INBOX a message of their own
// and a byte-identical copy of like with other flags, and returns them as
// the target must keep them.
func putOwnMail(t *testing.T, dst mailServer, u migratetest.User, like dovecot.SnapMessage) []dovecot.SnapMessage {
	t.Helper()
	flags := []string{`\Answered`, `\Flagged`}
	if slices.Equal(like.Flags, flags) {
		flags = []string{`\Draft`}
	}
	own := []dovecot.SnapMessage{
		{Body: []byte("From: friend@elsewhere.example\r\nTo: " + u.New + "\r\nSubject: already in the new mailbox\r\nMessage-ID: <own-1@elsewhere.example>\r\n\r\nWritten before the move.\r\n"),
			Flags: []string{`\Flagged`, `\Seen`}, Date: time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC)},
		{Body: like.Body, Flags: flags, Date: like.Date},
	}
	c := session(t, dst.Addr(), u.New, u.NewPW)
	defer func() { c.Logout().Wait() }()
	for _, m := range own {
		var fl []imap.Flag
		for _, f := range m.Flags {
			fl = append(fl, imap.Flag(f))
		}
		cmd := c.Append("INBOX", int64(len(m.Body)), &imap.AppendOptions{Flags: fl, Time: m.Date})
		cmd.Write(m.Body)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("own mail on the target: %v", err)
		}
	}
	return own
}

// fullName is a relative folder name as the server spells it.
func fullName(s mailServer, rel string) string {
	return s.Prefix() + strings.ReplaceAll(rel, "/", delimOf(s))
}

func delimOf(s mailServer) string {
	switch s := s.(type) {
	case dovecotServer:
		return s.Delimiter()
	case cyrusServer:
		return s.Delimiter()
	case courierServer:
		return s.Delimiter()
	}
	return "/"
}

// lsub is LSUB over a raw session (go-imap has no LSUB, and Courier does
// not honour LIST (SUBSCRIBED)): the subscribed names as the server sends
// them, modified UTF-7.
func lsub(t *testing.T, addr, user, pw string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// Courier drops commands pipelined behind LOGIN: wait for its answer.
	fmt.Fprintf(c, "a1 LOGIN %q %q\r\n", user, pw)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("login on %s: %q %v", addr, l, err)
	}
	fmt.Fprintf(c, "a2 LSUB \"\" \"*\"\r\na3 LOGOUT\r\n")
	var out []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("LSUB on %s: %v", addr, err)
		}
		l = strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(l, "a1 ") && !strings.HasPrefix(l, "a1 OK") || strings.HasPrefix(l, "a2 ") && !strings.HasPrefix(l, "a2 OK") {
			t.Fatalf("LSUB on %s: %s", addr, l)
		}
		if strings.HasPrefix(l, "a2 OK") {
			return out
		}
		if rest, ok := strings.CutPrefix(l, "* LSUB "); ok {
			// (attrs) "delim" name: the name is the last field, quoted or not.
			i := strings.LastIndex(rest, "\" ")
			name := rest[i+2:]
			if uq, err := strconv.Unquote(name); err == nil {
				name = uq
			}
			if !strings.Contains(rest[:strings.Index(rest, ")")], `\Noselect`) {
				out = append(out, name)
			}
		}
	}
}

// TestCyrusLimits: Cyrus refuses "%" in a folder name and more than 100
// keywords in a folder. The folder is tried under its own name first and
// then under one with "_", and the event log says so; messages whose
// keywords Cyrus refuses arrive without them (an event names what was
// dropped) and are not failures: the account reads 搬家成功.
func TestCyrusLimits(t *testing.T) {
	migratetest.NeedsRealServers(t, "what Cyrus refuses in folder names and keywords")
	cyrus.Require(t)
	src := dovecotServer{dovecot.StartT(t, dovecot.Options{Format: "sdbox"})}
	dst := cyrusServer{cyrus.StartT(t, cyrus.Options{})}
	u := migratetest.User{Old: "kw@old.test", New: "kw@new.test", OldPW: "old-pw", NewPW: "new-pw", SourcePW: "old-pw"}
	if err := src.AddUser(u.Old, u.OldPW); err != nil {
		t.Fatal(err)
	}
	if err := dst.AddUser(u.New, u.NewPW); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	var tagged, pct []dovecot.Message
	for i := 0; i < 110; i++ {
		tagged = append(tagged, dovecot.Message{Date: date.Add(time.Duration(i) * time.Minute),
			Body:  []byte(fmt.Sprintf("From: a@old.test\r\nSubject: tag %d\r\n\r\nbody %d\r\n", i, i)),
			Flags: []string{`\Seen`, fmt.Sprintf("tag%03d", i)}})
	}
	for i := 0; i < 3; i++ {
		pct = append(pct, dovecot.Message{Date: date, Body: []byte(fmt.Sprintf("From: a@old.test\r\nSubject: pct %d\r\n\r\n%d%%\r\n", i, i))})
	}
	if err := src.Deliver(u.Old, "Tags", tagged); err != nil {
		t.Fatal(err)
	}
	if err := src.Deliver(u.Old, "100%", pct); err != nil {
		t.Fatal(err)
	}
	w := oneAccount(t, src, dst, u)
	before := migratetest.SnapshotAt(t, src.Addr(), "", u.Old, u.OldPW)
	if err := runner(w, migrate.Config{Lanes: 2}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	a, err := w.Store.Account(w.Job, u.Old)
	if err != nil {
		t.Fatal(err)
	}
	if a.State != state.AccountSucceeded || a.Counts.Imported != 113 || a.Counts.Failed != 0 {
		t.Fatalf("account %s %+v %q", a.State, a.Counts, a.Reason)
	}
	got := migratetest.SnapshotAt(t, dst.Addr(), dst.Prefix(), u.New, u.NewPW)
	if _, ok := got["100%"]; ok {
		t.Fatalf("Cyrus took \"100%%\" after all; this test proves nothing")
	}
	want := migratetest.Mailbox{"100_": before["100%"]}
	migratetest.SameMail(t, u.Old, want, migratetest.Mailbox{"100_": got["100_"]})
	renamed := strings.Join(events(t, w, "folder.renamed"), "\n")
	if !strings.Contains(renamed, `folder "100%" is "INBOX.100_" on the target: the server refused "INBOX.100%"`) || !strings.Contains(renamed, "Invalid mailbox name") {
		t.Errorf("rename events: %q", renamed)
	}
	// Every message of Tags arrived, byte for byte with its date; those
	// that lost their keyword are named in the log, and only those.
	if len(got["Tags"]) != len(tagged) {
		t.Fatalf("Tags: %d of %d messages on the target", len(got["Tags"]), len(tagged))
	}
	bare := map[string]bool{}
	for _, e := range events(t, w, "warning") {
		if strings.Contains(e, "is copied without its keywords") {
			_, kw, _ := strings.Cut(e, "without its keywords ")
			kw, _, _ = strings.Cut(kw, ":")
			bare[kw] = true
		}
	}
	withKW := 0
	for _, m := range got["Tags"] {
		kw := ""
		for _, f := range m.Flags {
			if strings.HasPrefix(f, "tag") {
				kw = f
			}
		}
		if kw != "" {
			withKW++
		}
	}
	t.Logf("Tags: %d messages kept their keyword, %d copied without it (logged)", withKW, len(bare))
	if withKW > 100 || withKW < 90 || len(bare) != len(tagged)-withKW {
		t.Errorf("%d messages kept their keyword, %d were logged as copied without it; want at most 100 kept and the rest logged", withKW, len(bare))
	}
	for _, m := range migratetest.SnapshotAt(t, dst.Addr(), dst.Prefix(), u.New, u.NewPW)["Tags"] {
		if !slicesContains(m.Flags, `\Seen`) {
			t.Errorf("a message lost \\Seen with its keyword: %v", m.Flags)
			break
		}
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// oneAccount is a job of one account between two servers.
func oneAccount(t *testing.T, src, dst mailServer, u migratetest.User) *world {
	t.Helper()
	store, err := state.Open(filepath.Join(t.TempDir(), "banjia.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w := &migratetest.World{T: t, Store: store, Job: "acme", Users: []migratetest.User{u}}
	job := &state.Job{ID: w.Job, State: state.JobCreated, Created: time.Now(),
		Source: migratetest.Endpoint(src.Addr()), Target: migratetest.Endpoint(dst.Addr())}
	if err := store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	a := &state.Account{ID: u.Old, Source: u.Old, Target: u.New, State: state.AccountNotStarted}
	a.SourceSecret, _ = store.Seal(u.OldPW)
	a.TargetSecret, _ = store.Seal(u.NewPW)
	if err := store.PutAccounts(w.Job, a); err != nil {
		t.Fatal(err)
	}
	return w
}
