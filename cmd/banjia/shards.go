package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

// One job over many processes (docs/scale-out.md): export-shards writes a
// state file per shard, job start --shard runs one, and status, accounts,
// logs, pause, resume and end take several state files (or the shards'
// folder) and show or reach them as one job.

// shardStartFlags are job start's.
func shardStartFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "shard", Usage: "run only the accounts of shard INDEX/COUNT (e.g. 3/8, the index from 0): those whose old address hashes to it; without it, an exported shard's state file says its own, and an Indexed Job's JOB_COMPLETION_INDEX gives the index when --shards or BANJIA_SHARDS gives the count"},
		&cli.IntFlag{Name: "shards", EnvVars: []string{"BANJIA_SHARDS"}, Usage: "the shard count, with the index from JOB_COMPLETION_INDEX (Kubernetes Indexed Job)"},
		&cli.StringFlag{Name: "control-file", EnvVars: []string{"BANJIA_CONTROL_FILE"}, Usage: "the shards' order file, which job pause|resume|end --shards DIR writes (default: control.json beside a shard's state file)"},
		&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"BANJIA_METRICS_LISTEN"}, Usage: "serve Prometheus /metrics and /healthz at this address (e.g. :9090) while the job runs; a shard's series carry shard=\"INDEX\""},
	}
}

// shardOfStart reads which shard job start runs: --shard, else the
// Indexed Job's index with the count, else none (the state file may still
// be an exported shard: the runner reads that from the file).
func shardOfStart(c *cli.Context, job *state.Job) (*state.Shard, error) {
	if v := c.String("shard"); v != "" {
		sh, err := state.ParseShard(v)
		if err != nil {
			return nil, fmt.Errorf("--shard: %w", err)
		}
		return sh, nil
	}
	idx, indexed := os.LookupEnv("JOB_COMPLETION_INDEX")
	if !indexed {
		return nil, nil
	}
	i, err := strconv.Atoi(strings.TrimSpace(idx))
	if err != nil {
		return nil, fmt.Errorf("JOB_COMPLETION_INDEX=%q: want a whole number", idx)
	}
	n := c.Int("shards")
	switch {
	case n > 0:
		sh, err := state.NewShard(i, n)
		if err != nil {
			return nil, fmt.Errorf("JOB_COMPLETION_INDEX and --shards (BANJIA_SHARDS): %w", err)
		}
		return sh, nil
	case job.Shard != nil:
		if job.Shard.Index != i {
			return nil, fmt.Errorf("JOB_COMPLETION_INDEX=%d, but this state file holds shard %s of job %s: give each index the state file exported for it", i, job.Shard, job.ID)
		}
		return job.Shard, nil
	}
	// Every pod would run every account, each from its own state file:
	// each mailbox copied once per pod.
	return nil, fmt.Errorf("JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the shard count: set BANJIA_SHARDS (or --shards) to the job's completions, or give the state file exported for this index (banjia job export-shards)")
}

