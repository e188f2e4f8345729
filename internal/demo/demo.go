// Package demo sets up what `banjia demo` migrates: two in-process IMAP
// servers (go-imap's in-memory server) on loopback, the old one filled with
// sample mail, and a job over them in a fresh state file. The migration
// itself runs through the same runner and CLI code as a real job.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/state"
)

// Options shape the demo.
type Options struct {
	Accounts int    // default 3
	Messages int    // per account, default 120
	Dir      string // where the state file goes; default a new temporary folder
}

// User is one demo account on both servers (demo passwords only).
type User struct{ Old, New, OldPassword, NewPassword string }

// Env is a running demo.
type Env struct {
	Store     *state.Store
	JobID     string
	StatePath string
	// Source and Target are the old and the new server, "127.0.0.1:port".
	Source, Target string
	Users          []User

	servers []*server
	tmp     string // removed by Close: Start made it
}

var names = []string{"zhang.wei", "li.na", "wang.fang", "liu.yang", "chen.jing", "alice", "bob", "carol"}

// Start starts both servers, fills the source and creates the job. Close
// the Env even when the run fails, to stop the servers.
func Start(ctx context.Context, o Options) (*Env, error) {
	if o.Accounts <= 0 {
		o.Accounts = 3
	}
	if o.Messages <= 0 {
		o.Messages = 120
	}
	e := &Env{JobID: "demo"}
	if err := e.start(ctx, o); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Env) start(ctx context.Context, o Options) error {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "banjia-demo-")
		if err != nil {
			return err
		}
		dir, e.tmp = d, d
	}
	oldSrv, newSrv := newServer(), newServer()
	e.servers = []*server{oldSrv, newSrv}
	var err error
	if e.Source, err = oldSrv.listen(); err != nil {
		return err
	}
	if e.Target, err = newSrv.listen(); err != nil {
		return err
	}
	for i := 0; i < o.Accounts; i++ {
		name := names[i%len(names)]
		if i >= len(names) {
			name = fmt.Sprintf("%s%d", name, i/len(names)+1)
		}
		u := User{Old: name + "@old.example", New: name + "@new.example",
			OldPassword: fmt.Sprintf("old-demo-%d", i), NewPassword: fmt.Sprintf("new-demo-%d", i)}
		src := oldSrv.addUser(u.Old, u.OldPassword)
		dst := newSrv.addUser(u.New, u.NewPassword)
		// A new mailbox on a real server already has INBOX and the
		// special folders.
		for _, f := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk"} {
			if err := newSrv.create(dst, u.New, f); err != nil {
				return err
			}
		}
		if err := oldSrv.fill(ctx, src, u.Old, int64(i+1), o.Messages); err != nil {
			return err
		}
		e.Users = append(e.Users, u)
	}
	e.StatePath = filepath.Join(dir, "banjia-demo.db")
	if e.Store, err = state.Open(e.StatePath); err != nil {
		return err
	}
	if _, err := e.Store.Job(e.JobID); err == nil {
		// Its accounts point at servers that are gone.
		return fmt.Errorf("%s already holds a demo job: use another folder", e.StatePath)
	}
	job := &state.Job{ID: e.JobID, Name: "old.example -> new.example", State: state.JobCreated, Created: time.Now().UTC()}
	if job.Source, err = endpoint(e.Source); err != nil {
		return err
	}
	if job.Target, err = endpoint(e.Target); err != nil {
		return err
	}
	if err := e.Store.PutJob(job); err != nil {
		return err
	}
	var accts []*state.Account
	for _, u := range e.Users {
		a := &state.Account{ID: u.Old, Source: u.Old, Target: u.New, State: state.AccountNotStarted}
		if a.SourceSecret, err = e.Store.Seal(u.OldPassword); err != nil {
			return err
		}
		if a.TargetSecret, err = e.Store.Seal(u.NewPassword); err != nil {
			return err
		}
		accts = append(accts, a)
	}
	return e.Store.PutAccounts(e.JobID, accts...)
}

func endpoint(addr string) (mail.Endpoint, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return mail.Endpoint{}, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return mail.Endpoint{}, fmt.Errorf("port of %s: %w", addr, err)
	}
	return mail.Endpoint{Scheme: "imap+plain", Host: host, Port: p}, nil
}

// specials are the folders both demo servers mark special-use, as Dovecot's
// default configuration does; the engine then maps them by attribute, the
// way it will against a real server, not by the name fallback.
var specials = map[string]imap.MailboxAttr{
	"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts,
	"Trash": imap.MailboxAttrTrash, "Junk": imap.MailboxAttrJunk,
}

// server is one in-memory IMAP server. imapmemserver keeps no special-use
// attributes, so it also tracks every user's folder names to answer LIST
// itself with them.
type server struct {
	mem *imapmemserver.Server
	srv *imapserver.Server

	mu      sync.Mutex
	folders map[string]map[string]bool // user -> folder names
}

