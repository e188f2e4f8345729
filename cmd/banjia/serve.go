package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/web"
)

func serveCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "address of the portal, dashboard, API and /metrics"},
		&cli.StringFlag{Name: "admin-user", Value: "admin", EnvVars: []string{"BANJIA_ADMIN_USER"}, Usage: "the dashboard's admin user"},
		&cli.StringFlag{Name: "admin-password-file", Usage: "read the admin's password from this file (or set BANJIA_ADMIN_PASSWORD)"},
		&cli.StringFlag{Name: "admin-token-file", Usage: "read the API token from this file (or set BANJIA_ADMIN_TOKEN)"},
		&cli.StringFlag{Name: "admin-token-name", Value: "api", EnvVars: []string{"BANJIA_ADMIN_TOKEN_NAME"}, Usage: "the API token's name in the event log"},
		&cli.StringFlag{Name: "admins-file", Usage: "more dashboard admins, each under their own name in the event log: an htpasswd file with bcrypt hashes (htpasswd -nB NAME)"},
		&cli.StringFlag{Name: "viewers-file", Usage: "dashboard viewers, who see jobs, accounts and the event log but change nothing: an htpasswd file like --admins-file"},
		&cli.StringSliceFlag{Name: "trusted-proxy", Usage: "a reverse proxy in front of serve (address or CIDR, repeatable): for its requests the lockout counts the client in X-Forwarded-For"},
		&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS with this certificate (PEM)"},
		&cli.StringFlag{Name: "tls-key", Usage: "and this key"},
		&cli.BoolFlag{Name: "secure-cookies", Usage: "mark cookies Secure on plain HTTP too (behind a TLS proxy)"},
		&cli.StringFlag{Name: "shards", Usage: "show the shards of a job in this folder instead, merged, read-only (runs nothing): the dashboard's job list and job pages behind the same sign-in, and the JSON API's GET /api/jobs[/JOB] with the admin token; from their state files or the statuses they publish there"},
		&cli.StringFlag{Name: "public-url", Usage: "the portal's address as members reach it, for the links in invitation mails, e.g. https://move.example.com/ (without it, invitations link to --listen when that is a loopback address and are refused otherwise)"},
	}
	flags = append(flags, notifyFlags()...)
	flags = append(flags, runnerFlags()...)
	return &cli.Command{
		Name:  "serve",
		Usage: "run every job of the state file with the member portal, admin dashboard, JSON API and /metrics",
		Description: `Members sign in with their NEW mailbox's address and password (checked by an IMAP login to
the new server) and type their OLD password to start their move. The admin signs in at /admin.
While serving, banjia job pause/resume/end/status/add and banjia logs -f talk to this process.`,
		Flags:  flags,
		Action: serve,
	}
}

func serve(c *cli.Context) error {
	if dir := c.String("shards"); dir != "" {
		return serveShards(c, dir)
	}
	da, err := dashboardAccessOf(c)
	if err != nil {
		return err
	}
	adminPW, token, admins, viewers, proxies := da.adminPW, da.token, da.admins, da.viewers, da.proxies
	if adminPW == "" && token == "" && len(admins) == 0 {
		return errors.New("the dashboard needs an admin password (BANJIA_ADMIN_PASSWORD or --admin-password-file), admins (--admins-file) or an API token (BANJIA_ADMIN_TOKEN or --admin-token-file)")
	}
	store, err := state.Open(c.String("state"))
	if err != nil {
		return err
	}
	defer store.Close()
	log := logger(c)
	lang := langOf(c.String("lang"))

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	var srv *web.Server
	cfg, err := runnerConfig(c)
	if err != nil {
		return err
	}
	cfg.OnEvent = func(e *state.Event) {
		if srv != nil {
			srv.HandleEvent(e)
		}
	}
	m := migrate.NewManager(ctx, store, cfg)
	ns, err := openNotices(c, log, store, func(err error) {
		if srv != nil {
			srv.NotifyError(err)
		}
	})
	if err != nil {
		return err
	}
	notifier := ns.n
	// Listening before the server is made: with port 0 the invitation
	// links name the port the system chose.
	l, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	defer l.Close()
	wcfg := web.Config{Manager: m, AdminUser: c.String("admin-user"), AdminPassword: adminPW, AdminToken: token, AdminTokenName: c.String("admin-token-name"), Admins: admins, Viewers: viewers,
		Login: login, Lang: lang, SecureCookies: c.Bool("secure-cookies"), PublicURL: c.String("public-url"), Log: log,
		Listen: boundAddr(c.String("listen"), l.Addr()), TLS: c.String("tls-cert") != "",
		Directory: directory, TrustedProxies: proxies}
	if notifier != nil {
		wcfg.Notifier = notifier
	}
	if srv, err = web.New(wcfg); err != nil {
		return err
	}
	if err := m.ServeControl(ctx, store.Path); err != nil {
		return err
	}
	hs := srv.HTTPServer()
	scheme := "http"
	go func() {
		var err error
		if c.String("tls-cert") != "" {
			err = hs.ServeTLS(l, c.String("tls-cert"), c.String("tls-key"))
		} else {
			err = hs.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("web server", "err", err)
			cancel()
		}
	}()
	if c.String("tls-cert") != "" {
		scheme = "https"
	}
	if err := m.ResumeRunning(); err != nil {
		return err
	}
	go m.KeepRetention(ctx, time.Minute)
	ns.schedule(ctx, m, srv.PortalLink(), lang)
	fmt.Fprintf(os.Stderr, "banjia serve: portal %s://%s/  dashboard %s://%s/admin  metrics %s://%s/metrics\n",
		scheme, l.Addr(), scheme, l.Addr(), scheme, l.Addr())

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "\n%s: stopping jobs at the next message boundary and saving progress...\n", s)
	case <-ctx.Done():
	}
	go func() {
		<-sig
		// A second signal: stop waiting for message boundaries.
		cancel()
	}()
	shut, done := context.WithTimeout(context.Background(), 5*time.Second)
	hs.Shutdown(shut)
	done()
	m.Stop()
	ns.close(10 * time.Second)
	return nil
}