// prepareStart readies job start's run: its shard, when it is one (see
// startShard), and its /metrics when asked. It returns the accounts the
// run's exit code is about (nil: all of the file's) and what to call when
// the run ends.
func prepareStart(c *cli.Context, store *state.Store, jobID string, cfg *migrate.Config) (map[string]bool, func(), error) {
	only, stopShard, err := startShard(c, store, jobID, cfg)
	if err != nil {
		return nil, nil, err
	}
	addr := c.String("metrics-listen")
	if addr == "" {
		return only, stopShard, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		stopShard()
		return nil, nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	h, event := web.MetricsHandler(migrate.NewIdleManager(store, migrate.Config{}), cfg.Shard)
	prev := cfg.OnEvent
	cfg.OnEvent = func(e *state.Event) {
		if prev != nil {
			prev(e)
		}
		event(e)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	fmt.Fprintf(os.Stderr, "banjia: metrics at http://%s/metrics\n", l.Addr())
	return only, func() {
		srv.Close()
		stopShard()
	}, nil
}

// startShard prepares a job start as a shard: it sets cfg.Shard, starts
// obeying the shards' order file, and returns the accounts the run's exit
// code is about (nil: all of the file's) and what to call when the run ends.
func startShard(c *cli.Context, store *state.Store, jobID string, cfg *migrate.Config) (map[string]bool, func(), error) {
	job, err := store.Job(jobID)
	if err != nil {
		return nil, nil, err
	}
	sh, err := shardOfStart(c, job)
	if err != nil {
		return nil, nil, err
	}
	if job.Shard != nil && sh != nil && *job.Shard != *sh {
		return nil, nil, fmt.Errorf("this state file holds shard %s of job %s, not shard %s: give each process the state file exported for its own index", job.Shard, jobID, sh)
	}
	cfg.Shard = sh
	if job.Shard == nil && sh == nil {
		return nil, func() {}, nil
	}
	if job.Shard == nil {
		// A whole job's file (a copy on this shard's volume) becomes this
		// shard's: the merged view then counts only its accounts, and a
		// later start under another index is refused instead of copying
		// accounts another shard owns.
		shard := *sh
		job.Shard = &shard
		if err := store.PutJob(job); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(os.Stderr, "banjia: %s now holds shard %s of job %s: the accounts of other shards in it are left to their own shards\n", store.Path, sh, jobID)
	}
	// From here on the run is a shard's, however it was named.
	cfg.Shard = job.Shard
	// The exit code is about this shard's accounts.
	accts, err := store.Accounts(jobID)
	if err != nil {
		return nil, nil, err
	}
	only := map[string]bool{}
	for _, a := range accts {
		if job.Shard.Owns(a.ID) {
			only[a.ID] = true
		}
	}
	orders := c.String("control-file")
	if orders == "" {
		orders = filepath.Join(filepath.Dir(store.Path), migrate.ShardOrdersFile)
	}
	snapshot := statusSnapshotPath(filepath.Dir(orders), job.Shard.Index)
	ctx, cancel := context.WithCancel(c.Context)
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		migrate.WatchShardOrders(ctx, orders, store.Path, jobID, logger(c))
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		publishStatus(ctx, store, jobID, snapshot, c)
	}()
	return only, func() {
		cancel()
		<-done
		<-done
	}, nil
}

// statusSnapshotPath is where shard i publishes its status: in the folder
// of the order file, which every shard and the operator's machine see
// (each shard's state file stays on its own volume, locked by its process).
func statusSnapshotPath(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("shard-%d.status.json", i))
}

// statusSnapshotEvery is how often a running shard publishes its status.
const statusSnapshotEvery = 5 * time.Second

// publishStatus writes the job's status (no secret: statuses carry none)
// to path every few seconds while ctx lasts, and once more at the end, so
// that job status --shards shows shards running on other machines, whose
// state files and control sockets it cannot reach.
func publishStatus(ctx context.Context, store *state.Store, jobID, path string, c *cli.Context) {
	m := migrate.NewIdleManager(store, migrate.Config{})
	write := func(attached bool) {
		st, err := m.Status(jobID)
		if err != nil {
			return
		}
		st.Attached = attached
		b, err := json.Marshal(st)
		if err != nil {
			return
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			logger(c).Error("shard status not published", "path", path, "err", err)
		}
	}
	t := time.NewTicker(statusSnapshotEvery)
	defer t.Stop()
	for {
		write(true)
		select {
		case <-ctx.Done():
			write(false)
			return
		case <-t.C:
		}
	}
}

// readSnapshot reads a shard's published status.
func readSnapshot(path string) (*migrate.Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st migrate.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &st, nil
}

// shardCreateFlags let job create write the shard files at once.
func shardCreateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "shards", Usage: "also write the job as this many shard state files into --shard-dir (as banjia job export-shards)"},
		&cli.StringFlag{Name: "shard-dir", Usage: "with --shards: the folder for the shard state files"},
	}
}

// checkShardCreate refuses --shards without its folder before anything is
// asked or stored.
func checkShardCreate(c *cli.Context) error {
	n, dir := c.Int("shards"), c.String("shard-dir")
	switch {
	case n == 0 && dir == "":
		return nil
	case n == 0:
		return errors.New("--shard-dir goes with --shards N")
	case n < 2 || n > state.MaxShards:
		return fmt.Errorf("--shards %d: want 2 to %d", n, state.MaxShards)
	case dir == "":
		return errors.New("--shards needs --shard-dir DIR: where the shard state files go")
	}
	return nil
}

func exportAfterCreate(c *cli.Context, store *state.Store, id string, accounts int) error {
	n, dir := c.Int("shards"), c.String("shard-dir")
	counts, err := migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).ExportShards(id, n, dir, migrate.CommandLine)
	if err != nil {
		return fmt.Errorf("job %s created with %d accounts, but not exported as shards: %w (banjia job export-shards %s %d DIR tries again)", id, accounts, err, id, n)
	}
	printShards(dir, counts)
	fmt.Printf("job %s created with %d accounts in %d shards; start shard i with: banjia --state %s job start %s\n", id, accounts, n, filepath.Join(dir, "shard-i.db"), id)
	return nil
}

