// Command banjia moves whole mailboxes from an old mail system into a new
// IMAP server: one account with `banjia migrate`, a whole domain with
// `banjia job`, or a self-contained demonstration with `banjia demo`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/mail/imapconn"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sources/ews"        // also registers ews
	_ "github.com/banjia-mail/banjia/sources/exchange" // app-only tokens for delegated XOAUTH2 logins
	"github.com/banjia-mail/banjia/sources/graph"
	_ "github.com/banjia-mail/banjia/sources/imapsource" // registers imap, imaps, imap+plain
	pop3src "github.com/banjia-mail/banjia/sources/pop3" // also registers pop3, pop3s, pop3+plain
	"github.com/banjia-mail/banjia/sources/presets"
	"github.com/banjia-mail/banjia/state"
)

var version = "dev"

var errShown = errors.New("shown")

func main() { os.Exit(mainCode()) }

// mainCode runs the CLI and returns its exit code, after the deferred
// profile and peak-RSS writers have run (os.Exit would skip them).
func mainCode() int {
	app := &cli.App{
		Name:    "banjia",
		Usage:   "move mailboxes from an old mail system into a new IMAP server (搬家)",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state", Value: "banjia.db", EnvVars: []string{"BANJIA_STATE"}, Usage: "state file (jobs, checkpoints, events)"},
			&cli.StringFlag{Name: "lang", EnvVars: []string{"BANJIA_LANG"}, Usage: "en or zh (default from LANG)"},
			&cli.BoolFlag{Name: "verbose", Usage: "log engine details to stderr"},
		},
		Commands: []*cli.Command{migrateCommand(), jobCommand(), checkCommand(), providersCommand(), logsCommand(), serveCommand(), demoCommand(), outboxCommand()},
		Before: func(c *cli.Context) error {
			// Graph delta links live beside the state file, so a re-run of
			// a Graph job asks only for what changed.
			graph.Deltas = graph.DirDeltas(c.String("state") + ".graph")
			ews.Syncs = ews.DirSyncs(c.String("state") + ".ews")
			return nil
		},
	}
	localizeHelp(app, helpLang(os.Args))
	if p := os.Getenv("BANJIA_PEAKRSS_FILE"); p != "" {
		// For benchmarks and tests: the process's own peak RSS (VmHWM), which
		// a parent cannot read reliably after exit.
		defer func() {
			if b, err := os.ReadFile("/proc/self/status"); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					if strings.HasPrefix(line, "VmHWM:") {
						os.WriteFile(p, []byte(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))+"\n"), 0o644)
					}
				}
			}
		}()
	}
	if p := os.Getenv("BANJIA_CPUPROFILE"); p != "" {
		// For benchmarks: where the CPU goes.
		if f, err := os.Create(p); err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() {
				pprof.StopCPUProfile()
				f.Close()
			}()
		}
	}
	if p := os.Getenv("BANJIA_HEAPPROFILE"); p != "" {
		// For benchmarks: where the memory goes.
		defer func() {
			if f, err := os.Create(p); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}()
	}
	// Exit codes are returned, not taken with os.Exit inside the library.
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(jobNameLast(os.Args))
	var ec cli.ExitCoder
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "banjia:", err)
	return 1
}

// jobNameLast lets admins write `banjia job create acme --from ...`: the
// CLI library stops reading flags at the first argument, so the job name is
// moved behind the flags.
func jobNameLast(args []string) []string {
	for i := 1; i+2 < len(args); i++ {
		if args[i] != "job" {
			continue
		}
		if args[i+1] == "account" || args[i+1] == "export-shards" {
			// They read their own arguments (JOB N DIR: no flags).
			return args
		}
		name := args[i+2]
		if strings.HasPrefix(name, "-") || i+3 >= len(args) {
			return args
		}
		out := append([]string{}, args[:i+2]...)
		out = append(out, args[i+3:]...)
		return append(out, name)
	}
	return args
}

