package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// reportCommand lists every message a job did not copy, with why.
func reportCommand() *cli.Command {
	return &cli.Command{
		Name: "report", Usage: "every message a job did not copy: account, folder, UID, date, size, reason", ArgsUsage: "JOB",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "csv", Usage: "CSV for a spreadsheet"}, &cli.BoolFlag{Name: "json"}},
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return fmt.Errorf("which job? banjia job report JOB")
			}
			store, err := state.OpenExisting(c.String("state"))
			if err != nil {
				return err
			}
			defer store.Close()
			rows, err := migrate.Report(store, id)
			if err != nil {
				return err
			}
			lang := langOf(c.String("lang"))
			migrate.InLang(rows, lang)
			switch {
			case c.Bool("json"):
				if rows == nil {
					rows = []migrate.NotCopied{}
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			case c.Bool("csv"):
				w := csv.NewWriter(os.Stdout)
				w.Write([]string{"account", "folder", "uid", "date", "size", "reason"})
				for _, r := range rows {
					w.Write([]string{r.Account, r.Folder, uidText(r.UID), dateText(r.Date), sizeText(r.Size), r.Reason})
				}
				w.Flush()
				return w.Error()
			}
			failed := 0
			for _, r := range rows {
				if !r.LeftBehind {
					failed++
				}
			}
			if failed == 0 {
				fmt.Printf(word(lang, "report.none")+"\n", id)
				if len(rows) == 0 {
					return nil
				}
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, word(lang, "report.head"))
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Account, r.Folder, uidText(r.UID), dateText(r.Date), sizeText(r.Size), r.Reason)
			}
			tw.Flush()
			if left := len(rows) - failed; left > 0 {
				fmt.Printf("\n"+word(lang, "report.left")+"\n", left)
			}
			if failed > 0 {
				fmt.Printf("\n"+word(lang, "report.total")+"\n", failed, id)
			}
			return nil
		},
	}
}

func uidText(u uint32) string {
	if u == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(u), 10)
}

func dateText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func sizeText(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// retryCommand runs a job's failed and partly failed accounts again: their
// failed messages and refused folders are tried once more; what is already
// on the target is not copied again.
func retryCommand() *cli.Command {
	return &cli.Command{
		Name: "retry", Usage: "try again the accounts that failed or finished with failures (after fixing the cause)", ArgsUsage: "JOB",
		Description: exitCodesHelp,
		Flags:       append(runnerFlags(), &cli.StringSliceFlag{Name: "account", Usage: "only this account (old address; repeat for more)"}),
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return errors.New("which job? banjia job retry JOB")
			}
			cfg, err := runnerConfig(c)
			if err != nil {
				return err
			}
			store, err := state.OpenExisting(c.String("state"))
			if err != nil {
				return err
			}
			defer store.Close()
			var only map[string]bool
			err = foreground(c, store, id, cfg, func(m *migrate.Manager) error {
				ids, err := m.Retry(id, migrate.CommandLine, c.StringSlice("account"))
				if err != nil {
					return err
				}
				only = map[string]bool{}
				for _, a := range ids {
					only[a] = true
				}
				return m.Wait(id)
			})
			if errors.Is(err, migrate.ErrNothingToRetry) {
				fmt.Printf("job %s: %s\n", id, migrate.ErrNothingToRetry)
				return nil
			}
			if only == nil && err != nil {
				return err
			}
			return outcome(store, id, err, only)
		},
	}
}

// verifyCommand compares the source with the target, folder by folder.
func verifyCommand() *cli.Command {
	return &cli.Command{
		Name: "verify", Usage: "compare source and target folder by folder (counts; --deep: every message's bytes)", ArgsUsage: "JOB",
		Description: "exit codes: 0 every folder holds its source's messages once; 3 something is missing or copied twice; 1 the check could not run",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "account", Usage: "only this account (old address; repeat for more)"},
			&cli.BoolFlag{Name: "deep", Usage: "compare every message by a digest of its bytes (reads every message on both sides)"},
			&cli.BoolFlag{Name: "json"},
		}, runnerFlags()...),
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
			checks, err := migrate.NewIdleManager(store, cfg).Verify(c.Context, id, c.StringSlice("account"), c.Bool("deep"))
			if err != nil {
				return err
			}
			bad := 0
			for _, ch := range checks {
				if !ch.OK() {
					bad++
				}
			}
			if c.Bool("json") {
				if checks == nil {
					checks = []migrate.FolderCheck{}
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(checks); err != nil {
					return err
				}
			} else {
				for _, ch := range checks {
					mark := "ok  "
					if !ch.OK() {
						mark = "DIFF"
					}
					fmt.Printf("%s %s\n", mark, migrate.VerifyLine(ch))
				}
			}
			if bad > 0 {
				return cli.Exit(fmt.Sprintf("banjia: %d of %d folders differ from the source", bad, len(checks)), exitPartial)
			}
			if !c.Bool("json") {
				fmt.Printf("%d folders checked: the target holds every selected message once\n", len(checks))
			}
			return nil
		},
	}
}