func printShards(dir string, counts []int) {
	for i, k := range counts {
		fmt.Printf("%s  shard %d/%d  %d accounts\n", state.ShardPath(dir, i), i, len(counts), k)
	}
	if os.Getenv(state.KeyEnv) == "" {
		fmt.Printf("each shard's key file (shard-N.db.key) seals its passwords: keep it beside its state file, or give every shard the key as %s\n", state.KeyEnv)
	}
}

func exportShardsCommand() *cli.Command {
	return &cli.Command{
		Name: "export-shards", Usage: "write a job as N shard state files (DIR/shard-0.db ...), each with the job, its sealed passwords and the accounts of that shard, for N processes or pods",
		ArgsUsage: "JOB N DIR",
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 3 {
				return errors.New("give the job, the shard count and a folder: banjia job export-shards JOB N DIR")
			}
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("shard count %q: want a whole number, such as 8", args[1])
			}
			store, err := state.OpenExisting(c.String("state"))
			if err != nil {
				return err
			}
			defer store.Close()
			counts, err := migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).ExportShards(args[0], n, args[2], migrate.CommandLine)
			if err != nil {
				return err
			}
			printShards(args[2], counts)
			return nil
		},
	}
}

// viewFlags let status, accounts, logs, pause, resume and end take the
// shards of a job: --state repeated, or the shards' folder.
func viewFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "state", Usage: "a shard's state file; repeat it to show (or reach) several as one job"},
		&cli.StringFlag{Name: "shards", Usage: "the folder of a job's shard state files (banjia job export-shards): every shard-N.db in it"},
	}
}

var shardFile = regexp.MustCompile(`^shard-(\d+)\.(?:db|status\.json)$`)