func logger(c *cli.Context) *slog.Logger {
	if c.Bool("verbose") {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func openSink(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
	return imapsink.Open(ctx, e)
}

func runnerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "parallel", Value: 4, Usage: "accounts copied at once"},
		&cli.IntFlag{Name: "conns", Value: 2, Usage: "connections per account"},
		&cli.IntFlag{Name: "per-host", Value: 10, Usage: "most connections to one source host (a sharded job's: the whole job's, shared among its shards, listing sessions included)"},
		&cli.DurationFlag{Name: "retry-for", Value: 5 * time.Minute, Usage: "how long a connection or message that keeps failing is retried without progress before it is given up"},
		&cli.DurationFlag{Name: "connect-for", Value: time.Minute, Usage: "how long an account keeps trying to reach its servers before any of its mail moved"},
		&cli.DurationFlag{Name: "retry-wait", Value: 250 * time.Millisecond, Usage: "the first wait after a failure; it doubles, with jitter, up to 30s"},
		&cli.DurationFlag{Name: "idle-timeout", Value: imapconn.IdleTimeout, Usage: "how long a server may stay silent while an answer is owed before the connection is given up and made again"},
		&cli.DurationFlag{Name: "connect-timeout", Value: imapconn.ConnectTimeout, Usage: "how long a server may take to accept a connection"},
		&cli.DurationFlag{Name: "login-timeout", Value: imapconn.LoginTimeout, Usage: "how long TLS, the greeting and the login may take once connected"},
	}
}

func runnerConfig(c *cli.Context) (migrate.Config, error) {
	for _, name := range []string{"retry-for", "connect-for", "retry-wait", "idle-timeout", "connect-timeout", "login-timeout"} {
		if d := c.Duration(name); d <= 0 {
			return migrate.Config{}, fmt.Errorf("--%s %v: give a duration above zero, such as 30s or 5m", name, d)
		}
	}
	for _, name := range []string{"parallel", "conns", "per-host"} {
		if n := c.Int(name); n <= 0 {
			return migrate.Config{}, fmt.Errorf("--%s %d: give a number above zero", name, n)
		}
	}
	// One process, one setting: every connection the run makes uses it.
	imapconn.IdleTimeout = c.Duration("idle-timeout")
	pop3src.IOTimeout = c.Duration("idle-timeout")
	imapconn.ConnectTimeout = c.Duration("connect-timeout")
	imapconn.LoginTimeout = c.Duration("login-timeout")
	return migrate.Config{
		Accounts: c.Int("parallel"), Lanes: c.Int("conns"), PerHost: c.Int("per-host"),
		RetryFor: c.Duration("retry-for"), ConnectFor: c.Duration("connect-for"), RetryBase: c.Duration("retry-wait"),
		OpenSink: openSink, Log: logger(c),
	}, nil
}

// password reads a secret from a file, an environment variable or the
// terminal, never from the command line.
func password(c *cli.Context, prefix, what string) (string, error) {
	if f := c.String(prefix + "-pass-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("%s password file: %w", what, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if v := c.String(prefix + "-pass-env"); v != "" {
		if p, ok := os.LookupEnv(v); ok {
			return p, nil
		}
		if c.IsSet(prefix + "-pass-env") {
			return "", fmt.Errorf("%s password: environment variable %s is not set", what, v)
		}
	}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprintf(os.Stderr, "%s password (or authorization code 授权码): ", what)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		return string(b), err
	}
	return "", fmt.Errorf("no %s password: give --%s-pass-file, --%s-pass-env, or run on a terminal to be asked", what, prefix, prefix)
}

func passFlags(prefix, what, env string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: prefix + "-pass-file", Usage: "file holding the " + what + " password"},
		&cli.StringFlag{Name: prefix + "-pass-env", Value: env, Usage: "environment variable holding the " + what + " password"},
	}
}

func endpointFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "provider", Usage: "the old provider's preset (banjia providers): --from may then be just the user"},
		&cli.StringFlag{Name: "protocol", Value: "imap", Usage: "with --provider: imap, pop3 or ews (an EWS-only preset such as exchange-ews needs none)"},
		&cli.BoolFlag{Name: "insecure", Usage: "do not verify TLS certificates (only on a network you trust)"},
		&cli.StringFlag{Name: "ca-file", Usage: "PEM file of CA certificates to trust for both servers"},
	}, ewsFlags()...)
}

func parseEndpoint(c *cli.Context, raw string) (mail.Endpoint, error) {
	return resolveEndpoint(c, raw, "", "")
}

// parseSource reads --from, with --provider/--protocol when given.
func parseSource(c *cli.Context) (mail.Endpoint, error) {
	protocol := c.String("protocol")
	if !c.IsSet("protocol") {
		// The preset's own: IMAP, or EWS for a preset with only EWS.
		protocol = ""
	}
	e, err := resolveEndpoint(c, c.String("from"), c.String("provider"), protocol)
	if err != nil {
		return e, err
	}
	return e, applyEWSFlags(c, &e)
}

