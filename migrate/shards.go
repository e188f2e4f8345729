package migrate

import (
	"errors"
	"fmt"
	"os"

	"github.com/banjia-mail/banjia/state"
)

// One job as several processes (docs/scale-out.md): each runs the accounts
// of one shard (state.ShardOf of the old address) from its own state file,
// and the limits that protect the servers are the whole job's, shared out
// so that the shards together never exceed them.

// shardOf is the shard a run takes: the state file's own (an exported
// shard) or the one the process was started with on a whole job's file.
func (r *Runner) shardOf(job *state.Job) *state.Shard {
	if job.Shard != nil {
		return job.Shard
	}
	return r.cfg.Shard
}

// checkShard refuses a run whose --shard is not the one its state file
// holds: the wrong index would take no account at all, or the wrong count
// another partition of them.
func checkShard(job *state.Job, asked *state.Shard) error {
	if job.Shard == nil || asked == nil || *job.Shard == *asked {
		return nil
	}
	return fmt.Errorf("this state file holds shard %s of job %s, not shard %s: give each process the state file exported for its own index", job.Shard, job.ID, asked)
}

// ShareLimit is one shard's part of a job-wide connection limit. The
// parts differ by at most one and add up to exactly limit (the first
// limit%N shards get one more), so the source server never sees more
// than limit from the whole job, and no connection of the limit is left
// unused, as rounding up (too many) or down (too few) would. A limit
// smaller than the shard count cannot give each shard a connection: that
// is refused, not rounded up behind the admin's back.
func ShareLimit(limit int, sh *state.Shard) (int, error) {
	if sh == nil || sh.Count <= 1 {
		return limit, nil
	}
	if limit < sh.Count {
		return 0, fmt.Errorf("--per-host %d cannot be shared among %d shards (each needs at least one connection): give --per-host %d or more, or use fewer shards", limit, sh.Count, sh.Count)
	}
	n := limit / sh.Count
	if sh.Index < limit%sh.Count {
		n++
	}
	return n, nil
}

// SourceBudget is how a run uses its connections to a source host: at most
// lanes copying (Config.PerHost's part) and accounts copied at once
// (Config.Accounts). A whole job run in one process keeps both as given
// (each account's own session, which lists its folders, comes beside the
// lanes). A shard counts every session in its share of the job's limit,
// because the provider counts every connection: an account's own session
// is open only while the account holds one of the places, so the places
// and the lanes together stay within the share. The places get what the
// lanes leave, at least one each; a share of one cannot list and copy at
// once and is refused.
func SourceBudget(perHost, accounts int, sh *state.Shard) (lanes, places int, err error) {
	if sh == nil || sh.Count <= 1 {
		return perHost, accounts, nil
	}
	share, err := ShareLimit(perHost, sh)
	if err != nil {
		return 0, 0, err
	}
	if share < 2 {
		return 0, 0, fmt.Errorf("--per-host %d among %d shards leaves shard %s one connection to the old server, and it needs two (one lists an account's folders, one copies): give --per-host %d or more, or use fewer shards", perHost, sh.Count, sh, 2*sh.Count)
	}
	places = min(accounts, share/2)
	return share - places, places, nil
}

// shareRate is one shard's part of a job-wide byte rate cap (0: none):
// rounded down, so the shards together stay under the cap.
func shareRate(rate int64, sh *state.Shard) int64 {
	if rate <= 0 || sh == nil || sh.Count <= 1 {
		return rate
	}
	return max(rate/int64(sh.Count), 1)
}

// ExportShards writes the job as n shard state files in dir (shard-0.db
// ... shard-(n-1).db; state.ExportShard): each holds the job's definition,
// its sealed secrets, and the accounts of its shard. It returns the
// number of accounts in each. The job itself is left as it was.
func (m *Manager) ExportShards(jobID string, n int, dir, who string) ([]int, error) {
	if _, err := state.NewShard(0, n); err != nil {
		return nil, err
	}
	if n < 2 {
		return nil, errors.New("one shard is the job itself: give 2 or more")
	}
	job, err := m.store.Job(jobID)
	if err != nil {
		return nil, err
	}
	if !job.Closed.IsZero() {
		return nil, closedError(job)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("shard folder: %w", err)
	}
	for i := range n {
		if _, err := os.Stat(state.ShardPath(dir, i)); err == nil {
			return nil, fmt.Errorf("%s exists: export shards into an empty folder", state.ShardPath(dir, i))
		}
	}
	counts := make([]int, n)
	for i := range n {
		sh := &state.Shard{Index: i, Count: n}
		if counts[i], err = m.store.ExportShard(jobID, state.ShardPath(dir, i), sh); err != nil {
			return nil, fmt.Errorf("shard %s: %w", sh, err)
		}
	}
	m.EventBy(who, jobID, "", "job.sharded", fmt.Sprintf("%s exported job %s as %d shards into %s", state.Actor(who), jobID, n, dir))
	return counts, nil
}

// RunShard is Run for a shard's process, which a cluster starts and
// restarts, not a person: a paused job waits in it for its resume (the
// shards' order) instead of being refused, so a pod restarted while its
// job is paused neither fails nor runs.
func (m *Manager) RunShard(jobID string) error {
	if err := m.start(jobID, runOptions{}); err != nil {
		return err
	}
	return m.Wait(jobID)
}
