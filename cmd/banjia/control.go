package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// Per-account control (job account), a job's settings (job show) and
// deleting a job (job delete). Each reaches the process that holds the
// state file through its control socket, or changes the file itself when
// none does, through the same migrate.Manager calls as the dashboard and
// the API.

var settingWords = state.Words{
	"en": {
		"s.job": "job", "s.mode": "mode", "s.state": "state", "s.domains": "domains", "s.source": "old server", "s.target": "new server",
		"s.source_admin": "migration admin", "s.target_admin": "target admin", "s.insecure": "TLS certificates not verified",
		"s.since": "mail since", "s.all": "all", "s.skip_junk_trash": "skip Junk and Trash", "s.skip_custom": "skip custom folders", "s.system_folders": "copy system folders (Outbox, Sync Issues)",
		"s.dedupe": "copy a message in several folders once", "s.max_size": "largest message", "s.no_limit": "no limit",
		"s.renames": "renamed folders", "s.excludes": "folders left out", "s.none": "none",
		"s.parallel": "parallel", "s.parallel.v": "%d accounts at once, %d connections each, at most %d per source host (this process)",
		"s.created": "created", "s.enroll": "takes accounts until", "s.accounts": "accounts", "yes": "yes", "no": "no",
		"s.window": "copies only", "s.local": "this machine's time", "s.rate": "reads at most", "s.rate.v": "%s for the job, %s per old server",
		"mode.passwords": "passwords", "mode.delegated": "delegated (无感搬家)", "mode.member": "member-triggered",
	},
	"zh": {
		"s.job": "搬家任务", "s.mode": "搬家方式", "s.state": "任务状态", "s.domains": "域名", "s.source": "原邮箱服务器", "s.target": "新邮箱服务器",
		"s.source_admin": "迁移管理员", "s.target_admin": "新服务器管理员", "s.insecure": "不验证TLS证书",
		"s.since": "搬家范围", "s.all": "全部", "s.skip_junk_trash": "不搬垃圾箱和已删除", "s.skip_custom": "不搬自定义文件夹", "s.system_folders": "搬系统文件夹(发件箱、同步问题)",
		"s.dedupe": "多个文件夹中的同一封邮件只搬一次", "s.max_size": "最大邮件", "s.no_limit": "不限",
		"s.renames": "文件夹改名", "s.excludes": "不搬的文件夹", "s.none": "无",
		"s.parallel": "并行", "s.parallel.v": "同时%d个帐号, 每个帐号%d个连接, 每个原服务器最多%d个连接 (本进程)",
		"s.created": "创建时间", "s.enroll": "接受新帐号至", "s.accounts": "帐号数", "yes": "是", "no": "否",
		"s.window": "搬家时段", "s.local": "本机时间", "s.rate": "读取速度上限", "s.rate.v": "整个任务 %s, 每个原服务器 %s",
		"mode.passwords": "管理员提供密码", "mode.delegated": "无感搬家", "mode.member": "成员输入旧密码",
	},
}

func sw(lang, key string) string { return settingWords.Get(lang, key) }

// accountCommand is banjia job account JOB OP [ADDRESS...] [--state STATE].
// Its flags may stand anywhere (an admin adds --state after the
// operation), so it reads its own arguments.
func accountCommand() *cli.Command {
	return &cli.Command{
		Name:      "account",
		Usage:     "pause, resume, abandon (放弃), retry or move to the front one account, or every account in a state",
		ArgsUsage: "JOB pause|resume|abandon|retry|first [ADDRESS...] [--state STATE] [--json]",
		Description: "ADDRESS is an account's old address; --state STATE (e.g. failed, partial, in_progress, paused, not_started) takes every account in that state instead.\n" +
			"pause stops an account at its next message boundary and keeps it until resume; abandon gives it up (a job-wide retry leaves it out; retry it by name);\n" +
			"first moves a waiting account to the front of the queue. A running job (banjia job start, banjia serve) is reached through its control socket.",
		SkipFlagParsing: true,
		Action:          accountAction,
	}
}

