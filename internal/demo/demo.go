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
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/sources"
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
	Store          *state.Store
	JobID          string
	StatePath      string
	Source, Target string
	Users          []User

	servers []*imapserver.Server
	tmp     string
}

// Start starts both servers, fills the source and creates the job.
func Start(ctx context.Context, o Options) (*Env, error) {
	if o.Accounts <= 0 {
		o.Accounts = 3
	}
	if o.Messages <= 0 {
		o.Messages = 120
	}
	e := &Env{JobID: "demo"}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "banjia-demo-")
		if err != nil {
			return nil, err
		}
		dir, e.tmp = d, d
	}
	oldSrv, newSrv := imapmemserver.New(), imapmemserver.New()
	var err error
	if e.Source, err = e.serve(oldSrv); err != nil {
		e.Close()
		return nil, err
	}
	if e.Target, err = e.serve(newSrv); err != nil {
		e.Close()
		return nil, err
	}
	for i := 0; i < o.Accounts; i++ {
		name := []string{"zhang.wei", "li.na", "wang.fang", "liu.yang", "chen.jing", "alice", "bob", "carol"}[i%8]
		if i >= 8 {
			name = fmt.Sprintf("%s%d", name, i)
		}
		u := User{Old: name + "@old.example", New: name + "@new.example",
			OldPassword: fmt.Sprintf("old-demo-%d", i), NewPassword: fmt.Sprintf("new-demo-%d", i)}
		src := imapmemserver.NewUser(u.Old, u.OldPassword)
		dst := imapmemserver.NewUser(u.New, u.NewPassword)
		dst.Create("INBOX", nil)
		oldSrv.AddUser(src)
		newSrv.AddUser(dst)
		if err := fill(src, u.Old, int64(i+1), o.Messages); err != nil {
			e.Close()
			return nil, err
		}
		e.Users = append(e.Users, u)
	}
	e.StatePath = filepath.Join(dir, "banjia-demo.db")
	if e.Store, err = state.Open(e.StatePath); err != nil {
		e.Close()
		return nil, err
	}
	job := &state.Job{ID: e.JobID, Name: "old.example -> new.example", State: state.JobCreated, Created: time.Now().UTC(),
		Source: endpoint(e.Source), Target: endpoint(e.Target)}
	if _, err := e.Store.Job(e.JobID); err == nil {
		e.Close()
		return nil, fmt.Errorf("%s already holds a demo job", e.StatePath)
	}
	if err := e.Store.PutJob(job); err != nil {
		e.Close()
		return nil, err
	}
	var accts []*state.Account
	for _, u := range e.Users {
		a := &state.Account{ID: u.Old, Source: u.Old, Target: u.New, State: state.AccountNotStarted}
		if a.SourceSecret, err = e.Store.Seal(u.OldPassword); err == nil {
			a.TargetSecret, err = e.Store.Seal(u.NewPassword)
		}
		if err != nil {
			e.Close()
			return nil, err
		}
		accts = append(accts, a)
	}
	if err := e.Store.PutAccounts(e.JobID, accts...); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func endpoint(addr string) sources.Endpoint {
	host, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscanf(port, "%d", &p)
	return sources.Endpoint{Scheme: "imap+plain", Host: host, Port: p}
}

func (e *Env) serve(mem *imapmemserver.Server) (string, error) {
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		// What a real server offers that the engine uses.
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapLiteralPlus: {}, imap.CapListStatus: {}, imap.CapNamespace: {}},
		InsecureAuth: true, // loopback only
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	e.servers = append(e.servers, srv)
	go srv.Serve(ln)
	return ln.Addr().String(), nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

type literal struct {
	*bytes.Reader
}

func (l literal) Size() int64 { return l.Reader.Size() }

func fill(u *imapmemserver.User, addr string, seed int64, n int) error {
	msgs := mailgen.Mailbox(addr, mailgen.Options{Seed: seed, Messages: n, MaxAttachment: 300 << 10, NoMessageIDEvery: 17, DuplicateIDEvery: 23})
	created := map[string]bool{"INBOX": true}
	u.Create("INBOX", nil)
	for _, m := range msgs {
		if !created[m.Folder] {
			parts := strings.Split(m.Folder, "/")
			for i := 1; i <= len(parts); i++ {
				name := strings.Join(parts[:i], "/")
				if !created[name] {
					if err := u.Create(name, nil); err != nil {
						return fmt.Errorf("create %q: %w", name, err)
					}
					created[name] = true
				}
			}
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
	Folders, Messages int
	Bytes             int64
}

type msg struct {
	body  []byte
	flags string
	date  int64
}

// Verify compares every account's source and target folder by folder:
// same bytes, flags and INTERNALDATE for every message.
func (e *Env) Verify(ctx context.Context) (Report, error) {
	var rep Report
	for _, u := range e.Users {
		src, err := read(e.Source, u.Old, u.OldPassword)
		if err != nil {
			return rep, err
		}
		dst, err := read(e.Target, u.New, u.NewPassword)
		if err != nil {
			return rep, err
		}
		for name, sm := range src {
			dm := dst[name]
			if len(sm) != len(dm) {
				return rep, fmt.Errorf("%s folder %q: %d messages on the old server, %d on the new one", u.Old, name, len(sm), len(dm))
			}
			for i := range sm {
				if !bytes.Equal(sm[i].body, dm[i].body) || sm[i].flags != dm[i].flags || sm[i].date != dm[i].date {
					return rep, fmt.Errorf("%s folder %q: message %d differs (same bytes %v, flags %q vs %q, date %v vs %v)", u.Old, name, i,
						bytes.Equal(sm[i].body, dm[i].body), sm[i].flags, dm[i].flags, time.Unix(sm[i].date, 0), time.Unix(dm[i].date, 0))
				}
				rep.Bytes += int64(len(sm[i].body))
			}
			if len(sm) > 0 {
				rep.Folders++
			}
			rep.Messages += len(sm)
		}
	}
	if rep.Messages == 0 {
		return rep, errors.New("no messages found on the old server")
	}
	return rep, nil
}

// read returns folder -> messages sorted by content, read-only.
func read(addr, user, pw string) (map[string][]msg, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(user, pw).Wait(); err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, err
	}
	out := map[string][]msg{}
	for _, l := range list {
		if _, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return nil, err
		}
		bufs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return nil, err
		}
		var ms []msg
		for _, b := range bufs {
			var flags []string
			for _, f := range b.Flags {
				if !strings.EqualFold(string(f), `\Recent`) {
					flags = append(flags, string(f))
				}
			}
			sort.Strings(flags)
			m := msg{flags: strings.Join(flags, " "), date: b.InternalDate.Unix()}
			for _, s := range b.BodySection {
				m.body = s.Bytes
			}
			ms = append(ms, m)
		}
		sort.Slice(ms, func(i, j int) bool { return bytes.Compare(ms[i].body, ms[j].body) < 0 })
		out[l.Mailbox] = ms
	}
	return out, nil
}

// Close stops the servers and removes what Start created.
func (e *Env) Close() error {
	if e.Store != nil {
		e.Store.Close()
	}
	for _, s := range e.servers {
		s.Close()
	}
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
	return nil
}
