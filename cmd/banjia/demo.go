package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/internal/demo"
	"github.com/banjia-mail/banjia/migrate"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a real migration between two in-process IMAP servers (no setup needed)",
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "accounts", Value: 3},
			&cli.IntFlag{Name: "messages", Value: 120, Usage: "messages per account"},
		}, runnerFlags()...),
		Action: func(c *cli.Context) error {
			cfg, err := runnerConfig(c)
			if err != nil {
				return err
			}
			env, err := demo.Start(c.Context, demo.Options{Accounts: c.Int("accounts"), Messages: c.Int("messages")})
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			defer env.Close()
			fmt.Printf("banjia demo: old server (source) on %s, new server (target) on %s, %d accounts\n",
				env.Source, env.Target, len(env.Users))
			if err := runJob(c, env.Store, env.JobID, cfg); err != nil {
				return err
			}
			rep, err := env.Verify(c.Context)
			if err != nil {
				return fmt.Errorf("demo: the target does not match the source: %w", err)
			}
			fmt.Printf("\nverified: %d messages in %d folders, %d bytes, identical on source and target (bytes, flags, dates)\n",
				rep.Messages, rep.Folders, rep.Bytes)
			u := env.Users[0]
			fmt.Fprintf(os.Stdout, `
Next, against real servers:
  one mailbox:  BANJIA_FROM_PASSWORD=... BANJIA_TO_PASSWORD=... \
                banjia migrate --from imaps://%s@imap.old.example:993 --to imaps://%s@imap.new.example:993
  a domain:     banjia job create acme --from imaps://imap.old.example:993 --to imaps://imap.new.example:993 --accounts accounts.csv
                banjia job start acme        (banjia job pause|resume|end|status acme from another shell)
                banjia logs -f
  members type their own old password, in a web portal with an admin dashboard:
                banjia job create acme --mode member --domain old.example --new-domain new.example \
                  --from imaps://imap.old.example:993 --to imaps://imap.new.example:993
                BANJIA_ADMIN_PASSWORD=... banjia serve --listen 127.0.0.1:8080   (portal /, dashboard /admin)
`, u.Old, u.New)
			return nil
		},
	}
}

var _ = migrate.ErrInterrupted
