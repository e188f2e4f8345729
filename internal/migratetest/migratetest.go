// Package migratetest builds a source and a target IMAP server filled with
// sample mail and a job over them, and compares mailboxes exactly. The
// engine's and the CLI's tests share it. The servers are private Dovecots,
// or go-imap's in-memory server (Options.Backend) where a test checks the
// engine's logic rather than a real server's behaviour.
package migratetest

import (
	"bytes"
	"errors"

	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/internal/courier"
	"github.com/banjia-mail/banjia/internal/cyrus"
	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/state"
)

// World is a source and a target server with users and mail, and a state
// file holding a job over them.
type World struct {
	T        testing.TB
	Src, Dst *Server
	Store    *state.Store
	Path     string
	Job      string
	Users    []User
}

// User is one account on both sides.
type User struct {
	Old, New, OldPW, NewPW string
	// SourcePW is the password the source really has (OldPW is wrong for
	// Options.BadPassword's account).
	SourcePW string
}

// WrongPassword is the old password given to Options.BadPassword's account.
const WrongPassword = "wrong-password"

// Options shape a World.
type Options struct {
	Accounts, Messages int
	MaxAttachment      int
	BadPassword        int      // index of an account given a wrong old password, or -1
	NoStore            bool     // leave the state file to the caller (the CLI tests)
	Folders            []string // mailgen folders (nil: its defaults)
	// SourceAdmin, SourceAdminPW make the source Dovecot accept this
	// master user (delegated logins: "member*admin", PLAIN authzid).
	SourceAdmin, SourceAdminPW string
	// SourceConfig is appended to the source Dovecot's configuration.
	SourceConfig string
	// TargetConfig is appended to the target Dovecot's configuration.
	TargetConfig string
	// TargetFormat is the target's mailbox format (default sdbox).
	TargetFormat string
	// Backend is the servers' kind (default Dovecot).
	Backend Backend
	// Target, on the Dovecot backend, makes the target another real
	// server: "cyrus" or "courier" (the test is skipped, or fails under
	// BANJIA_REQUIRE_SERVERS=1, where it is not installed).
	Target string
}

// dovecotOnly names the options set in o that only a Dovecot can honour.
func (o Options) dovecotOnly() []string {
	var out []string
	if o.SourceAdmin != "" || o.SourceAdminPW != "" {
		out = append(out, "SourceAdmin")
	}
	if o.SourceConfig != "" {
		out = append(out, "SourceConfig")
	}
	if o.TargetConfig != "" {
		out = append(out, "TargetConfig")
	}
	if o.TargetFormat != "" {
		out = append(out, "TargetFormat")
	}
	return out
}