// accountArgs reads job account's arguments.
func accountArgs(args []string) (job string, req migrate.AccountRequest, asJSON, help bool, err error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help":
			return "", req, false, true, nil
		case a == "--json":
			asJSON = true
		case a == "--state" || a == "-state":
			if i+1 >= len(args) {
				return "", req, false, false, errors.New("--state needs a state, e.g. --state failed")
			}
			i++
			req.State = args[i]
		case strings.HasPrefix(a, "--state="):
			req.State = strings.TrimPrefix(a, "--state=")
		case strings.HasPrefix(a, "-"):
			return "", req, false, false, fmt.Errorf("unknown flag %s (banjia job account takes --state and --json)", a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) < 2 {
		return "", req, false, false, fmt.Errorf("give the job and the operation: banjia job account JOB %s [ADDRESS...] [--state STATE]", strings.Join(migrate.AccountOps, "|"))
	}
	job, req.Op, req.Accounts = pos[0], pos[1], pos[2:]
	return job, req, asJSON, false, nil
}

func accountAction(c *cli.Context) error {
	id, req, asJSON, help, err := accountArgs(c.Args().Slice())
	if help {
		return cli.ShowSubcommandHelp(c)
	}
	if err != nil {
		return err
	}
	rep, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "account", Job: id, Account: &req})
	var changed []string
	running := true
	switch {
	case err == nil:
		changed = rep.Changed
	case errors.Is(err, migrate.ErrNoRunner) && req.Op == migrate.AccountRetry:
		// A retry runs accounts: here, that is banjia job retry's work.
		return fmt.Errorf("no banjia process is running job %s: banjia job retry %s runs its failed accounts now (--account ADDRESS, repeated, for others)", id, id)
	case errors.Is(err, migrate.ErrNoRunner):
		running = false
		store, err := state.OpenExisting(c.String("state"))
		if err != nil {
			return err
		}
		defer store.Close()
		if changed, err = migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).AccountControl(id, req, migrate.CommandLine); err != nil {
			return err
		}
	default:
		return err
	}
	if asJSON {
		if changed == nil {
			changed = []string{}
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"job": id, "op": req.Op, "accounts": changed})
	}
	fmt.Printf("job %s: %s: %d %s", id, req.Op, len(changed), map[bool]string{true: "account", false: "accounts"}[len(changed) == 1])
	if len(changed) > 0 {
		fmt.Printf(" (%s)", strings.Join(changed, ", "))
	}
	fmt.Println()
	if !running && req.Op == migrate.AccountResume {
		fmt.Printf("no banjia process is running job %s: banjia job start %s continues it\n", id, id)
	}
	return nil
}

func showCommand() *cli.Command {
	return &cli.Command{
		Name: "show", Usage: "the job's settings (查看设置): mode, servers, folder choices, limits, dates; never a password", ArgsUsage: "JOB",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json"}},
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return errors.New("which job? banjia job show JOB")
			}
			rep, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "settings", Job: id})
			var s *migrate.Settings
			switch {
			case err == nil:
				s = rep.Settings
			case errors.Is(err, migrate.ErrNoRunner):
				store, err := state.OpenExisting(c.String("state"))
				if err != nil {
					return err
				}
				defer store.Close()
				cfg, _ := runnerDefaults()
				if s, err = migrate.NewIdleManager(store, cfg).Settings(id); err != nil {
					return err
				}
			default:
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			printSettings(os.Stdout, langOf(c.String("lang")), s)
			return nil
		},
	}
}

// runnerDefaults are the limits banjia job start uses without flags: what
// a job shown while no process runs it would get.
func runnerDefaults() (migrate.Config, error) {
	cfg := migrate.Config{}
	for _, f := range runnerFlags() {
		if f, ok := f.(*cli.IntFlag); ok {
			switch f.Name {
			case "parallel":
				cfg.Accounts = f.Value
			case "conns":
				cfg.Lanes = f.Value
			case "per-host":
				cfg.PerHost = f.Value
			}
		}
	}
	return cfg, nil
}

