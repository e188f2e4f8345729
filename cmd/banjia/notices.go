package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/state"
)

// notices is the mail side of a run (banjia serve, banjia job start): the
// notifier with its outbox (nil without --smtp), the SMS hook (nil
// without --sms-command or --sms-webhook) and the clock's notices.
type notices struct {
	n   *notify.Notifier
	sms *notify.SMSHook
	log *slog.Logger
}

func openNotices(c *cli.Context, log *slog.Logger, store *state.Store, onError func(error)) (*notices, error) {
	sms, err := notify.NewSMSHook(c.String("sms-command"), c.String("sms-webhook"))
	if err != nil {
		return nil, err
	}
	n, err := openNotifier(c, log, store, onError)
	if err != nil {
		return nil, err
	}
	return &notices{n: n, sms: sms, log: log}, nil
}

// schedule sends the reminders and daily digests while ctx lasts. portal
// is the portal's address for the reminders' links ("": no reminders).
func (ns *notices) schedule(ctx context.Context, m *migrate.Manager, portal, lang string) {
	if ns.n == nil && ns.sms == nil {
		return
	}
	s := &notify.Schedule{Store: m.Store(), Notifier: ns.n, SMS: ns.sms, Portal: portal, Lang: lang, Log: ns.log,
		Accounts: func(job string) ([]*state.Account, error) {
			st, err := m.Status(job)
			if err != nil {
				return nil, err
			}
			out := make([]*state.Account, len(st.Accounts))
			for i := range st.Accounts {
				out[i] = &st.Accounts[i]
			}
			return out, nil
		}}
	go s.Run(ctx, time.Minute)
}

// close sends what the outbox holds within timeout and says what is left.
func (ns *notices) close(timeout time.Duration) {
	if ns.n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := ns.n.Close(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "banjia: %v\n", err)
	}
}

// runJobNotified is banjia job start: the run, with its members and admins
// told by mail when --smtp is given.
func runJobNotified(c *cli.Context, store *state.Store, id string, cfg migrate.Config) error {
	ns, err := openNotices(c, logger(c), store, nil)
	if err != nil {
		return err
	}
	defer ns.close(c.Duration("smtp-wait"))
	lang := langOf(c.String("lang"))
	var mgr *migrate.Manager
	if ns.n != nil {
		prev := cfg.OnEvent
		cfg.OnEvent = func(e *state.Event) {
			if prev != nil {
				prev(e)
			}
			// Set before the run starts, so before any event.
			if mgr != nil {
				mgr.Notify(ns.n, e, lang)
			}
		}
	}
	return foreground(c, store, id, cfg, func(m *migrate.Manager) error {
		mgr = m
		ctx, cancel := context.WithCancel(c.Context)
		defer cancel()
		ns.schedule(ctx, m, "", lang)
		if cfg.Shard != nil {
			return m.RunShard(id)
		}
		return m.Run(id)
	})
}

// startNotifyFlags are banjia job start's mail flags: serve's, and how long
// to wait at the end for the mail to go out.
func startNotifyFlags() []cli.Flag {
	return append(notifyFlags(), &cli.DurationFlag{Name: "smtp-wait", Value: time.Minute,
		Usage: "at the end, wait this long for the mails to go out; what is left waits in the outbox (banjia outbox) for the next run"})
}

// outboxCommand is banjia outbox: the notification mails not sent yet.
func outboxCommand() *cli.Command {
	action := func(act string) cli.ActionFunc {
		return func(c *cli.Context) error {
			req := migrate.OutboxRequest{Action: act}
			if act != "list" {
				if arg := c.Args().First(); arg != "" && arg != "all" {
					seq, err := strconv.ParseUint(arg, 10, 64)
					if err != nil || seq == 0 {
						return fmt.Errorf("%q is not a mail number (banjia outbox lists them)", arg)
					}
					req.Seq = seq
				} else if act == "drop" {
					return errors.New("which mail? banjia outbox drop NUMBER")
				}
			}
			mails, err := outbox(c, req)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(mails)
			}
			if len(mails) == 0 {
				fmt.Println("the outbox is empty: every notification mail was sent")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NO\tJOB\tKIND\tTO\tSTATE\tTRIES\tNEXT TRY\tLAST ERROR\tSUBJECT")
			for _, m := range mails {
				st, next := "waiting", "now"
				switch {
				case m.Held:
					st, next = "held", "-"
				case m.Attempts > 0:
					st, next = "retrying", m.NextTry.Local().Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.Seq, m.Job, m.Kind, strings.Join(m.To, ", "), st, m.Attempts, next, oneLineText(m.LastErrorIn(langOf(c.String("lang")))), m.Subject)
			}
			return tw.Flush()
		}
	}
	jsonFlag := []cli.Flag{&cli.BoolFlag{Name: "json"}}
	return &cli.Command{
		Name:   "outbox",
		Usage:  "notification mails not sent yet (list, retry, drop): they stay until the SMTP server takes them",
		Flags:  jsonFlag,
		Action: action("list"),
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "the mails waiting, retrying or held", Flags: jsonFlag, Action: action("list")},
			{Name: "retry", Usage: "send a mail (or all) again now, held ones too", ArgsUsage: "[NUMBER|all]", Flags: jsonFlag, Action: action("retry")},
			{Name: "drop", Usage: "delete a mail unsent", ArgsUsage: "NUMBER", Flags: jsonFlag, Action: action("drop")},
		},
	}
}

func oneLineText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// outbox asks the running banjia (serve or job start), or reads the state
// file when none runs.
func outbox(c *cli.Context, req migrate.OutboxRequest) ([]*state.OutMail, error) {
	rep, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "outbox", Outbox: &req})
	if err == nil {
		return rep.Outbox, nil
	}
	if !errors.Is(err, migrate.ErrNoRunner) {
		return nil, err
	}
	store, err := state.OpenExisting(c.String("state"))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).Outbox(req, migrate.CommandLine)
}

// noticesCommand is banjia job notices: a job's reminders and daily digest.
func noticesCommand() *cli.Command {
	return &cli.Command{
		Name:      "notices",
		Usage:     "remind members who have not started before the enrollment window closes, and mail the admins a daily digest",
		ArgsUsage: "JOB",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "remind-days", Usage: "days before the window closes to remind (mail, and a text with --sms-command/--sms-webhook), e.g. 7,1; \"none\" for no reminders"},
			&cli.BoolFlag{Name: "daily", Usage: "mail the admins (--notify-admin) a progress digest once a day while the job runs"},
		},
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return errors.New("which job? banjia job notices JOB --remind-days 7,1 [--daily]")
			}
			ns := state.NoticeSettings{Daily: c.Bool("daily")}
			if v := strings.TrimSpace(c.String("remind-days")); v != "" && v != "none" {
				for _, f := range strings.Split(v, ",") {
					d, err := strconv.Atoi(strings.TrimSpace(f))
					if err != nil {
						return fmt.Errorf("--remind-days %q: want whole days, e.g. 7,1", v)
					}
					ns.RemindDays = append(ns.RemindDays, d)
				}
			}
			_, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "notices", Job: id, Notices: &ns})
			if errors.Is(err, migrate.ErrNoRunner) {
				store, oerr := state.OpenExisting(c.String("state"))
				if oerr != nil {
					return oerr
				}
				defer store.Close()
				err = migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).SetNotices(id, ns, migrate.CommandLine)
			}
			if err != nil {
				return err
			}
			fmt.Printf("job %s: reminders %v days before the window closes, daily digest %v\n", id, ns.RemindDays, ns.Daily)
			return nil
		},
	}
}
