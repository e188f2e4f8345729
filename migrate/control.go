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
	Op    string // pause, resume, end, status, follow
	Job   string
	After uint64 `json:",omitempty"` // follow: events after this sequence
}

// ControlReply is one line the runner sends back (follow sends many).
type ControlReply struct {
	OK     bool
	Error  string         `json:",omitempty"`
	Status *Status        `json:",omitempty"`
	Events []*state.Event `json:",omitempty"`
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

// ServeControl listens on the state file's socket until ctx ends.
func (r *Runner) ServeControl(ctx context.Context, statePath string) error {
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
			go r.serveConn(ctx, c)
		}
	}()
	return nil
}

func (r *Runner) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req ControlRequest
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	enc := json.NewEncoder(c)
	reply := func(err error, st *Status) error {
		rep := ControlReply{OK: err == nil, Status: st}
		if err != nil {
			rep.Error = err.Error()
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return enc.Encode(&rep)
	}
	r.mu.Lock()
	current := ""
	if r.job != nil {
		current = r.job.ID
	}
	r.mu.Unlock()
	if req.Job != "" && req.Job != current {
		reply(fmt.Errorf("this runner works on job %q, not %q", current, req.Job), nil)
		return
	}
	switch req.Op {
	case "pause":
		reply(r.Pause(), nil)
	case "resume":
		reply(r.Resume(), nil)
	case "end":
		reply(r.End(), nil)
	case "status":
		st, err := r.Status()
		reply(err, st)
	case "follow":
		r.follow(ctx, c, enc, req.After)
	default:
		reply(fmt.Errorf("unknown operation %q", req.Op), nil)
	}
}

func (r *Runner) follow(ctx context.Context, c net.Conn, enc *json.Encoder, after uint64) {
	changes := r.Changes()
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
		r.mu.Lock()
		id := ""
		if r.job != nil {
			id = r.job.ID
		}
		r.mu.Unlock()
		evs, _ := r.store.Events(id, after, 0)
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
		}
		st, err := r.Status()
		rep := ControlReply{OK: err == nil, Status: st, Events: evs}
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