// New starts both servers, fills the source and creates the job.
func New(t testing.TB, o Options) *World {
	t.Helper()
	var src, dst *Server
	switch o.Backend {
	case "", Dovecot:
		src = FromDovecot(dovecot.StartT(t, dovecot.Options{MasterUser: o.SourceAdmin, MasterPassword: o.SourceAdminPW, ExtraConfig: o.SourceConfig}))
		if o.TargetFormat == "" {
			o.TargetFormat = "sdbox"
		}
		switch o.Target {
		case "", "dovecot":
			dst = FromDovecot(dovecot.StartT(t, dovecot.Options{Format: o.TargetFormat, ExtraConfig: o.TargetConfig}))
		case "cyrus":
			cyrus.Require(t)
			c := cyrus.StartT(t, cyrus.Options{})
			dst = &Server{IMAPAddr: c.IMAPAddr, Other: c}
		case "courier":
			courier.Require(t)
			c := courier.StartT(t)
			dst = &Server{IMAPAddr: c.IMAPAddr, Other: c}
		default:
			t.Fatalf("migratetest: unknown target %q", o.Target)
		}
	case Memory:
		if d := o.dovecotOnly(); len(d) > 0 {
			t.Fatalf("migratetest: %s need a Dovecot world, not the in-memory server", strings.Join(d, ", "))
		}
		src, dst = memServer(StartMem(t, nil)), memServer(StartMem(t, nil))
	default:
		t.Fatalf("migratetest: unknown backend %q", o.Backend)
	}
	w := &World{T: t, Src: src, Dst: dst, Job: "acme"}
	for i := 0; i < o.Accounts; i++ {
		u := User{Old: fmt.Sprintf("u%02d@old.test", i), New: fmt.Sprintf("u%02d@new.test", i),
			OldPW: fmt.Sprintf("old-pw-%d", i), NewPW: fmt.Sprintf("new-pw-%d", i)}
		if err := src.AddUser(u.Old, u.OldPW); err != nil {
			t.Fatal(err)
		}
		if err := dst.AddUser(u.New, u.NewPW); err != nil {
			t.Fatal(err)
		}
		Fill(t, src.Deliver, u.Old, mailgen.Options{Seed: int64(i + 1), Messages: o.Messages,
			MaxAttachment: o.MaxAttachment, NoMessageIDEvery: 17, DuplicateIDEvery: 23, Folders: o.Folders})
		u.SourcePW = u.OldPW
		if i == o.BadPassword {
			u.OldPW = WrongPassword
		}
		w.Users = append(w.Users, u)
	}
	w.Path = filepath.Join(t.TempDir(), "banjia.db")
	if o.NoStore {
		return w
	}
	w.Open()
	t.Cleanup(func() { w.Store.Close() })
	job := &state.Job{ID: w.Job, State: state.JobCreated, Created: time.Now(),
		Source: Endpoint(src.IMAPAddr), Target: Endpoint(dst.IMAPAddr)}
	if err := w.Store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	var accts []*state.Account
	for _, u := range w.Users {
		a := &state.Account{ID: u.Old, Source: u.Old, Target: u.New, State: state.AccountNotStarted}
		a.SourceSecret, _ = w.Store.Seal(u.OldPW)
		a.TargetSecret, _ = w.Store.Seal(u.NewPW)
		accts = append(accts, a)
	}
	if err := w.Store.PutAccounts(w.Job, accts...); err != nil {
		t.Fatal(err)
	}
	return w
}

