package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/state"
)

func notifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "smtp", EnvVars: []string{"BANJIA_SMTP"}, Usage: "tell members and admins by mail: smtps://USER@HOST:465 (implicit TLS) or smtp://USER@HOST:587 (STARTTLS); the password from BANJIA_SMTP_PASSWORD or --smtp-password-file"},
		&cli.StringFlag{Name: "smtp-password-file", Usage: "read the SMTP password from this file"},
		&cli.StringFlag{Name: "smtp-from", Usage: "sender address (default: the SMTP login; most providers refuse any other: relay not allowed)"},
		&cli.StringSliceFlag{Name: "notify-admin", Usage: "admin addresses sent one digest per job (counts and the failed accounts) at its end, and daily while it runs with banjia job notices --daily"},
		&cli.BoolFlag{Name: "smtp-insecure", Usage: "do not verify the SMTP server's certificate"},
		&cli.BoolFlag{Name: "smtp-plain", Usage: "allow smtp:// without TLS (a relay on the same machine)"},
		&cli.StringFlag{Name: "sms-command", Usage: "send reminder texts (提醒短信) by running this command as COMMAND PHONE-OR-ADDRESS TEXT"},
		&cli.StringFlag{Name: "sms-webhook", Usage: "send reminder texts (提醒短信) by POSTing {\"to\", \"text\", \"job\", \"account\"} as JSON to this URL"},
	}
}

// smtpConfig reads --smtp's URL: the scheme says implicit TLS (smtps) or
// STARTTLS (smtp), never plain unless --smtp-plain.
func smtpConfig(raw, password string, plain bool) (notify.Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		// Not echoed: a mistyped URL may hold a password.
		return notify.Config{}, fmt.Errorf("--smtp: not a server address: want smtps://USER@HOST:465 or smtp://USER@HOST:587")
	}
	if u.User != nil {
		if _, set := u.User.Password(); set {
			return notify.Config{}, fmt.Errorf("--smtp: put the password in BANJIA_SMTP_PASSWORD or --smtp-password-file, not in the URL")
		}
	}
	cfg := notify.Config{Host: u.Hostname(), Password: password}
	if u.User != nil {
		cfg.User = u.User.Username()
	}
	switch u.Scheme {
	case "smtps":
		cfg.Security, cfg.Port = "tls", 465
	case "smtp":
		cfg.Security, cfg.Port = "starttls", 587
		if plain {
			cfg.Security = "none"
		}
	default:
		return notify.Config{}, fmt.Errorf("--smtp: the scheme is smtps (465) or smtp (587 with STARTTLS), not %q", u.Scheme)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return notify.Config{}, fmt.Errorf("--smtp: bad port %q", p)
		}
		cfg.Port = n
	}
	return cfg, nil
}

// openNotifier sets up notifications when --smtp is given, and checks the
// login once so a wrong password shows at startup, not hours later. Mail
// waits in store's outbox until the server takes it.
func openNotifier(c *cli.Context, log *slog.Logger, store *state.Store, onError func(error)) (*notify.Notifier, error) {
	if c.String("smtp") == "" {
		return nil, nil
	}
	pw, err := secretFrom(c.String("smtp-password-file"), "BANJIA_SMTP_PASSWORD")
	if err != nil {
		return nil, err
	}
	cfg, err := smtpConfig(c.String("smtp"), pw, c.Bool("smtp-plain"))
	if err != nil {
		return nil, err
	}
	cfg.From, cfg.Admins, cfg.Insecure = c.String("smtp-from"), c.StringSlice("notify-admin"), c.Bool("smtp-insecure")
	cfg.Outbox = store
	n, err := notify.New(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("--smtp: %w", err)
	}
	n.OnError(onError)
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()
	if err := n.Check(ctx); err != nil {
		// The migration goes on without mail; the admin sees why.
		log.Error("notifications will fail", "err", err)
		fmt.Fprintf(c.App.ErrWriter, "banjia: WARNING: notification mail will fail (it waits in the outbox: banjia outbox): %v\n", err)
	}
	return n, nil
}
