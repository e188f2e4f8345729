package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// syncCommand is the step after the MX switch (docs/cutover.md): copy what
// arrived in the old mailboxes since the last pass, in every account.
func syncCommand() *cli.Command {
	return &cli.Command{
		Name:        "sync",
		Usage:       "after the MX switch: copy only what arrived in the old mailboxes since the last pass, in every account (as often as wanted; no password asked again)",
		ArgsUsage:   "JOB",
		Description: exitCodesHelp,
		Flags:       append(runnerFlags(), &cli.BoolFlag{Name: "no-wait", Usage: "when a running banjia serve holds the job: hand it the sync and return at once instead of waiting for the sync's end and outcome"}),
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return errors.New("which job? banjia job sync JOB")
			}
			// banjia serve holds the state file: it syncs, and this waits
			// for the end to tell how it went (unless --no-wait).
			if c.Bool("no-wait") {
				_, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "sync", Job: id})
				if err == nil {
					fmt.Printf("job %s: the running banjia syncs it now; follow it with banjia job status %s or banjia logs -f --job %s\n", id, id, id)
					return nil
				}
				if !errors.Is(err, migrate.ErrNoRunner) {
					return err
				}
			} else {
				rep, err := migrate.ControlWait(c.Context, c.String("state"), migrate.ControlRequest{Op: "sync", Job: id, Wait: true})
				if err == nil {
					fmt.Printf("job %s: synced by the running banjia\n", id)
					var ran error
					if rep.RunError != "" {
						ran = errors.New(rep.RunError)
					}
					accts := make([]*state.Account, len(rep.Status.Accounts))
					for i := range rep.Status.Accounts {
						accts[i] = &rep.Status.Accounts[i]
					}
					return outcomeOf(accts, id, ran, nil)
				}
				if !errors.Is(err, migrate.ErrNoRunner) {
					return err
				}
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
			// Refused before anything runs (closed, ended, paused, no
			// credentials): the same checks as every door's, no tables.
			if err := migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).Sync(id, migrate.CommandLine); !errors.Is(err, migrate.ErrNoRunner) {
				return err
			}
			err = foreground(c, store, id, cfg, func(m *migrate.Manager) error {
				if err := m.Sync(id, migrate.CommandLine); err != nil {
					return err
				}
				return m.Wait(id)
			})
			return outcome(store, id, err, nil)
		},
	}
}

// closeCommand ends a job's cutover: every stored credential is wiped.
func closeCommand() *cli.Command {
	return &cli.Command{
		Name:      "close",
		Usage:     "end the cutover: wipe every stored credential (passwords, admin passwords) and freeze the job; it no longer starts or syncs",
		ArgsUsage: "JOB",
		Action: func(c *cli.Context) error {
			id := c.Args().First()
			if id == "" {
				return errors.New("which job? banjia job close JOB")
			}
			_, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "close", Job: id})
			if errors.Is(err, migrate.ErrNoRunner) {
				store, err := state.OpenExisting(c.String("state"))
				if err != nil {
					return err
				}
				if err := migrate.NewIdleManager(store, migrate.Config{Log: logger(c)}).Close(id, migrate.CommandLine); err != nil {
					store.Close()
					return err
				}
				if err := store.Close(); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			fmt.Printf("job %s closed: every stored credential is wiped; it no longer starts or syncs\n", id)
			return nil
		},
	}
}