// Fill delivers user's mailgen corpus folder by folder, in the corpus's
// order, through any server's Deliver.
func Fill(t testing.TB, deliver func(user, folder string, msgs []dovecot.Message) error, user string, o mailgen.Options) {
	t.Helper()
	byFolder := map[string][]dovecot.Message{}
	var order []string
	for _, m := range mailgen.Mailbox(user, o) {
		if _, ok := byFolder[m.Folder]; !ok {
			order = append(order, m.Folder)
		}
		byFolder[m.Folder] = append(byFolder[m.Folder], dovecot.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
	}
	for _, f := range order {
		if err := deliver(user, f, byFolder[f]); err != nil {
			t.Fatal(err)
		}
	}
}

// Open opens the state file.
func (w *World) Open() {
	s, err := state.Open(w.Path)
	if err != nil {
		w.T.Fatal(err)
	}
	w.Store = s
}

// Endpoint is a plain-IMAP endpoint for a loopback address.
func Endpoint(addr string) mail.Endpoint {
	host, port, _ := strings.Cut(addr, ":")
	var p int
	fmt.Sscanf(port, "%d", &p)
	return mail.Endpoint{Scheme: "imap+plain", Host: host, Port: p}
}

// CSV is the accounts file for the World's users.
func (w *World) CSV() string {
	var b strings.Builder
	b.WriteString("old address,new address,old password,new password\n")
	for _, u := range w.Users {
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", u.Old, u.New, u.OldPW, u.NewPW)
	}
	return b.String()
}

// Resupply stores the passwords again (as banjia job add does after a
// close or the retention wiped them).
func (w *World) Resupply() {
	for _, u := range w.Users {
		a, err := w.Store.Account(w.Job, u.Old)
		if err != nil {
			w.T.Fatal(err)
		}
		a.SourceSecret, _ = w.Store.Seal(u.OldPW)
		a.TargetSecret, _ = w.Store.Seal(u.NewPW)
		if err := w.Store.PutAccounts(w.Job, a); err != nil {
			w.T.Fatal(err)
		}
	}
}

// Mailbox is folder -> messages with "/" as the delimiter, for comparing.
type Mailbox map[string][]dovecot.SnapMessage

// Snapshot reads a whole mailbox.
func Snapshot[S Reachable](t testing.TB, s S, user, pw string) Mailbox {
	t.Helper()
	return SnapshotAt(t, imapAddr(s), "", user, pw)
}

// SnapshotAt reads a whole mailbox of any IMAP server, with names relative
// to its personal namespace (prefix, e.g. "INBOX." on Courier) and "/"
// between levels, so that mailboxes of servers with different namespaces
// compare.
func SnapshotAt(t testing.TB, addr, prefix, user, pw string) Mailbox {
	t.Helper()
	m, delim, err := dovecot.Snapshot(addr, user, pw)
	if err != nil {
		t.Fatalf("snapshot %s: %v", user, err)
	}
	out := Mailbox{}
	for name, msgs := range m {
		if prefix != "" && strings.HasPrefix(name, prefix) && len(name) > len(prefix) {
			name = name[len(prefix):]
		}
		if delim != "/" && delim != "" {
			name = strings.ReplaceAll(name, delim, "/")
		}
		out[name] = msgs
	}
	return out
}

// Sources reads every source mailbox that can be logged in to.
func (w *World) Sources() map[string]Mailbox {
	out := map[string]Mailbox{}
	for _, u := range w.Users {
		if u.OldPW == WrongPassword {
			continue
		}
		out[u.Old] = Snapshot(w.T, w.Src, u.Old, u.OldPW)
	}
	return out
}

// Target reads one user's target mailbox.
func (w *World) Target(u User) Mailbox {
	return SnapshotAt(w.T, w.Dst.IMAPAddr, w.Dst.Prefix(), u.New, u.NewPW)
}

type msgKey struct {
	digest [32]byte
	flags  string
	date   int64
}

func keys(msgs []dovecot.SnapMessage, withFlags bool) []msgKey {
	out := make([]msgKey, 0, len(msgs))
	for _, m := range msgs {
		k := msgKey{digest: sha256.Sum256(m.Body), date: m.Date.Unix()}
		if withFlags {
			k.flags = strings.Join(m.Flags, " ")
		}
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := bytes.Compare(out[i].digest[:], out[j].digest[:]); c != 0 {
			return c < 0
		}
		if out[i].flags != out[j].flags {
			return out[i].flags < out[j].flags
		}
		return out[i].date < out[j].date
	})
	return out
}

// SameMail fails unless every folder of want holds exactly the same messages
// (bytes, flags, INTERNALDATE; lanes append in any order) in got and got has
// no other non-empty folder. It returns the number of messages compared.
func SameMail(t testing.TB, who string, want, got Mailbox) (messages int) {
	t.Helper()
	return sameMail(t, who, want, got, true)
}

// SameBodies is SameMail without flags, for sources that have none (POP3).
func SameBodies(t testing.TB, who string, want, got Mailbox) (messages int) {
	t.Helper()
	return sameMail(t, who, want, got, false)
}

func sameMail(t testing.TB, who string, want, got Mailbox, withFlags bool) (messages int) {
	t.Helper()
	for name, wm := range want {
		gm := got[name]
		wk, gk := keys(wm, withFlags), keys(gm, withFlags)
		if len(wk) != len(gk) {
			t.Errorf("%s folder %q: source has %d messages, target %d%s", who, name, len(wk), len(gk), differing(wm, gm))
			continue
		}
		for i := range wk {
			if wk[i] != gk[i] {
				t.Errorf("%s folder %q: message %d differs (flags %q vs %q, date %d vs %d, same bytes %v)", who, name, i,
					wk[i].flags, gk[i].flags, wk[i].date, gk[i].date, wk[i].digest == gk[i].digest)
				break
			}
		}
		messages += len(wm)
	}
	for name, gm := range got {
		if _, ok := want[name]; !ok && len(gm) > 0 {
			t.Errorf("%s: target folder %q (%d messages) has no source folder", who, name, len(gm))
		}
	}
	return messages
}