// boundAddr is the address as given (a host name stays a name) with the
// port the listener got.
func boundAddr(given string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(given)
	ta, ok := bound.(*net.TCPAddr)
	if err != nil || !ok {
		return given
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// login checks a login against a mail server without touching the mailbox.
func login(ctx context.Context, e mail.Endpoint) error {
	src, err := sources.Open(ctx, e)
	if err != nil {
		return err
	}
	return src.Close()
}

// secretFrom reads a secret from a file or the environment, never a flag
// (flags show up in ps).
func secretFrom(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return string(trimNL(b)), nil
	}
	return os.Getenv(env), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// dashboardUsers reads the admins and viewers files (either may be ""). A
// name is an admin or a viewer, and no viewer has the one admin's name: a
// sign-in must not depend on which password was typed to say what it may do.
// dashboardAccess is who may sign in to a dashboard, and through which
// proxies: serve's flags, read once for serve and serve --shards alike.
type dashboardAccess struct {
	adminPW, token  string
	admins, viewers map[string]string
	proxies         []netip.Prefix
}

func dashboardAccessOf(c *cli.Context) (*dashboardAccess, error) {
	var da dashboardAccess
	var err error
	if da.adminPW, err = secretFrom(c.String("admin-password-file"), "BANJIA_ADMIN_PASSWORD"); err != nil {
		return nil, err
	}
	if da.token, err = secretFrom(c.String("admin-token-file"), "BANJIA_ADMIN_TOKEN"); err != nil {
		return nil, err
	}
	if da.admins, da.viewers, err = dashboardUsers(c.String("admins-file"), c.String("viewers-file"), c.String("admin-user")); err != nil {
		return nil, err
	}
	if da.proxies, err = trustedProxies(c.StringSlice("trusted-proxy")); err != nil {
		return nil, err
	}
	return &da, nil
}

func dashboardUsers(adminsFile, viewersFile, adminUser string) (admins, viewers map[string]string, err error) {
	if adminsFile != "" {
		if admins, err = readAdmins(adminsFile, "admin"); err != nil {
			return nil, nil, err
		}
	}
	if viewersFile != "" {
		if viewers, err = readAdmins(viewersFile, "viewer"); err != nil {
			return nil, nil, err
		}
	}
	for name := range viewers {
		if _, both := admins[name]; both {
			return nil, nil, fmt.Errorf("%s is both an admin (%s) and a viewer (%s): keep one", name, adminsFile, viewersFile)
		}
		if name == adminUser {
			return nil, nil, fmt.Errorf("viewer %s has the admin's name (--admin-user): choose another", name)
		}
	}
	return admins, viewers, nil
}

// readAdmins reads an htpasswd file of bcrypt hashes ("name:$2y$..."): the
// dashboard's admins or viewers (kind says which, for errors). Other hash kinds are refused by name, so an admin
// learns which line to make again, not that sign-in fails later.
func readAdmins(path, kind string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%ss file: %w", kind, err)
	}
	admins := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%ss file %s line %d: want NAME:BCRYPT-HASH (htpasswd -nB NAME)", kind, path, i+1)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%ss file %s line %d: %s's password is not a bcrypt hash (make the line with htpasswd -nB %s)", kind, path, i+1, name, name)
		}
		if _, dup := admins[name]; dup {
			return nil, fmt.Errorf("%ss file %s line %d: %s is there twice", kind, path, i+1, name)
		}
		admins[name] = hash
	}
	if len(admins) == 0 {
		return nil, fmt.Errorf("%ss file %s names no %s", kind, path, kind)
	}
	return admins, nil
}

// trustedProxies reads --trusted-proxy values: addresses or CIDRs.
func trustedProxies(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		pfx, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxy %q: want an address (10.0.0.5) or a CIDR (10.0.0.0/24)", v)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}