func resolveEndpoint(c *cli.Context, raw, provider, protocol string) (mail.Endpoint, error) {
	e, err := presets.ResolveEndpoint(raw, provider, protocol)
	if err != nil {
		return e, err
	}
	if c.Bool("insecure") {
		e.Insecure = true
	}
	if e.Insecure {
		fmt.Fprintf(os.Stderr, "warning: TLS certificates of %s are not verified\n", e.Addr())
	}
	if f := c.String("ca-file"); f != "" {
		if e.RootCAs, err = os.ReadFile(f); err != nil {
			return e, fmt.Errorf("CA file: %w", err)
		}
	}
	return e, nil
}

// foreground runs a job in this process until work returns: a manager
// holding only this job answers the control socket for other shells,
// signals stop it cleanly, progress shows on stderr and the tables at the
// end. work starts the run and waits for it (Manager.Run, or Retry then
// Wait).
func foreground(c *cli.Context, store *state.Store, jobID string, cfg migrate.Config, work func(*migrate.Manager) error) error {
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	m := migrate.NewManagerOf(ctx, store, cfg, jobID)
	defer m.Stop()
	if err := m.ServeControl(ctx, store.Path); err != nil {
		return err
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "\n%s: stopping at the next message boundary and saving progress...\n", s)
			m.Interrupt()
		case <-ctx.Done():
			return
		}
		select {
		case <-sig:
			// A second signal: stop waiting for message boundaries.
			cancel()
		case <-ctx.Done():
		}
	}()
	lang := langOf(c.String("lang"))
	done, shown := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(shown)
		showProgress(ctx, m, jobID, lang, done)
	}()
	err := work(m)
	close(done)
	<-shown
	if st, serr := m.Status(jobID); serr == nil {
		fmt.Println()
		jobTable(os.Stdout, lang, []*migrate.Status{st})
		fmt.Println()
		accountTable(os.Stdout, lang, st)
	}
	return err
}

// runJob runs a job in the foreground until it finishes or is stopped.
func runJob(c *cli.Context, store *state.Store, jobID string, cfg migrate.Config) error {
	return foreground(c, store, jobID, cfg, func(m *migrate.Manager) error { return m.Run(jobID) })
}

func showProgress(ctx context.Context, m *migrate.Manager, jobID, lang string, done <-chan struct{}) {
	start := time.Now()
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	var bar *progressbar.ProgressBar
	every := 5 * time.Second
	if tty {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var prev int64
	prevT := start
	for {
		select {
		case <-done:
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(os.Stderr)
			}
			return
		case <-ctx.Done():
			return
		case now := <-t.C:
			st, err := m.Status(jobID)
			if err != nil {
				continue
			}
			var total state.Counts
			for _, a := range st.Accounts {
				total.Add(a.Counts)
			}
			if tty {
				if bar == nil {
					bar = progressbar.NewOptions64(max(total.ToImport, 1), progressbar.OptionSetWriter(os.Stderr),
						progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("msg"),
						progressbar.OptionSetWidth(30), progressbar.OptionThrottle(200*time.Millisecond))
				}
				bar.ChangeMax64(max(total.ToImport, 1))
				n := tally(st.Accounts)
				bar.Describe(fmt.Sprintf("%s %d/%d", word(lang, string(st.Job.State)),
					n[state.AccountSucceeded]+n[state.AccountPartial]+n[state.AccountFailed]+n[state.AccountAbandoned], len(st.Accounts)))
				bar.Set64(total.Imported + total.Failed)
			} else {
				fmt.Fprintln(os.Stderr, progressLine(lang, st, now.Sub(start), prev, now.Sub(prevT)))
			}
			prev, prevT = total.Imported, now
		}
	}
}

func migrateCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "from", Required: true, Usage: "source, e.g. imaps://alice@imap.old.example:993"},
		&cli.StringFlag{Name: "to", Required: true, Usage: "target, e.g. imaps://alice@imap.new.example:993"},
	}
	flags = append(flags, optionFlags()...)
	flags = append(flags, passFlags("from", "old mailbox's", "BANJIA_FROM_PASSWORD")...)
	flags = append(flags, passFlags("to", "new mailbox's", "BANJIA_TO_PASSWORD")...)
	flags = append(flags, endpointFlags()...)
	flags = append(flags, runnerFlags()...)
	return &cli.Command{
		Name:        "migrate",
		Usage:       "copy one mailbox (re-runs copy only what is new)",
		Description: exitCodesHelp,
		Flags:       flags,
		Action: func(c *cli.Context) error {
			src, err := parseSource(c)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			dst, err := parseEndpoint(c, c.String("to"))
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if src.User == "" || dst.User == "" {
				return errors.New("--from and --to need a user, e.g. imaps://alice@host:993")
			}
			opts, err := options(c)
			if err != nil {
				return err
			}
			sp, err := password(c, "from", "old mailbox's")
			if err != nil {
				return err
			}
			dp, err := password(c, "to", "new mailbox's")
			if err != nil {
				return err
			}
			store, err := state.Open(c.String("state"))
			if err != nil {
				return err
			}
			defer store.Close()
			id := "migrate:" + src.User + "@" + src.Host + "->" + dst.User + "@" + dst.Host
			job, err := store.Job(id)
			if errors.Is(err, state.ErrNotFound) {
				job = &state.Job{ID: id, Name: id, Created: time.Now().UTC(), State: state.JobCreated}
			} else if err != nil {
				return err
			}
			user, tuser := src.User, dst.User
			src.User, dst.User = "", ""
			job.Source, job.Target, job.Options = src, dst, opts
			if job.State == state.JobEnded || job.State == state.JobPaused {
				job.State = state.JobCreated
			}
			if err := store.PutJob(job); err != nil {
				return err
			}
			acct, err := store.Account(id, user)
			if errors.Is(err, state.ErrNotFound) {
				acct = &state.Account{ID: user, Source: user, Target: tuser, State: state.AccountNotStarted}
			} else if err != nil {
				return err
			}
			if acct.SourceSecret, err = store.Seal(sp); err != nil {
				return err
			}
			if acct.TargetSecret, err = store.Seal(dp); err != nil {
				return err
			}
			if acct.State == state.AccountAbandoned {
				acct.State = state.AccountNotStarted
			}
			if err := store.PutAccounts(id, acct); err != nil {
				return err
			}
			cfg, err := runnerConfig(c)
			if err != nil {
				return err
			}
			cfg.Rerun = true
			return outcome(store, id, runJob(c, store, id, cfg), nil)
		},
	}
}

func options(c *cli.Context) (state.Options, error) {
	var o state.Options
	if s := c.String("since"); s != "" {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return o, fmt.Errorf("--since %q: want YYYY-MM-DD", s)
		}
		o.Since = t
	}
	if p := c.String("period"); p != "" {
		if o.Since.IsZero() {
			since, err := state.PeriodStart(p, time.Now())
			if err != nil {
				return o, err
			}
			o.Since = since
		} else {
			return o, errors.New("give --period or --since, not both")
		}
	}
	o.SkipJunkTrash = c.Bool("skip-junk-trash")
	o.SkipCustomFolders = c.Bool("skip-custom-folders")
	o.KeepSystemFolders = c.Bool("system-folders")
	o.DedupeAcrossFolders = c.Bool("dedupe-across-folders") || strings.EqualFold(c.String("provider"), "gmail")
	o.MaxMessageSize = migrate.MessageSizeBytes(c.Int("max-size"))
	if err := migrate.CheckMessageSize(o.MaxMessageSize); err != nil {
		return o, fmt.Errorf("--max-size: %w", err)
	}
	o.Window, o.TimeZone = c.String("window"), c.String("time-zone")
	o.MaxRate, o.MaxRatePerHost = migrate.RateBytes(c.Float64("max-rate")), migrate.RateBytes(c.Float64("max-rate-per-host"))
	if err := migrate.CheckSchedule(o); err != nil {
		return o, err
	}
	return o, folderOptions(c, &o)
}

func optionFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "period", Usage: "copy only recent mail: all, 2y, 1y, 3m or 30d"},
		&cli.StringFlag{Name: "since", Usage: "copy only mail that arrived on or after this date (YYYY-MM-DD)"},
		&cli.BoolFlag{Name: "skip-junk-trash", Usage: "leave Junk and Trash behind"},
		&cli.BoolFlag{Name: "system-folders", Usage: "copy Exchange's system folders (Outbox, Scheduled, Sync Issues and below) too; by default they are left behind and named in each account's report"},
		&cli.BoolFlag{Name: "skip-custom-folders", Usage: "copy only INBOX and the special folders (Sent, Drafts, ...)"},
		&cli.IntFlag{Name: "max-size", Usage: "skip messages larger than this many MB (0: no limit)"},
		&cli.BoolFlag{Name: "dedupe-across-folders", Usage: "copy a message filed in several folders once, All Mail last (on with --provider gmail)"},
		&cli.StringFlag{Name: "window", Usage: "copy only during this daily span, e.g. 22:00-07:00; outside it accounts stop at a message boundary and go on when it opens"},
		&cli.StringFlag{Name: "time-zone", Usage: "the --window's time zone, e.g. Asia/Shanghai (default: this machine's)"},
		&cli.Float64Flag{Name: "max-rate", Usage: "read at most this many MB/s from the old servers, the whole job together (0: no cap)"},
		&cli.Float64Flag{Name: "max-rate-per-host", Usage: "read at most this many MB/s from each old server (0: no cap)"},
	}, folderFlags()...)
}