// PartOf fails unless got is part of want, counting copies: every message
// of a folder of got (bytes, flags, INTERNALDATE) is a message of want's
// folder of that name, and appears there at most as many times as in
// want's. It is SameMail for a mailbox copied in part (a job ended midway):
// a message copied twice fails it even where the folder still holds fewer
// messages than the source. It returns the number of messages in got.
func PartOf(t testing.TB, who string, want, got Mailbox) (messages int) {
	t.Helper()
	for name, gm := range got {
		if len(gm) == 0 {
			continue
		}
		wm, ok := want[name]
		if !ok {
			t.Errorf("%s: target folder %q (%d messages) has no source folder", who, name, len(gm))
			continue
		}
		left := map[msgKey]int{}
		for _, k := range keys(wm, true) {
			left[k]++
		}
		for _, m := range gm {
			k := keys([]dovecot.SnapMessage{m}, true)[0]
			if left[k] == 0 {
				t.Errorf("%s folder %q: target UID %d (%d bytes, %s, flags %v) is not a source message of the folder, or one copied more often than the source holds it", who, name, m.UID, len(m.Body), m.Date.Format(time.RFC3339), m.Flags)
				continue
			}
			left[k]--
		}
		messages += len(gm)
	}
	return messages
}

// differing names, by UID, the messages one side holds more copies of than
// the other, so a failure says which message was lost or duplicated.
func differing(want, got []dovecot.SnapMessage) string {
	count := map[[32]byte]int{}
	for _, m := range want {
		count[sha256.Sum256(m.Body)]++
	}
	for _, m := range got {
		count[sha256.Sum256(m.Body)]--
	}
	var out []string
	for _, m := range want {
		if count[sha256.Sum256(m.Body)] > 0 {
			out = append(out, fmt.Sprintf("source UID %d (%d bytes, %s) missing", m.UID, len(m.Body), m.Date.Format(time.RFC3339)))
		}
	}
	for _, m := range got {
		if count[sha256.Sum256(m.Body)] < 0 {
			out = append(out, fmt.Sprintf("target UID %d (%d bytes, %s) has too many copies", m.UID, len(m.Body), m.Date.Format(time.RFC3339)))
		}
	}
	if len(out) > 10 {
		out = append(out[:10], "...")
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(out, "; ")
}

// Unchanged fails unless the source mailboxes are exactly as before: same
// UIDs, bytes and flags (nothing read, flagged, moved or deleted).
func Unchanged(t testing.TB, before, after map[string]Mailbox) {
	t.Helper()
	for who, b := range before {
		a := after[who]
		if len(b) != len(a) {
			t.Errorf("%s: source folders changed: %d -> %d", who, len(b), len(a))
		}
		for name, bm := range b {
			am := a[name]
			if len(am) != len(bm) {
				t.Errorf("%s: source folder %q changed from %d to %d messages", who, name, len(bm), len(am))
				continue
			}
			for i := range bm {
				if bm[i].UID != am[i].UID || !bytes.Equal(bm[i].Body, am[i].Body) || strings.Join(bm[i].Flags, " ") != strings.Join(am[i].Flags, " ") {
					t.Errorf("%s: source message %q UID %d changed (flags %v -> %v)", who, name, bm[i].UID, bm[i].Flags, am[i].Flags)
					break
				}
			}
		}
	}
}

// Count is the number of messages in all of a user's target folders, by
// LIST-STATUS: cheap enough to poll while a job runs. A poll whose
// connection the server drops is tried again: Dovecot 2.3 sometimes panics
// on a lock-order deadlock (fcntl EDEADLK on dovecot.list.index.log) when a
// LIST-STATUS meets CREATEs and APPENDs of the same user, which is the
// poller's bad luck, not what a test checks.
func Count[S Reachable](t testing.TB, s S, user, pw string) int {
	t.Helper()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var n int
		if n, err = count(imapAddr(s), user, pw); err == nil {
			return n
		}
		var ie *imap.Error
		if errors.As(err, &ie) {
			break
		}
		t.Logf("counting %s: %v; polling again", user, err)
	}
	t.Fatal(err)
	return 0
}