func printSettings(w io.Writer, lang string, s *migrate.Settings) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", sw(lang, k), v) }
	yes := func(b bool) string {
		if b {
			return sw(lang, "yes")
		}
		return sw(lang, "no")
	}
	line("s.job", s.ID)
	line("s.mode", sw(lang, "mode."+s.Mode))
	line("s.state", word(lang, s.State))
	if s.Domain != "" {
		line("s.domains", "@"+s.Domain+" -> @"+s.NewDomain)
	}
	src := s.Source
	if s.SourceInsecure {
		src += " (" + sw(lang, "s.insecure") + ")"
	}
	line("s.source", src)
	if s.SourceAdmin != "" {
		line("s.source_admin", s.SourceAdmin+" ("+s.AdminLogin+")")
	}
	dst := s.Target
	if s.TargetInsecure {
		dst += " (" + sw(lang, "s.insecure") + ")"
	}
	line("s.target", dst)
	if s.TargetAdmin != "" {
		line("s.target_admin", s.TargetAdmin)
	}
	since := sw(lang, "s.all")
	if s.Since != nil {
		since = s.Since.Format("2006-01-02")
	}
	line("s.since", since)
	line("s.skip_junk_trash", yes(s.SkipJunkTrash))
	line("s.skip_custom", yes(s.SkipCustomFolders))
	line("s.system_folders", yes(s.KeepSystemFolders))
	line("s.dedupe", yes(s.DedupeAcrossFolders))
	size := sw(lang, "s.no_limit")
	if s.MaxMessageSize > 0 {
		size = fmt.Sprintf("%d MB", s.MaxMessageSize>>20)
	}
	line("s.max_size", size)
	renames := s.RenameList()
	if len(renames) == 0 {
		renames = []string{sw(lang, "s.none")}
	}
	for i, r := range renames {
		k := "s.renames"
		if i > 0 {
			k = ""
		}
		fmt.Fprintf(tw, "%s\t%s\n", sw(lang, k), strings.Replace(r, "=", " -> ", 1))
	}
	excludes := strings.Join(s.Excludes, ", ")
	if excludes == "" {
		excludes = sw(lang, "s.none")
	}
	line("s.excludes", excludes)
	if s.Window != "" {
		tz := s.TimeZone
		if tz == "" {
			tz = sw(lang, "s.local")
		}
		line("s.window", s.Window+" ("+tz+")")
	}
	if s.MaxRate > 0 || s.MaxRatePerHost > 0 {
		line("s.rate", fmt.Sprintf(sw(lang, "s.rate.v"), rateText(lang, s.MaxRate), rateText(lang, s.MaxRatePerHost)))
	}
	line("s.parallel", fmt.Sprintf(sw(lang, "s.parallel.v"), s.Parallel, s.Lanes, s.PerHost))
	line("s.accounts", fmt.Sprint(s.Accounts))
	line("s.created", s.Created.Local().Format("2006-01-02 15:04 MST"))
	if s.EnrollUntil != nil {
		line("s.enroll", s.EnrollUntil.Local().Format("2006-01-02 15:04 MST"))
	}
	tw.Flush()
}

func rateText(lang string, bps int64) string {
	if bps <= 0 {
		return sw(lang, "s.no_limit")
	}
	return fmt.Sprintf("%.1f MB/s", float64(bps)/(1<<20))
}

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name: "delete", Usage: "delete a job that is not running: its accounts, progress, events and stored passwords", ArgsUsage: "JOB",
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return errors.New("which job? banjia job delete JOB")
			}
			_, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "delete", Job: id})
			if errors.Is(err, migrate.ErrNoRunner) {
				store, err := state.OpenExisting(c.String("state"))
				if err != nil {
					return err
				}
				defer store.Close()
				if err := migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).Delete(id, migrate.CommandLine); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			fmt.Printf("job %s deleted, with its accounts, progress, events and stored passwords\n", id)
			return nil
		},
	}
}

// folderFlags are the folder choices of job create and migrate. A folder
// name may hold a comma, so a value is never split (unlike a
// StringSliceFlag's).
func folderFlags() []cli.Flag {
	return []cli.Flag{
		&cli.GenericFlag{Name: "rename", Value: &repeated{}, Usage: "put a source folder under another name on the target: 'OLD=NEW' ('/' between levels: 'Archive/2019=Old/2019'); repeat for more"},
		&cli.GenericFlag{Name: "exclude", Value: &repeated{}, Usage: "leave behind the source folders matching this pattern ('*' any characters, '?' one; 'Archive*' takes its subfolders too); repeat for more"},
	}
}

// repeated is a flag given any number of times, each value whole.
type repeated []string

func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }
func (r *repeated) String() string     { return strings.Join(*r, ", ") }

func repeatedOf(c *cli.Context, name string) []string {
	if r, ok := c.Generic(name).(*repeated); ok && r != nil {
		return *r
	}
	return nil
}

// folderOptions reads --rename and --exclude into o.
func folderOptions(c *cli.Context, o *state.Options) error {
	renames, err := migrate.ParseRenames(repeatedOf(c, "rename"))
	if err != nil {
		return fmt.Errorf("--rename: %w", err)
	}
	o.Renames, o.Excludes = renames, repeatedOf(c, "exclude")
	return migrate.CheckFolderChoices(*o)
}