// shardPaths are the shard state files of a shards' folder: those there,
// and those whose status is published there (their files elsewhere).
func shardPaths(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--shards: %w", err)
	}
	type file struct {
		i    int
		path string
	}
	// A shard's state file, or the status it publishes there when its
	// state file is on a volume of its own.
	var files []file
	seen := map[int]bool{}
	for _, e := range ents {
		if m := shardFile.FindStringSubmatch(e.Name()); m != nil {
			i, _ := strconv.Atoi(m[1])
			if !seen[i] {
				seen[i] = true
				files = append(files, file{i, state.ShardPath(dir, i)})
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("--shards %s: no shard-N.db nor shard-N.status.json in it (banjia job export-shards writes the state files; running shards publish their status there)", dir)
	}
	sort.Slice(files, func(a, b int) bool { return files[a].i < files[b].i })
	var out []string
	for _, f := range files {
		out = append(out, f.path)
	}
	return out, nil
}

// statePaths are the state files a command reads: the shards' folder's,
// those given with the command's --state, or the one global --state.
func statePaths(c *cli.Context) ([]string, error) {
	if dir := c.String("shards"); dir != "" {
		return shardPaths(dir)
	}
	if local := c.StringSlice("state"); len(local) > 0 {
		return local, nil
	}
	// The command's own --state shadows the global one: ask the parent.
	return []string{c.Lineage()[1].String("state")}, nil
}

// mergedStatus reads one job from every state file and makes it one: the
// accounts of all (each in exactly one shard), the job's state the most
// active of theirs.
func mergedStatus(paths []string, id string) (*migrate.Status, error) {
	var out *migrate.Status
	states := map[state.JobState]int{}
	for _, p := range paths {
		st, err := shardStatus(p, id)
		if err != nil {
			return nil, err
		}
		states[st.Job.State]++
		if out == nil {
			cp := *st
			cp.Accounts = nil
			cp.AccountETA = map[string]time.Duration{}
			cp.Job.Shard = nil
			out = &cp
		}
		var own []state.Account
		for _, a := range st.Accounts {
			if st.Job.Shard.Owns(a.ID) {
				own = append(own, a)
			}
		}
		out.Accounts = append(out.Accounts, own...)
		out.Attached = out.Attached || st.Attached
		out.Outside = out.Outside || st.Outside
		out.ETA = max(out.ETA, st.ETA)
		for k, v := range st.AccountETA {
			out.AccountETA[k] = v
		}
	}
	// The job runs while any shard runs; it is paused, ended or completed
	// only when every shard that is not finished says so.
	for _, s := range []state.JobState{state.JobRunning, state.JobPaused, state.JobCreated, state.JobEnded, state.JobCompleted} {
		if states[s] > 0 {
			out.Job.State = s
			break
		}
	}
	slices.SortFunc(out.Accounts, func(a, b state.Account) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// shardStatus reads one shard's status: from its process or its state
// file when they are here, else from the status it publishes beside them
// (a shard of a cluster, its state file on its own volume).
func shardStatus(path, id string) (*migrate.Status, error) {
	if _, err := os.Stat(path); err == nil {
		sts, err := statusesAt(path, id)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return sts[0], nil
	}
	m := shardFile.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return nil, fmt.Errorf("%s: no such state file", path)
	}
	i, _ := strconv.Atoi(m[1])
	st, err := readSnapshot(statusSnapshotPath(filepath.Dir(path), i))
	if err != nil {
		return nil, fmt.Errorf("shard %d: neither its state file nor its published status: %w", i, err)
	}
	if st.Job.ID != id {
		return nil, fmt.Errorf("shard %d publishes job %s, not %s", i, st.Job.ID, id)
	}
	return st, nil
}

// statusShards is status and accounts over several state files.
func statusShards(c *cli.Context, paths []string, perAccount bool) error {
	id := c.Args().First()
	if id == "" {
		return errors.New("which job? several state files show one job: banjia job status JOB --shards DIR")
	}
	st, err := mergedStatus(paths, id)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode([]*migrate.Status{st})
	}
	lang := langOf(c.String("lang"))
	if perAccount {
		accountTable(os.Stdout, lang, st)
		return nil
	}
	jobTable(os.Stdout, lang, []*migrate.Status{st})
	var total state.Counts
	for _, a := range st.Accounts {
		total.Add(a.Counts)
	}
	fmt.Printf("%d shards: %s\n", len(paths), total.Line(lang))
	return nil
}

// jobLogsCommand is the event log of one job, merged across its shards in
// time order.
func jobLogsCommand() *cli.Command {
	return &cli.Command{
		Name: "logs", Usage: "the job's event log; with several state files (--state repeated, --shards DIR) one stream in time order", ArgsUsage: "JOB",
		Flags: append(viewFlags(),
			&cli.StringFlag{Name: "account", Usage: "only this account (old address)"},
			&cli.StringFlag{Name: "since", Usage: "from this time: 2026-01-31, \"2026-01-31 08:00\", RFC 3339, or back from now (24h, 7d)"},
			&cli.StringFlag{Name: "until", Usage: "before this time"},
			&cli.StringFlag{Name: "kind", Usage: "event kinds, comma-separated"},
			&cli.StringFlag{Name: "result", Usage: "results, comma-separated: " + strings.Join(state.Results, ", ")},
			&cli.StringFlag{Name: "who", Usage: "who acted, comma-separated"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text, csv, json or jsonl"},
			&cli.BoolFlag{Name: "json", Usage: "same as --format jsonl"},
		),
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return errors.New("which job? banjia job logs JOB")
			}
			format := c.String("format")
			if c.Bool("json") {
				format = "jsonl"
			}
			if !slices.Contains([]string{"text", "csv", "json", "jsonl"}, format) {
				return fmt.Errorf("--format %q: want text, csv, json or jsonl", format)
			}
			paths, err := statePaths(c)
			if err != nil {
				return err
			}
			q, err := state.ParseEventQuery(func(name string) string {
				if name == "job" {
					return id
				}
				return c.String(name)
			}, time.Now(), time.Local)
			if err != nil {
				return fmt.Errorf("--%w", err)
			}
			type shardEvent struct {
				e     *state.Event
				shard int
			}
			var all []shardEvent
			for i, p := range paths {
				if _, err := os.Stat(p); err != nil {
					fmt.Fprintf(os.Stderr, "banjia: %s is not here (a shard on a volume of its own): its events are left out\n", p)
					continue
				}
				err := readEvents(p, q, 0, func(e *state.Event) error {
					all = append(all, shardEvent{e, i})
					return nil
				})
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
			// Each file's events are in order already; between files, time
			// orders them (and the shard, for the same instant).
			slices.SortStableFunc(all, func(a, b shardEvent) int {
				if c := a.e.Time.Compare(b.e.Time); c != 0 {
					return c
				}
				return a.shard - b.shard
			})
			out := newEventWriter(os.Stdout, format, langOf(c.String("lang")))
			for _, se := range all {
				if err := out.write(se.e); err != nil {
					return err
				}
			}
			return out.finish()
		},
	}
}

// controlShards sends pause, resume or end to every shard: as an order in
// the shards' folder, which each running shard obeys within seconds, and
// at once to each shard whose state file is here (its process's control
// socket, or the file itself when nothing runs it).
func controlShards(c *cli.Context, op, id string, paths []string) error {
	dir := c.String("shards")
	if dir == "" {
		dir = filepath.Dir(paths[0])
	}
	if err := migrate.WriteShardOrder(filepath.Join(dir, migrate.ShardOrdersFile), id, op, migrate.CommandLine); err != nil {
		return err
	}
	reached := 0
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			// On a volume of its own: the order reaches it.
			continue
		}
		_, err := migrate.Control(p, migrate.ControlRequest{Op: op, Job: id})
		if errors.Is(err, migrate.ErrNoRunner) {
			store, oerr := state.OpenExisting(p)
			if errors.Is(oerr, state.ErrLocked) {
				// Held by a process on another machine: the order reaches it.
				continue
			}
			if oerr != nil {
				return oerr
			}
			err = migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).Control(id, op, migrate.CommandLine)
			store.Close()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		reached++
	}
	fmt.Printf("job %s: %s sent to its %d shards (%d reached at once, the rest through %s)\n", id, op, len(paths), reached, filepath.Join(dir, migrate.ShardOrdersFile))
	return nil
}