func count(addr, user, pw string) (int, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Login(user, pw).Wait(); err != nil {
		return 0, err
	}
	list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range list {
		if l.Status != nil && l.Status.NumMessages != nil {
			n += int(*l.Status.NumMessages)
		}
	}
	c.Logout().Wait()
	return n, nil
}

// TotalTarget is Count over every user.
func (w *World) TotalTarget() int {
	n := 0
	for _, u := range w.Users {
		n += Count(w.T, w.Dst, u.New, u.NewPW)
	}
	return n
}

// ListEscape lets a source Dovecot keep a folder named "~home"
// (RefusedFolder); a target Dovecot, by default, refuses names that begin
// with '~': a real server refusing one folder.
const ListEscape = "mail_plugins = $mail_plugins listescape\nplugin {\n  listescape_char = \"\\\\\"\n}\n"

// RefusedFolder is the folder a default target Dovecot refuses to create.
const RefusedFolder = "~home"

// RefusedMail are the messages AddRefusedFolder puts in RefusedFolder.
var RefusedMail = []string{
	"From: a@old.test\r\nSubject: one\r\n\r\nfirst\r\n",
	"From: a@old.test\r\nSubject: two\r\n\r\nsecond\r\n",
	"From: a@old.test\r\nSubject: three\r\n\r\nthird\r\n",
}

// AddRefusedFolder creates RefusedFolder with RefusedMail (flagged \Seen)
// in u's source mailbox, over IMAP (the source needs ListEscape).
func (w *World) AddRefusedFolder(u User) {
	w.T.Helper()
	c, err := imapclient.DialInsecure(w.Src.IMAPAddr, nil)
	if err != nil {
		w.T.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(u.Old, u.SourcePW).Wait(); err != nil {
		w.T.Fatal(err)
	}
	if err := c.Create(RefusedFolder, nil).Wait(); err != nil {
		w.T.Fatal(err)
	}
	for _, m := range RefusedMail {
		cmd := c.Append(RefusedFolder, int64(len(m)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
		cmd.Write([]byte(m))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			w.T.Fatal(err)
		}
	}
	c.Logout().Wait()
}

// WithoutOwn is got with the member's own messages of folder taken out,
// one copy each, matched by bytes, flags and INTERNALDATE (to the second).
// It fails for every one of them that is not there as it was put: mail
// the migration did not bring must never be touched.
func WithoutOwn(t testing.TB, who string, got Mailbox, folder string, own []dovecot.SnapMessage) Mailbox {
	t.Helper()
	out := Mailbox{}
	for name, msgs := range got {
		out[name] = msgs
	}
	left := append([]dovecot.SnapMessage(nil), got[folder]...)
	for _, o := range own {
		i := slices.IndexFunc(left, func(m dovecot.SnapMessage) bool {
			return bytes.Equal(m.Body, o.Body) && slices.Equal(m.Flags, o.Flags) && m.Date.Unix() == o.Date.Unix()
		})
		if i < 0 {
			t.Errorf("%s folder %q: the member's own message (%d bytes, flags %q, %s) is gone or was changed", who, folder, len(o.Body), o.Flags, o.Date.UTC().Format(time.RFC3339))
			continue
		}
		left = append(left[:i], left[i+1:]...)
	}
	out[folder] = left
	return out
}