func newServer() *server {
	s := &server{mem: imapmemserver.New(), folders: map[string]map[string]bool{}}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{SessionIMAP4rev2: s.mem.NewSession().(imapserver.SessionIMAP4rev2), srv: s}, nil, nil
		},
		// What a real server offers that the engine uses. No
		// CREATE-SPECIAL-USE: imapmemserver would drop the attribute.
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapLiteralPlus: {},
			imap.CapListStatus: {}, imap.CapNamespace: {}, imap.CapSpecialUse: {}},
		InsecureAuth: true, // loopback only
		Logger:       discardLogger{},
	})
	return s
}

func (s *server) addUser(name, password string) *imapmemserver.User {
	u := imapmemserver.NewUser(name, password)
	s.mem.AddUser(u)
	s.mu.Lock()
	s.folders[name] = map[string]bool{}
	s.mu.Unlock()
	return u
}

func (s *server) created(user, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.folders[user]; f != nil {
		f[strings.TrimRight(name, "/")] = true
	}
}

func (s *server) deleted(user, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.folders[user], name)
}

func (s *server) names(user string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.folders[user] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (s *server) listen() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go s.srv.Serve(ln)
	return ln.Addr().String(), nil
}

// session is an imapmemserver session whose LIST carries special-use
// attributes.
type session struct {
	imapserver.SessionIMAP4rev2
	srv  *server
	user string
}

func (s *session) Login(user, password string) error {
	if err := s.SessionIMAP4rev2.Login(user, password); err != nil {
		return err
	}
	s.user = user
	return nil
}

func (s *session) Create(name string, o *imap.CreateOptions) error {
	if err := s.SessionIMAP4rev2.Create(name, o); err != nil {
		return err
	}
	s.srv.created(s.user, name)
	return nil
}

func (s *session) Delete(name string) error {
	if err := s.SessionIMAP4rev2.Delete(name); err != nil {
		return err
	}
	s.srv.deleted(s.user, name)
	return nil
}

