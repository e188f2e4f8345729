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
	Op    string // pause, resume, end, start, status, follow, add
	Job   string
	After uint64 `json:",omitempty"` // follow: events after this sequence
	// Accounts, for add: rows as in an accounts CSV (the socket is the
	// state file owner's alone, like the state file).
	Accounts []AccountRow `json:",omitempty"`
}

// ControlReply is one line the runner sends back (follow sends many).
type ControlReply struct {
	OK       bool
	Error    string         `json:",omitempty"`
	Status   *Status        `json:",omitempty"`
	Statuses []*Status      `json:",omitempty"` // status of every job (banjia serve)
	Events   []*state.Event `json:",omitempty"`
	Added    int            `json:",omitempty"`
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

// controlled is what the control socket drives: one Runner (banjia job
// start) or a Manager of many jobs (banjia serve).
type controlled interface {
	handle(req ControlRequest) ControlReply
	// followed is the job a follow request without a job name watches.
	followed(job string) string
	statusOf(job string) (*Status, error)
	subscribe() (<-chan struct{}, func())
	events(job string, after uint64) ([]*state.Event, error)
}

// ServeControl listens on the state file's socket until ctx ends.
func (r *Runner) ServeControl(ctx context.Context, statePath string) error {
	return serveControl(ctx, statePath, r)
}

// ServeControl listens on the state file's socket until ctx ends.
func (m *Manager) ServeControl(ctx context.Context, statePath string) error {
	return serveControl(ctx, statePath, m)
}

func serveControl(ctx context.Context, statePath string, t controlled) error {
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
			go serveConn(ctx, t, c)
		}
	}()
	return nil
}

func serveConn(ctx context.Context, t controlled, c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req ControlRequest
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	enc := json.NewEncoder(c)
	if req.Op == "follow" {
		follow(ctx, t, c, enc, req.Job, req.After)
		return
	}
	rep := t.handle(req)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	enc.Encode(&rep)
}

func replyOf(err error) ControlReply {
	if err != nil {
		return ControlReply{Error: err.Error()}
	}
	return ControlReply{OK: true}
}

func (r *Runner) handle(req ControlRequest) ControlReply {
	r.mu.Lock()
	current := ""
	if r.job != nil {
		current = r.job.ID
	}
	r.mu.Unlock()
	if req.Job != "" && req.Job != current {
		return replyOf(fmt.Errorf("this runner works on job %q, not %q", current, req.Job))
	}
	switch req.Op {
	case "pause":
		return replyOf(r.Pause())
	case "resume":
		return replyOf(r.Resume())
	case "end":
		return replyOf(r.End())
	case "status":
		st, err := r.Status()
		rep := replyOf(err)
		rep.Status = st
		return rep
	case "add":
		job, err := r.store.Job(current)
		if err != nil {
			return replyOf(err)
		}
		n, err := AddAccounts(r.store, job, req.Accounts, time.Now())
		if err == nil {
			r.event(job.ID, "", "job.accounts", fmt.Sprintf("%d accounts added or updated", n))
			r.Wake()
		}
		rep := replyOf(err)
		rep.Added = n
		return rep
	}
	return replyOf(fmt.Errorf("unknown operation %q", req.Op))
}

func (r *Runner) followed(string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.job != nil {
		return r.job.ID
	}
	return ""
}

func (r *Runner) statusOf(string) (*Status, error)     { return r.Status() }
func (r *Runner) subscribe() (<-chan struct{}, func()) { return r.changes.Subscribe() }
func (r *Runner) events(job string, after uint64) ([]*state.Event, error) {
	return r.store.Events(job, after, 0)
}

func (m *Manager) handle(req ControlRequest) ControlReply {
	switch req.Op {
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
	case "add":
		job, err := m.store.Job(req.Job)
		if err != nil {
			return replyOf(fmt.Errorf("job %q: %w", req.Job, err))
		}
		n, err := AddAccounts(m.store, job, req.Accounts, time.Now())
		if err == nil {
			m.Event(job.ID, "", "job.accounts", fmt.Sprintf("%d accounts added or updated", n))
			err = m.Wake(job.ID)
		}
		rep := replyOf(err)
		rep.Added = n
		return rep
	}
	if req.Job == "" {
		return replyOf(fmt.Errorf("which job? (%s needs a job name)", req.Op))
	}
	return replyOf(m.Control(req.Job, req.Op))
}

func (m *Manager) followed(job string) string           { return job }
func (m *Manager) statusOf(job string) (*Status, error) { return m.Status(job) }
func (m *Manager) subscribe() (<-chan struct{}, func()) { return m.changes.Subscribe() }
func (m *Manager) events(job string, after uint64) ([]*state.Event, error) {
	return m.store.Events(job, after, 0)
}

func follow(ctx context.Context, t controlled, c net.Conn, enc *json.Encoder, job string, after uint64) {
	changes, unsubscribe := t.subscribe()
	defer unsubscribe()
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
		id := t.followed(job)
		evs, _ := t.events(id, after)
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
		}
		var rep ControlReply
		if id != "" {
			st, err := t.statusOf(id)
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
	c, err := dialControl(statePath)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewEncoder(c).Encode(&req); err != nil {
		return nil, err
	}
	var rep ControlReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
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

// Offline changes a job's state when no runner has it open: pause and
// resume only change the recorded state; end abandons what is unfinished.
func Offline(store *state.Store, jobID, op string) error {
	j, err := store.Job(jobID)
	if err != nil {
		return err
	}
	r := New(store, Config{})
	switch op {
	case "pause":
		if j.State == state.JobEnded {
			return fmt.Errorf("job %s was ended", jobID)
		}
		if err := store.SetJobState(jobID, state.JobPaused); err != nil {
			return err
		}
		r.event(jobID, "", "job.paused", fmt.Sprintf("job %s paused", jobID))
	case "resume":
		if j.State != state.JobPaused {
			return fmt.Errorf("job %s is not paused (it is %s)", jobID, j.State)
		}
		if err := store.SetJobState(jobID, state.JobRunning); err != nil {
			return err
		}
		r.event(jobID, "", "job.resumed", fmt.Sprintf("job %s resumed", jobID))
	case "end":
		return r.finishEnded(jobID)
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	return nil
}
