package migrate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// The control socket lets other processes reach a running job: bbolt holds
// the state file locked while a job runs, so `banjia job pause` from another
// shell talks to the runner over a unix socket beside the state file instead.

// ControlRequest is one line a client sends.
type ControlRequest struct {
	Op  string // pause, resume, end, start, status, follow, add, invite, audit
	Job string // "": every job (status), or the one job the process runs
	// Who asked, for the event log (a state.Actor); "" is CommandLine.
	Who   string `json:",omitempty"`
	After uint64 `json:",omitempty"` // follow: events after this sequence
	// Accounts, for add: rows as in an accounts CSV (the socket is the
	// state file owner's alone, like the state file).
	Accounts []AccountRow `json:",omitempty"`
	// Account, for account: a per-account request (accountcontrol.go).
	Account *AccountRequest `json:",omitempty"`
	// Invite, for invite: whom (banjia serve sends the mails).
	Invite *Invitation `json:",omitempty"`
	// Query, for audit: one page of the event log (audit.go).
	Query *state.EventQuery `json:",omitempty"`
	// Outbox and Notices, for outbox and notices (notices.go).
	Outbox  *OutboxRequest        `json:",omitempty"`
	Notices *state.NoticeSettings `json:",omitempty"`
	// Wait, for sync: reply once the sync has ended, with the job's
	// status then and how the run ended (RunError).
	Wait bool `json:",omitempty"`
}

// ControlReply is one line the runner sends back (follow sends many).
type ControlReply struct {
	OK       bool
	Error    string           `json:",omitempty"`
	Status   *Status          `json:",omitempty"`
	Statuses []*Status        `json:",omitempty"` // status of every job (banjia serve)
	Events   []*state.Event   `json:",omitempty"`
	Added    int              `json:",omitempty"`
	Changed  []string         `json:",omitempty"` // account: the accounts changed
	Settings *Settings        `json:",omitempty"`
	Invited  int              `json:",omitempty"`
	Page     *state.EventPage `json:",omitempty"` // audit
	Outbox   []*state.OutMail `json:",omitempty"`
	// RunError is how a waited-for run ended ("" when it finished).
	RunError string `json:",omitempty"`
}

// SocketPath is where the runner for a state file listens.
func SocketPath(statePath string) string {
	abs, err := filepath.Abs(statePath)
	if err != nil {
		abs = statePath
	}
	p := abs + ".sock"
	if len(p) < 100 {
		return p
	}
	// Unix socket paths are limited to about 107 bytes.
	h := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), "banjia-"+hex.EncodeToString(h[:8])+".sock")
}

// ServeControl listens on the state file's socket until ctx ends. One
// Manager answers it, whether it runs every job (banjia serve) or one
// (banjia job start).
func (m *Manager) ServeControl(ctx context.Context, statePath string) error {
	return serveControl(ctx, statePath, m)
}

func serveControl(ctx context.Context, statePath string, m *Manager) error {
	path := SocketPath(statePath)
	// We hold the state file's lock, so a socket file left here is stale.
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	os.Chmod(path, 0o600)
	go func() {
		<-ctx.Done()
		l.Close()
		os.Remove(path)
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveConn(ctx, m, c)
		}
	}()
	return nil
}

func serveConn(ctx context.Context, m *Manager, c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req ControlRequest
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	enc := json.NewEncoder(c)
	if req.Op == "follow" {
		follow(ctx, m, c, enc, req.Job, req.After)
		return
	}
	if req.Op == "sync" && req.Wait {
		enc.Encode(m.syncWaited(ctx, req))
		return
	}
	rep := m.handle(req)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	enc.Encode(&rep)
}

func replyOf(err error) ControlReply {
	if err != nil {
		return ControlReply{Error: err.Error()}
	}
	return ControlReply{OK: true}
}

