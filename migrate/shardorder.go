package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// A job split into shards runs as many processes, often on many machines,
// each holding its own state file: no one control socket reaches them all.
// The admin's pause, resume and end are written instead as an order in a
// file on a volume every shard sees (DIR/control.json), and each shard's
// process obeys it through its own control socket, as if an admin had
// typed the command beside it.

// ShardOrdersFile is the order file's name in the shards' folder.
const ShardOrdersFile = "control.json"

// ShardOrder is the latest pause, resume or end of one job.
type ShardOrder struct {
	Op  string    `json:"op"`
	At  time.Time `json:"at"`
	Who string    `json:"who,omitempty"`
}

// ShardOrders are the orders of an order file, by job.
type ShardOrders struct {
	Jobs map[string]ShardOrder `json:"jobs"`
}

// ReadShardOrders reads an order file; a missing one has no orders.
func ReadShardOrders(path string) (*ShardOrders, error) {
	o := &ShardOrders{Jobs: map[string]ShardOrder{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("shard orders: %w", err)
	}
	if err := json.Unmarshal(b, o); err != nil {
		return nil, fmt.Errorf("shard orders %s: %w", path, err)
	}
	if o.Jobs == nil {
		o.Jobs = map[string]ShardOrder{}
	}
	return o, nil
}

// WriteShardOrder records op for job in the order file at path. The file
// is replaced by a rename, so a shard never reads half of it.
func WriteShardOrder(path, job, op, who string) error {
	switch op {
	case "pause", "resume", "end":
	default:
		return fmt.Errorf("%s cannot be sent to shards: pause, resume and end can", op)
	}
	o, err := ReadShardOrders(path)
	if err != nil {
		return err
	}
	o.Jobs[job] = ShardOrder{Op: op, At: time.Now().UTC(), Who: who}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".control-*.json")
	if err != nil {
		return fmt.Errorf("shard orders: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("shard orders: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("shard orders: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ShardOrderPoll is how often a shard looks at the order file.
var ShardOrderPoll = time.Second

// WatchShardOrders obeys the orders for job in the file at path until ctx
// ends, through the control socket of the state file at statePath (the
// process's own). An order is carried out once; the one standing when the
// watch begins is carried out too, unless it is a resume (a shard that
// starts is running already), so a shard restarted after a pause or an end
// pauses or ends as well.
func WatchShardOrders(ctx context.Context, path, statePath, job string, log *slog.Logger) {
	var done time.Time
	first := true
	t := time.NewTicker(ShardOrderPoll)
	defer t.Stop()
	for {
		o, err := ReadShardOrders(path)
		if err != nil {
			log.Error("shard orders not read", "err", err)
		} else if ord, ok := o.Jobs[job]; ok && ord.At.After(done) {
			if first && ord.Op == "resume" {
				done = ord.At
			} else {
				who := ord.Who
				if who == "" {
					who = CommandLine
				}
				var err error
				if already(statePath, job, ord.Op) {
					// Reached through its socket already (the admin's
					// machine holds this shard's file): not twice in its log.
					err = errAlready
				} else {
					_, err = Control(statePath, ControlRequest{Op: ord.Op, Job: job, Who: who})
				}
				switch {
				case err == nil:
					done = ord.At
				case errors.Is(err, ErrNoRunner):
					// The run has not opened its socket yet: the next look.
				default:
					// Already in that state, say: nothing to wait for.
					log.Info("shard order", "op", ord.Op, "job", job, "err", err)
					done = ord.At
				}
			}
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var errAlready = errors.New("the job is in that state already")

// already says whether the running job is in the state op leads to.
func already(statePath, job, op string) bool {
	rep, err := Control(statePath, ControlRequest{Op: "status", Job: job})
	if err != nil || rep.Status == nil {
		return false
	}
	want := map[string]state.JobState{"pause": state.JobPaused, "resume": state.JobRunning, "end": state.JobEnded}[op]
	return rep.Status.Job.State == want
}
