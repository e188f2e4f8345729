package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/check"
	"github.com/banjia-mail/banjia/sources/presets"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

func providersCommand() *cli.Command {
	return &cli.Command{
		Name:  "providers",
		Usage: "the provider presets for --provider (servers, ports, authorization codes)",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json"}},
		Action: func(c *cli.Context) error {
			if c.Bool("json") {
				type sourced struct {
					presets.Provider
					Source string
				}
				var ps []sourced
				for _, n := range presets.ProviderNames() {
					ps = append(ps, sourced{presets.Providers[n], presets.Sourced[n]})
				}
				return json.NewEncoder(os.Stdout).Encode(ps)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROVIDER\tIMAP\tPOP3\tEWS\tSMTP\tAUTH CODE")
			addr := func(s presets.Server) string {
				if s.Port == 0 {
					return "-"
				}
				if s.Host == "" {
					return fmt.Sprintf("(your host):%d %s", s.Port, s.TLS)
				}
				return fmt.Sprintf("%s:%d %s", s.Host, s.Port, s.TLS)
			}
			for _, n := range presets.ProviderNames() {
				p := presets.Providers[n]
				code := "-"
				if p.AuthCode {
					code = "yes (授权码)"
				}
				smtp := addr(p.SMTP)
				if p.SMTPOrg.Host != "" {
					smtp += ", organisations " + addr(p.SMTPOrg)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, p.Title, addr(p.IMAP), addr(p.POP3), ewsColumn(p), smtp, code)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return providerSources(os.Stdout)
		},
	}
}

func checkCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "from", Usage: "source: a URL with the user, or with --provider just the user; with --accounts the server only"},
		&cli.StringFlag{Name: "to", Usage: "target: a URL (with the user unless --accounts is given)"},
		&cli.StringFlag{Name: "accounts", Usage: "check every row of this accounts file (CSV or .xlsx), concurrently"},
		&cli.BoolFlag{Name: "json", Usage: "machine-readable reports"},
	}
	flags = append(flags, passFlags("from", "old mailbox's", "BANJIA_FROM_PASSWORD")...)
	flags = append(flags, passFlags("to", "new mailbox's", "BANJIA_TO_PASSWORD")...)
	flags = append(flags, importFlags()...)
	flags = append(flags, endpointFlags()...)
	// The folder choices a job would be created with: the folder map
	// shows them.
	flags = append(flags, folderFlags()...)
	flags = append(flags, checkAppFlags()...)
	return &cli.Command{
		Name:  "check",
		Usage: "check that the old and new servers can be reached and logged in to, step by step",
		Flags: flags,
		Action: func(c *cli.Context) error {
			lang := langOf(c.String("lang"))
			if c.String("from") == "" && c.String("provider") == "" && c.String("to") == "" {
				return fmt.Errorf("give --from (and/or --to) to check")
			}
			type job struct {
				role, account string
				e             mail.Endpoint
			}
			var jobs []job
			var src, dst mail.Endpoint
			var err error
			if c.String("from") != "" || c.String("provider") != "" {
				if src, err = parseSource(c); err != nil {
					return fmt.Errorf("--from: %w", err)
				}
			}
			if c.String("to") != "" {
				if dst, err = parseEndpoint(c, c.String("to")); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
			}
			if f := c.String("accounts"); f != "" {
				if c.IsSet("admin-login") {
					return fmt.Errorf("--admin-login xoauth2 checks one member (--member); not with --accounts")
				}
				rows, err := readCSV(c)
				if err != nil {
					return err
				}
				for _, row := range rows {
					if src.Host != "" {
						e := migrate.OnServer(src, row.Server)
						e.User, e.Password = row.Old, row.OldPassword
						jobs = append(jobs, job{"source", row.Old, e})
					}
					if dst.Host != "" && row.NewPassword != "" {
						e := dst
						e.User, e.Password = row.New, row.NewPassword
						jobs = append(jobs, job{"target", row.Old, e})
					}
				}
			} else {
				app, isApp, err := appSource(c, src)
				if err != nil {
					return err
				}
				switch {
				case isApp:
					// The folder map needs a job's own delegation.
					src = mail.Endpoint{}
					jobs = append(jobs, job{"source", app.AuthzID, app})
				case src.Host != "":
					if src.Password, err = password(c, "from", "old mailbox's"); err != nil {
						return err
					}
					jobs = append(jobs, job{"source", src.User, src})
				}
				if dst.Host != "" {
					if dst.Password, err = password(c, "to", "new mailbox's"); err != nil {
						return err
					}
					jobs = append(jobs, job{"target", dst.User, dst})
				}
			}
			type result struct {
				Role, Account string
				*check.Report
			}
			results := make([]result, len(jobs))
			sem := make(chan struct{}, 8)
			var wg sync.WaitGroup
			for i, j := range jobs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					results[i] = result{Role: j.role, Account: j.account, Report: check.Check(c.Context, j.e)}
				}()
			}
			wg.Wait()
			failed := 0
			for _, r := range results {
				if !r.OK {
					failed++
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return err
				}
			} else {
				sort.SliceStable(results, func(i, k int) bool { return results[i].Account < results[k].Account })
				for _, r := range results {
					printReport(os.Stdout, lang, r.Role, r.Account, r.Report)
				}
				fmt.Println(wording.Text(lang, "check.summary", len(results), len(results)-failed, failed))
				if failed == 0 && c.String("accounts") == "" && src.Host != "" && dst.Host != "" {
					if err := printFolderMap(c, src, dst); err != nil {
						return err
					}
				}
			}
			if failed > 0 {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

func printReport(w io.Writer, lang, role, account string, r *check.Report) {
	mark := wording.Text(lang, "check.passed")
	if !r.OK {
		mark = wording.Text(lang, "check.failed")
	}
	fmt.Fprintf(w, "%s %s (%s): %s\n", wording.Text(lang, "check.role."+role), account, r.Endpoint, mark)
	// Step names differ in length, more so across languages.
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, s := range r.Steps {
		sign := wording.Text(lang, "check.ok")
		if !s.OK {
			sign = wording.Text(lang, "check.fail")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", sign, s.NameIn(lang), s.DetailIn(lang))
		if hint := s.HintIn(lang); !s.OK && hint != "" {
			fmt.Fprintf(tw, "  \t\t%s: %s\n", wording.Text(lang, "check.hint"), hint)
		}
	}
	tw.Flush()
}

// printFolderMap shows where each folder of one mailbox will go, before
// anything is copied: names under the target's namespace, special folders,
// what exists already.
func printFolderMap(c *cli.Context, src, dst mail.Endpoint) error {
	var opts state.Options
	if err := folderOptions(c, &opts); err != nil {
		return err
	}
	s, err := sources.Open(c.Context, src)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := openSink(c.Context, dst)
	if err != nil {
		return err
	}
	defer d.Close()
	plan, err := migrate.PlanFolders(c.Context, s, d, opts)
	if err != nil {
		return err
	}
	fmt.Println("\nfolder map (source -> target):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, p := range plan {
		note := "new"
		if p.Exists {
			note = "exists"
		}
		if p.Skipped {
			fmt.Fprintf(tw, "  %q\t   (left behind)\t%d messages\n", p.Source, p.Messages)
			continue
		}
		fmt.Fprintf(tw, "  %q\t-> %q\t%d messages, %s\n", p.Source, p.Target, p.Messages, note)
	}
	return tw.Flush()
}