func jobCommand() *cli.Command {
	createFlags := []cli.Flag{
		&cli.StringFlag{Name: "from", Usage: "source server, e.g. imaps://imap.old.example:993 (users come from the CSV); may be left out with --provider"},
		&cli.StringFlag{Name: "to", Required: true, Usage: "target server, e.g. imaps://imap.new.example:993"},
		&cli.StringFlag{Name: "accounts", Usage: "CSV or .xlsx: old address, new address, old password[, new password[, old server]], or columns headed 旧邮箱, 新邮箱, 密码, 新密码, 旧服务器 (not needed with --domain)"},
		&cli.StringFlag{Name: "domain", Usage: "delegated Microsoft Graph source: take the accounts from the directory's users of this domain"},
		&cli.StringFlag{Name: "new-domain", Usage: "with --domain: the new address is the same name at this domain"},
		&cli.StringFlag{Name: "to-admin", Usage: "log in to the target as this admin (master user) for accounts without a new password"},
		&cli.StringFlag{Name: "mode", Value: "passwords", Usage: "passwords (the CSV gives old passwords), delegated (a migration admin opens every mailbox: 无感搬家) or member (each member types the old password in banjia serve's portal)"},
		&cli.StringFlag{Name: "keep-credentials", Value: migrate.FormatKeep(state.DefaultKeepCredentials), Usage: "keep the passwords sealed for the syncs after the MX switch (banjia job sync) this long at most, e.g. 14d or 36h (at most 90d); banjia job close wipes them sooner"},
		&cli.IntFlag{Name: "enroll-days", Value: 30, Usage: "accounts can be added (or, in member mode, members can enroll) for this many days after the job is created; 0: only the accounts given"},
		&cli.StringFlag{Name: "from-admin", Usage: "delegated: the migration admin's login on the old server (for xoauth2: not needed)"},
		&cli.StringFlag{Name: "admin-login", Value: mail.DelegateAuthzID, Usage: "delegated: authzid (SASL PLAIN as the member: Exchange 2010-2019, Dovecot), template (LOGIN with --login-template) or xoauth2 (Exchange Online app-only token)"},
		&cli.StringFlag{Name: "login-template", Usage: "delegated, template: the login name, e.g. 'DOMAIN\\admin\\{alias}' or '{user}*{admin}' ({user}, {alias}, {domain}, {admin})"},
		&cli.StringFlag{Name: "tenant", Usage: "delegated, xoauth2: the Entra ID tenant id"},
		&cli.StringFlag{Name: "client-id", Usage: "delegated, xoauth2: the application (client) id; its secret is the admin password"},
		&cli.StringFlag{Name: "authority", Usage: "delegated, xoauth2: authority host other than https://login.microsoftonline.com/ (national clouds)"},
	}
	createFlags = append(createFlags, optionFlags()...)
	createFlags = append(createFlags, importFlags()...)
	createFlags = append(createFlags, passFlags("to-admin", "target admin's", "BANJIA_TO_ADMIN_PASSWORD")...)
	createFlags = append(createFlags, passFlags("from-admin", "migration admin's (or client secret)", "BANJIA_FROM_ADMIN_PASSWORD")...)
	createFlags = append(createFlags, endpointFlags()...)
	createFlags = append(createFlags, shardCreateFlags()...)
	return &cli.Command{
		Name:  "job",
		Usage: "domain-wide migration jobs: create, start, pause, resume, end, status, accounts, add, invite, notices, account, show, delete, sync, close, export-shards, logs",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a job from an accounts CSV", ArgsUsage: "JOB",
				Flags:  createFlags,
				Action: createJob,
			},
			inviteCommand(),
			noticesCommand(),
			{
				Name: "add", Usage: "add accounts to a job, or give existing ones new passwords", ArgsUsage: "JOB",
				Flags: append([]cli.Flag{&cli.StringFlag{Name: "accounts", Required: true, Usage: "accounts file as for create"}}, importFlags()...),
				Action: func(c *cli.Context) error {
					id := c.Args().First()
					if id == "" {
						return errors.New("which job? banjia job add JOB --accounts FILE")
					}
					rows, err := readCSV(c)
					if err != nil {
						return err
					}
					// A running job (or banjia serve) holds the state file: it adds them.
					rep, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "add", Job: id, Accounts: rows})
					n := 0
					switch {
					case err == nil:
						n = rep.Added
					case errors.Is(err, migrate.ErrNoRunner):
						store, err := state.OpenExisting(c.String("state"))
						if err != nil {
							return err
						}
						defer store.Close()
						if n, err = migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).AddAccounts(id, rows, migrate.CommandLine); err != nil {
							return err
						}
					default:
						return err
					}
					fmt.Printf("%d accounts added or updated in job %s\n", n, id)
					return nil
				},
			},
			{
				Name: "start", Usage: "run a job in the foreground until it finishes (Ctrl-C saves and stops)", ArgsUsage: "JOB",
				Description: exitCodesHelp,
				Flags:       append(append(append(runnerFlags(), startNotifyFlags()...), shardStartFlags()...), &cli.BoolFlag{Name: "rerun", Usage: "copy new mail for accounts that already succeeded, as banjia job sync does"}),
				Action: func(c *cli.Context) error {
					id := c.Args().First()
					store, err := state.OpenExisting(c.String("state"))
					if err != nil {
						return err
					}
					defer store.Close()
					cfg, err := runnerConfig(c)
					if err != nil {
						return err
					}
					cfg.Rerun = c.Bool("rerun")
					only, stop, err := prepareStart(c, store, id, &cfg)
					if err != nil {
						return err
					}
					defer stop()
					return outcome(store, id, runJobNotified(c, store, id, cfg), only)
				},
			},
			controlCommand("pause", "pause a job at the next message boundary"),
			controlCommand("resume", "resume a paused job"),
			controlCommand("end", "end a job: running accounts stop, the rest are abandoned"),
			{
				Name: "status", Usage: "the job table (all jobs, or one)", ArgsUsage: "[JOB]",
				Flags:  append(viewFlags(), &cli.BoolFlag{Name: "json"}),
				Action: func(c *cli.Context) error { return status(c, false) },
			},
			{
				Name: "accounts", Usage: "per-account progress of a job", ArgsUsage: "JOB",
				Flags:  append(viewFlags(), &cli.BoolFlag{Name: "json"}),
				Action: func(c *cli.Context) error { return status(c, true) },
			},
			syncCommand(),
			closeCommand(),
			reportCommand(),
			retryCommand(),
			verifyCommand(),
			accountCommand(),
			showCommand(),
			deleteCommand(),
			exportShardsCommand(),
			jobLogsCommand(),
		},
	}
}