func (s *session) Rename(from, to string, o *imap.RenameOptions) error {
	if err := s.SessionIMAP4rev2.Rename(from, to, o); err != nil {
		return err
	}
	s.srv.deleted(s.user, from)
	s.srv.created(s.user, to)
	return nil
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, o *imap.ListOptions) error {
	// The delimiter query and subscriptions need nothing of ours.
	if len(patterns) == 0 || o.SelectSubscribed || o.ReturnSubscribed {
		return s.SessionIMAP4rev2.List(w, ref, patterns, o)
	}
	for _, name := range s.srv.names(s.user) {
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(name, '/', ref, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		data := imap.ListData{Mailbox: name, Delim: '/'}
		// RFC 6154 servers send the attributes in a plain LIST too.
		if a, ok := specials[name]; ok {
			data.Attrs = append(data.Attrs, a)
		} else if o.SelectSpecialUse {
			continue
		}
		if o.ReturnStatus != nil {
			st, err := s.SessionIMAP4rev2.Status(name, o.ReturnStatus)
			if err != nil {
				continue // deleted meanwhile
			}
			data.Status = st
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

type literal struct {
	*bytes.Reader
}

func (l literal) Size() int64 { return l.Reader.Size() }

// create makes a folder and its parents, as a mail client would see them.
func (s *server) create(u *imapmemserver.User, user, folder string) error {
	parts := strings.Split(folder, "/")
	known := s.names(user)
	for i := 1; i <= len(parts); i++ {
		name := strings.Join(parts[:i], "/")
		if slices.Contains(known, name) {
			continue
		}
		if err := u.Create(name, nil); err != nil {
			return fmt.Errorf("create %q: %w", name, err)
		}
		s.created(user, name)
		known = append(known, name)
	}
	return nil
}

// fill appends directly through imapmemserver: it keeps flags and
// INTERNALDATE as given and is much faster than APPEND over a socket.
func (s *server) fill(ctx context.Context, u *imapmemserver.User, user string, seed int64, n int) error {
	msgs := mailgen.Mailbox(user, mailgen.Options{Seed: seed, Messages: n, MaxAttachment: 300 << 10,
		NoMessageIDEvery: 17, DuplicateIDEvery: 23})
	if err := s.create(u, user, "INBOX"); err != nil {
		return err
	}
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.create(u, user, m.Folder); err != nil {
			return err
		}
		opts := &imap.AppendOptions{Time: m.Date}
		for _, f := range m.Flags {
			opts.Flags = append(opts.Flags, imap.Flag(f))
		}
		if _, err := u.Append(m.Folder, literal{bytes.NewReader(m.Body)}, opts); err != nil {
			return fmt.Errorf("fill %q: %w", m.Folder, err)
		}
	}
	return nil
}

// Report sums up a verification.
type Report struct {
	Folders, Messages int // source folders holding mail, and their messages
	Bytes             int64
}

type msg struct {
	body  []byte
	flags string
	date  time.Time
}

// Verify compares every account's source and target folder by folder: every
// source message must be on the target with the same bytes, flags and
// INTERNALDATE, and nothing else may be there. The engine keeps the demo's
// folder names (the target's delimiter and special folders are the source's),
// so folders pair up by name.
func (e *Env) Verify(ctx context.Context) (Report, error) {
	var rep Report
	for _, u := range e.Users {
		src, err := read(ctx, e.Source, u.Old, u.OldPassword)
		if err != nil {
			return rep, fmt.Errorf("old server: %w", err)
		}
		dst, err := read(ctx, e.Target, u.New, u.NewPassword)
		if err != nil {
			return rep, fmt.Errorf("new server: %w", err)
		}
		var folders []string
		for name := range src {
			folders = append(folders, name)
		}
		sort.Strings(folders)
		for _, name := range folders {
			sm, dm := src[name], dst[name]
			if len(sm) == 0 {
				continue
			}
			if _, ok := dst[name]; !ok {
				return rep, fmt.Errorf("%s: folder %q (%d messages) is missing on the new server", u.Old, name, len(sm))
			}
			if err := compare(sm, dm); err != nil {
				return rep, fmt.Errorf("%s folder %q: %w", u.Old, name, err)
			}
			rep.Folders++
			rep.Messages += len(sm)
			for _, m := range sm {
				rep.Bytes += int64(len(m.body))
			}
		}
	}
	if rep.Messages == 0 {
		return rep, errors.New("no mail on the old server: nothing was verified")
	}
	return rep, nil
}

// compare pairs messages by content, since UIDs and order differ between
// servers; duplicates pair up one to one.
func compare(src, dst []msg) error {
	byBody := map[string][]msg{}
	for _, m := range dst {
		byBody[string(m.body)] = append(byBody[string(m.body)], m)
	}
	for _, m := range src {
		cands := byBody[string(m.body)]
		if len(cands) == 0 {
			return fmt.Errorf("message %s (%d bytes, %s) is not on the new server", subject(m.body), len(m.body), m.date.Format(time.RFC3339))
		}
		i := slices.IndexFunc(cands, func(d msg) bool { return d.flags == m.flags && d.date.Equal(m.date) })
		if i < 0 {
			d := cands[0]
			return fmt.Errorf("message %s differs: flags %q on the old server, %q on the new; date %s, %s",
				subject(m.body), m.flags, d.flags, m.date.Format(time.RFC3339), d.date.Format(time.RFC3339))
		}
		byBody[string(m.body)] = slices.Delete(cands, i, i+1)
	}
	if len(src) != len(dst) {
		return fmt.Errorf("%d messages on the old server, %d on the new one", len(src), len(dst))
	}
	return nil
}

// subject names a message in an error; mailgen subjects are MIME-encoded,
// so the raw header line is enough to find it.
func subject(body []byte) string {
	for _, line := range strings.Split(string(body), "\r\n") {
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Subject") {
			return fmt.Sprintf("%q", strings.TrimSpace(v))
		}
	}
	return "(no subject)"
}

// read returns every folder's messages without changing anything (EXAMINE,
// BODY.PEEK).
func read(ctx context.Context, addr, user, pw string) (map[string][]msg, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// imapclient takes no context: closing the connection ends a wait.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	out, err := readAll(c, user, pw)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, err
}

func readAll(c *imapclient.Client, user, pw string) (map[string][]msg, error) {
	if err := c.Login(user, pw).Wait(); err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, err
	}
	out := map[string][]msg{}
	for _, l := range list {
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return nil, fmt.Errorf("examine %q: %w", l.Mailbox, err)
		}
		out[l.Mailbox] = nil
		if sel.NumMessages == 0 {
			continue
		}
		bufs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return nil, fmt.Errorf("fetch %q: %w", l.Mailbox, err)
		}
		for _, b := range bufs {
			var flags []string
			for _, f := range b.Flags {
				if !strings.EqualFold(string(f), `\Recent`) {
					flags = append(flags, string(f))
				}
			}
			sort.Strings(flags)
			m := msg{flags: strings.Join(flags, " "), date: b.InternalDate}
			for _, s := range b.BodySection {
				m.body = s.Bytes
			}
			out[l.Mailbox] = append(out[l.Mailbox], m)
		}
	}
	return out, nil
}

// Close stops both servers, closes the state file and removes the folder
// Start made for it.
func (e *Env) Close() error {
	var errs []error
	if e.Store != nil {
		errs = append(errs, e.Store.Close())
		e.Store = nil
	}
	for _, s := range e.servers {
		// Its error is only that of closing the listener, already gone.
		s.srv.Close()
	}
	e.servers = nil
	if e.tmp != "" {
		errs = append(errs, os.RemoveAll(e.tmp))
		e.tmp = ""
	}
	return errors.Join(errs...)
}
