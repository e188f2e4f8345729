package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/migrate"
)

// inviteCommand is banjia job invite: the dashboard's "Invite the members
// by mail", and its re-invite of one member, from a shell. banjia serve
// sends the mails (it has the mail settings and the portal's address);
// the command asks it through the control socket.
func inviteCommand() *cli.Command {
	return &cli.Command{
		Name:  "invite",
		Usage: "mail the members of a member-triggered job who have not started, through the running banjia serve",
		Description: "Without addresses: every listed member not invited yet (--again: those invited before too).\n" +
			"With old addresses: those members, invited before or not (a lost or deleted mail).",
		ArgsUsage: "JOB [OLD-ADDRESS...]",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "again", Usage: "also invite members invited before who have not started"}},
		Action: func(c *cli.Context) error {
			// jobNameLast has moved the job's name behind the addresses.
			args := c.Args().Slice()
			if len(args) == 0 {
				return errors.New("which job? banjia job invite JOB [OLD-ADDRESS...]")
			}
			id := args[len(args)-1]
			inv := &migrate.Invitation{Accounts: args[:len(args)-1], Again: c.Bool("again")}
			if len(inv.Accounts) > 0 {
				// Named members are asked again: that is why they are named.
				inv.Again = true
			}
			rep, err := migrate.Control(c.String("state"), migrate.ControlRequest{Op: "invite", Job: id, Invite: inv})
			if errors.Is(err, migrate.ErrNoRunner) {
				return migrate.ErrNoInviter
			}
			if err != nil {
				return err
			}
			fmt.Printf("%d members of job %s invited by mail\n", rep.Invited, id)
			return nil
		},
	}
}