// Exit codes of migrate, job start, job sync and job retry: a script can tell a move that left
// mail behind from one that did not (README, "Exit codes").
const (
	exitFailed     = 2 // an account failed (搬家失败)
	exitPartial    = 3 // every account finished, some messages or folders were not copied (部分失败)
	exitUnfinished = 4 // stopped before every account finished: interrupted, or ended with accounts abandoned
	exitCodesHelp  = "exit codes: 0 every selected message is on the target; 1 banjia could not run (bad input, state file); 2 an account failed; 3 finished with messages or folders not copied (banjia job report); 4 stopped before every account finished"
)

// outcome turns a finished run into the exit code a script reads: 0 only
// when every selected message of every account is on the target.
// only, when set, limits it to those accounts (a retry's).
func outcome(store *state.Store, jobID string, runErr error, only map[string]bool) error {
	if runErr != nil && !errors.Is(runErr, migrate.ErrInterrupted) {
		return runErr
	}
	accts, err := store.Accounts(jobID)
	if err != nil {
		return err
	}
	return outcomeOf(accts, jobID, runErr, only)
}

// outcomeOf is outcome over accounts read already (a running banjia's
// status): the exit says what the target holds.
func outcomeOf(accts []*state.Account, jobID string, runErr error, only map[string]bool) error {
	if runErr != nil && !errors.Is(runErr, migrate.ErrInterrupted) {
		return runErr
	}
	n := map[state.AccountState]int{}
	kept := accts[:0]
	for _, a := range accts {
		if only == nil || only[a.ID] {
			n[a.State]++
			kept = append(kept, a)
		}
	}
	accts = kept
	switch {
	case n[state.AccountFailed] > 0:
		return cli.Exit(fmt.Sprintf("banjia: %d of %d accounts failed (搬家失败); %d finished with messages not copied", n[state.AccountFailed], len(accts), n[state.AccountPartial]), exitFailed)
	case runErr != nil:
		return cli.Exit("banjia: "+runErr.Error(), exitUnfinished)
	case n[state.AccountPartial] > 0:
		return cli.Exit(fmt.Sprintf("banjia: %d of %d accounts finished with messages or folders not copied (部分失败): banjia job report %s lists them", n[state.AccountPartial], len(accts), jobID), exitPartial)
	case n[state.AccountAbandoned] > 0 || n[state.AccountSucceeded] < len(accts):
		return cli.Exit(fmt.Sprintf("banjia: %d of %d accounts finished; the rest were abandoned or not started", n[state.AccountSucceeded], len(accts)), exitUnfinished)
	}
	return nil
}