// serveShards is banjia serve --shards DIR: the shards' merged status as a
// read-only JSON API guarded by the admin token, and as the dashboard's job
// list and job pages behind serve's sign-in (web.ShardView).
func serveShards(c *cli.Context, dir string) error {
	da, err := dashboardAccessOf(c)
	if err != nil {
		return err
	}
	adminPW, token, admins, viewers, proxies := da.adminPW, da.token, da.admins, da.viewers, da.proxies
	if token == "" && adminPW == "" && len(admins) == 0 && len(viewers) == 0 {
		return errors.New("serve --shards needs an admin password (BANJIA_ADMIN_PASSWORD or --admin-password-file), admins or viewers (--admins-file, --viewers-file) or the API token (BANJIA_ADMIN_TOKEN or --admin-token-file): it shows every shard's accounts")
	}
	// The shards may publish their first status after serve starts.
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("--shards %s: not a folder", dir)
	}
	paths := func() ([]string, error) { return shardPaths(dir) }
	v := &web.ShardView{Token: token, AdminUser: c.String("admin-user"), AdminPassword: adminPW, Admins: admins, Viewers: viewers,
		Lang: langOf(c.String("lang")), SecureCookies: c.Bool("secure-cookies"), TrustedProxies: proxies, Dir: dir, Log: logger(c),
		Status: func(job string) (*migrate.Status, error) {
			ps, err := paths()
			if err != nil {
				return nil, err
			}
			return mergedStatus(ps, job)
		},
		Jobs: func() ([]string, error) {
			ps, err := paths()
			if err != nil {
				return nil, err
			}
			seen := map[string]bool{}
			var out []string
			for _, p := range ps {
				var sts []*migrate.Status
				if _, err := os.Stat(p); err == nil {
					if sts, err = statusesAt(p, ""); err != nil {
						return nil, err
					}
				} else if m := shardFile.FindStringSubmatch(filepath.Base(p)); m != nil {
					i, _ := strconv.Atoi(m[1])
					st, err := readSnapshot(statusSnapshotPath(dir, i))
					if err != nil {
						return nil, err
					}
					sts = append(sts, st)
				}
				for _, st := range sts {
					if !seen[st.Job.ID] {
						seen[st.Job.ID] = true
						out = append(out, st.Job.ID)
					}
				}
			}
			return out, nil
		}}
	l, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	h, err := v.Handler()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: web.DefaultReadHeaderTimeout, ReadTimeout: web.DefaultReadTimeout,
		WriteTimeout: web.DefaultWriteTimeout, IdleTimeout: web.DefaultIdleTimeout}
	scheme := "http"
	if c.String("tls-cert") != "" {
		scheme = "https"
	}
	fmt.Fprintf(os.Stderr, "banjia serve: the shards in %s, read-only: dashboard %s://%s/admin  API %s://%s/api/jobs\n", dir, scheme, l.Addr(), scheme, l.Addr())
	go func() {
		<-c.Context.Done()
		srv.Close()
	}()
	if scheme == "https" {
		err = srv.ServeTLS(l, c.String("tls-cert"), c.String("tls-key"))
	} else {
		err = srv.Serve(l)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