func (m *Manager) handle(req ControlRequest) ControlReply {
	who := req.Who
	if who == "" {
		who = CommandLine
	}
	switch req.Op {
	case "audit":
		return m.audit(req)
	case "status":
		if req.Job == "" {
			sts, err := m.Statuses()
			rep := replyOf(err)
			rep.Statuses = sts
			return rep
		}
		st, err := m.Status(req.Job)
		rep := replyOf(err)
		rep.Status = st
		return rep
	}
	if req.Job == "" {
		// banjia job start: its job is the one meant.
		req.Job = m.only
	}
	switch req.Op {
	case "add":
		n, err := m.AddAccounts(req.Job, req.Accounts, who)
		rep := replyOf(err)
		rep.Added = n
		return rep
	case "account", "delete", "settings":
		return m.handleMore(req, who)
	case "outbox", "notices":
		return m.handleNotices(req, who)
	case "invite":
		inv := Invitation{Job: req.Job, Who: who}
		if req.Invite != nil {
			inv.Accounts, inv.Again = req.Invite.Accounts, req.Invite.Again
		}
		n, err := m.Invite(inv)
		rep := replyOf(err)
		rep.Invited = n
		return rep
	}
	if req.Job == "" {
		return replyOf(fmt.Errorf("which job? (%s needs a job name)", req.Op))
	}
	return replyOf(m.Control(req.Job, req.Op, who))
}

// syncWaited carries out a sync whose asker waits for its end.
func (m *Manager) syncWaited(ctx context.Context, req ControlRequest) *ControlReply {
	who := req.Who
	if who == "" {
		who = CommandLine
	}
	if req.Job == "" {
		req.Job = m.only
	}
	ran, err := m.SyncWait(ctx, req.Job, who)
	if ctx.Err() != nil {
		return &ControlReply{Error: "banjia is stopping: the sync stops with it; its progress is saved"}
	}
	if err != nil {
		// Refused before it ran (closed, paused, still copying...).
		return &ControlReply{Error: err.Error()}
	}
	rep := ControlReply{OK: true}
	if ran != nil {
		rep.RunError = ran.Error()
	}
	st, serr := m.Status(req.Job)
	if serr != nil {
		return &ControlReply{Error: serr.Error()}
	}
	rep.Status = st
	return &rep
}

// ControlWait is Control for a request whose reply comes when the work
// is done (a sync with Wait): no deadline but ctx's.
func ControlWait(ctx context.Context, statePath string, req ControlRequest) (*ControlReply, error) {
	return roundTrip(ctx, statePath, req, 0)
}

func follow(ctx context.Context, m *Manager, c net.Conn, enc *json.Encoder, job string, after uint64) {
	if job == "" {
		job = m.only
	}
	changes, unsubscribe := m.changes.Subscribe()
	defer unsubscribe()
	// Counts move between events, with no notice (progress is flushed,
	// not announced): a follower sees them once a second.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// A closed client shows up as a read error.
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		c.Read(b[:])
		close(gone)
	}()
	for {
		evs, _ := m.store.Events(job, after, 0)
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
		}
		var rep ControlReply
		if job != "" {
			st, err := m.Status(job)
			rep = replyOf(err)
			rep.Status = st
		} else {
			rep = ControlReply{OK: true}
		}
		rep.Events = evs
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if enc.Encode(&rep) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-gone:
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// ErrNoRunner says no process is running the job right now.
var ErrNoRunner = errors.New("no banjia process is running this state file")

func dialControl(statePath string) (net.Conn, error) {
	c, err := net.DialTimeout("unix", SocketPath(statePath), time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, ErrNoRunner
		}
		return nil, err
	}
	return c, nil
}

// Control sends one request to the runner of a state file.
func Control(statePath string, req ControlRequest) (*ControlReply, error) {
	return roundTrip(context.Background(), statePath, req, 10*time.Second)
}

// roundTrip sends one request and reads its reply, within limit (0: as
// long as ctx lasts).
func roundTrip(ctx context.Context, statePath string, req ControlRequest, limit time.Duration) (*ControlReply, error) {
	c, err := dialControl(statePath)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if limit > 0 {
		c.SetDeadline(time.Now().Add(limit))
	}
	if req.Who == "" {
		// The runner may be another user's process: this one says who asks.
		req.Who = CommandLine
	}
	if err := json.NewEncoder(c).Encode(&req); err != nil {
		return nil, err
	}
	var rep ControlReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("control reply: %w", err)
	}
	if !rep.OK {
		return &rep, errors.New(rep.Error)
	}
	return &rep, nil
}

// Follow streams status and events from the runner until ctx ends or the
// runner goes away (then it returns nil).
func Follow(ctx context.Context, statePath, job string, after uint64, fn func(*ControlReply) error) error {
	c, err := dialControl(statePath)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := json.NewEncoder(c).Encode(&ControlRequest{Op: "follow", Job: job, After: after}); err != nil {
		return err
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	for {
		var rep ControlReply
		if err := dec.Decode(&rep); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		if err := fn(&rep); err != nil {
			return err
		}
	}
}