// maxAccountsFile bounds an accounts file read into memory: a million rows
// of a CSV are well under it.
const maxAccountsFile = 256 << 20

// readCSV reads the accounts file given by --accounts (CSV or .xlsx; see
// migrate.ImportAccounts), with --encoding and --skip-bad-rows where the
// command has them. Skipped rows are listed on stderr.
func readCSV(c *cli.Context) ([]migrate.AccountRow, error) {
	path := c.String("accounts")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAccountsFile+1))
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	if len(data) > maxAccountsFile {
		return nil, fmt.Errorf("accounts file %s: larger than %d MB; split it and add the rest with banjia job add", path, maxAccountsFile>>20)
	}
	rows, skipped, err := migrate.ImportAccounts(data, migrate.ImportOptions{Encoding: c.String("encoding"), SkipBadRows: c.Bool("skip-bad-rows")})
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		fmt.Fprintf(os.Stderr, "banjia: skipped %s\n", s)
	}
	return rows, nil
}

// importFlags go with every --accounts file.
func importFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "encoding", Usage: "the CSV's encoding: utf-8, gbk, gb18030 or utf-16 (default: detected)"},
		&cli.BoolFlag{Name: "skip-bad-rows", Usage: "import the good rows of a file with bad ones (default: nothing until the file is clean)"},
	}
}

func controlCommand(op, usage string) *cli.Command {
	return &cli.Command{
		Name: op, Usage: usage, ArgsUsage: "JOB",
		Flags: viewFlags(),
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return fmt.Errorf("which job? banjia job %s JOB", op)
			}
			paths, err := statePaths(c)
			if err != nil {
				return err
			}
			if len(paths) > 1 || c.String("shards") != "" {
				return controlShards(c, op, id, paths)
			}
			_, err = migrate.Control(paths[0], migrate.ControlRequest{Op: op, Job: id})
			if errors.Is(err, migrate.ErrNoRunner) {
				// Nothing holds the state file: its records change here, and a
				// resumed job waits for its next start.
				store, err := state.OpenExisting(paths[0])
				if err != nil {
					return err
				}
				defer store.Close()
				if err := migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).Control(id, op, migrate.CommandLine); err != nil {
					return err
				}
				if op == "resume" {
					fmt.Printf("job %s resumed; no banjia process is running it: banjia job start %s\n", id, id)
					return nil
				}
			} else if err != nil {
				return err
			}
			fmt.Printf("job %s: %s done\n", id, op)
			return nil
		},
	}
}

// statusesAt reads job statuses from the running job, or from the state file
// when nothing runs.
func statusesAt(path, id string) ([]*migrate.Status, error) {
	rep, err := migrate.Control(path, migrate.ControlRequest{Op: "status"})
	if err == nil && rep.Statuses != nil {
		// banjia serve runs every job of the file.
		var out []*migrate.Status
		for _, st := range rep.Statuses {
			if id == "" || st.Job.ID == id {
				out = append(out, st)
			}
		}
		if id != "" && len(out) == 0 {
			return nil, fmt.Errorf("job %q: %w", id, state.ErrNotFound)
		}
		return out, nil
	}
	if err == nil && rep.Status != nil && (id == "" || rep.Status.Job.ID == id) {
		if id != "" {
			return []*migrate.Status{rep.Status}, nil
		}
	} else if err != nil && !errors.Is(err, migrate.ErrNoRunner) {
		return nil, err
	}
	store, err := state.OpenExisting(path)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	m := migrate.NewIdleManager(store, migrate.Config{})
	if id == "" {
		return m.Statuses()
	}
	st, err := m.Status(id)
	if err != nil {
		return nil, err
	}
	return []*migrate.Status{st}, nil
}

func status(c *cli.Context, perAccount bool) error {
	id := c.Args().First()
	if perAccount && id == "" {
		return errors.New("which job? banjia job accounts JOB")
	}
	paths, err := statePaths(c)
	if err != nil {
		return err
	}
	if len(paths) > 1 || c.String("shards") != "" {
		return statusShards(c, paths, perAccount)
	}
	sts, err := statusesAt(paths[0], id)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sts)
	}
	lang := langOf(c.String("lang"))
	if perAccount {
		accountTable(os.Stdout, lang, sts[0])
		return nil
	}
	jobTable(os.Stdout, lang, sts)
	return nil
}

// createJob reads banjia job create's flags into a request; the
// application layer (migrate.Manager.Create) checks and stores the job.
func createJob(c *cli.Context) error {
	id := c.Args().First()
	if id == "" {
		return errors.New("give the job a name: banjia job create JOB --from ... --to ... --accounts FILE")
	}
	// Before any password is asked for: a name that cannot be used is
	// refused at once.
	if err := migrate.CheckJobName(id); err != nil {
		return err
	}
	if err := checkShardCreate(c); err != nil {
		return err
	}
	src, err := parseSource(c)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	dst, err := parseEndpoint(c, c.String("to"))
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	opts, err := options(c)
	if err != nil {
		return err
	}
	keep, err := migrate.ParseKeep(c.String("keep-credentials"))
	if err != nil {
		return fmt.Errorf("--keep-credentials: %w", err)
	}
	req := migrate.JobRequest{ID: id, Mode: c.String("mode"), Domain: c.String("domain"), NewDomain: c.String("new-domain"),
		Source: src, Target: dst, Options: opts, EnrollDays: c.Int("enroll-days"), KeepCredentials: keep, Directory: directory}
	if a := c.String("to-admin"); a != "" {
		req.TargetAdmin = a
		if req.TargetAdminPassword, err = password(c, "to-admin", "target admin's"); err != nil {
			return err
		}
	}
	if req.Delegation, req.SourceAdminPassword, err = delegated(c, src); err != nil {
		return err
	}
	if f := c.String("accounts"); f != "" {
		if req.Accounts, err = readCSV(c); err != nil {
			return err
		}
	}
	store, err := state.Open(c.String("state"))
	if err != nil {
		return err
	}
	defer store.Close()
	job, n, err := migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).Create(c.Context, req, migrate.CommandLine)
	if err != nil {
		return err
	}
	if c.Int("shards") > 0 {
		return exportAfterCreate(c, store, job.ID, n)
	}
	fmt.Printf("job %s created with %d accounts; start it with: banjia job start %s\n", job.ID, n, job.ID)
	return nil
}

// delegated reads the delegated-mode flags: how the migration admin logs in
// as each member, and the admin's password (or the app's client secret).
func delegated(c *cli.Context, src mail.Endpoint) (mail.DelegationRequest, string, error) {
	var dr mail.DelegationRequest
	if c.String("mode") != state.ModeDelegated {
		for _, f := range []string{"from-admin", "login-template", "tenant", "client-id"} {
			if c.IsSet(f) {
				return dr, "", fmt.Errorf("--%s is for --mode delegated", f)
			}
		}
		return dr, "", nil
	}
	dr = mail.DelegationRequest{Admin: c.String("from-admin"), Method: c.String("admin-login"),
		Template: c.String("login-template"), Tenant: c.String("tenant"), ClientID: c.String("client-id"), Authority: c.String("authority")}
	// The job is checked when it is created; this names the secret to ask
	// for, and refuses a request that cannot work before asking.
	d, err := mail.Delegate(&src, dr)
	if err != nil {
		if src.Scheme != "graph" && c.String("admin-login") != mail.DelegateXOAUTH2 && c.String("from-admin") == "" {
			return dr, "", errors.New("--mode delegated needs --from-admin (the migration admin's login)")
		}
		return dr, "", err
	}
	secret, err := password(c, "from-admin", d.SecretName(src))
	if err != nil {
		return dr, "", err
	}
	return dr, secret, nil
}

// directory lists the users of domain in a Microsoft Graph directory (src
// names the app and tenant; its Password is the client secret) as accounts
// that move to the same name at newDomain. The dashboard uses it too.
func directory(ctx context.Context, src mail.Endpoint, domain, newDomain string) ([]migrate.AccountRow, error) {
	newDomain = strings.TrimPrefix(newDomain, "@")
	if newDomain == "" {
		return nil, errors.New("--domain needs --new-domain: where each user's mail goes (alice@old -> alice@NEW-DOMAIN)")
	}
	users, err := graph.Users(ctx, src, domain)
	if err != nil {
		return nil, fmt.Errorf("list the users of %s: %s", domain, fault.Reason(err))
	}
	var rows []migrate.AccountRow
	for i, u := range users {
		if u.Mail == "" {
			continue
		}
		local, _, _ := strings.Cut(u.Mail, "@")
		rows = append(rows, migrate.AccountRow{Line: i + 1, Old: u.Mail, New: local + "@" + newDomain})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("the directory has no users with a mail address at %s", domain)
	}
	return rows, nil
}
