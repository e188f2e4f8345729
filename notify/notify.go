// Package notify tells members and admins by email when a migration
// finishes. Mails are queued and sent over SMTP (implicit TLS, STARTTLS, or
// plain when asked) by a background goroutine, so a slow or broken mail
// server never holds up a migration.
package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// Security values for Config.Security.
const (
	SecurityTLS      = "tls"      // implicit TLS from the first byte (port 465)
	SecurityStartTLS = "starttls" // plain connection upgraded by STARTTLS (587, 25)
	SecurityNone     = "none"     // no TLS at all: only when asked for explicitly
)

// Config says where and as whom notifications are sent.
type Config struct {
	Host string
	Port int
	// Security is "tls" (implicit; "implicit" and "ssl" are accepted, as the
	// provider presets say), "starttls" or "none". Empty: from the port, 465
	// is "tls", anything else "starttls"; "none" is never a default.
	Security string
	// User and Password log in (PLAIN, or LOGIN when PLAIN is not offered);
	// empty User sends without a login. Password never appears in errors or logs.
	User, Password string
	// From is the sender; empty means User. Most providers send only as the
	// login address or its aliases ("relay not allowed" otherwise).
	From string
	// Admins receive one digest per job (at its end, and daily while it
	// runs when the job asks for it), never one mail per account.
	Admins []string
	// Insecure skips certificate verification.
	Insecure bool
	// RootCAs, when set, replaces the system's trusted CAs (tests).
	RootCAs *x509.CertPool
	// Timeout bounds one attempt at one mail (connect, TLS, login, send).
	// Default 30s.
	Timeout time.Duration
	// Retries is how many more times a mail is tried after a temporary
	// failure (4xx replies, network trouble); 0 means the default, 4 (five
	// tries in all); negative means never retry.
	Retries int
	// Backoff is the pause before the first retry, doubling for each next
	// one up to a minute. Default 2s.
	Backoff time.Duration
	// QueueSize bounds the mails waiting to be sent; when full, new mails are
	// dropped (and reported) rather than block the migration. Default 256.
	// Not used with an Outbox, which has no bound.
	QueueSize int
	// Outbox, when set, keeps every mail in the state file until the
	// server takes it (see outbox.go): no mail is dropped, a failing mail
	// is retried with backoff (Retries does not apply) and a restart sends
	// what was left.
	Outbox *state.Store
	// MaxBackoff caps the wait between two tries of a mail in the Outbox.
	// Default 10 minutes.
	MaxBackoff time.Duration
	// Now is the clock of the digests and reminders (tests); nil: time.Now.
	Now func() time.Time
}

// LogValue keeps the password out of logs should the config be logged.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host), slog.Int("port", c.Port), slog.String("security", c.Security),
		slog.String("user", c.User), slog.String("from", c.From), slog.Any("admins", c.Admins),
		slog.Bool("insecure", c.Insecure))
}

const maxBackoff = time.Minute

// Notifier sends notification mails from a queue.
type Notifier struct {
	cfg    Config
	log    *slog.Logger
	redact redactor

	queue  chan *message
	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	closed  bool
	onError func(error)

	// lost is written by the worker before done is closed.
	lost int

	// With an outbox: wake tells the sender a mail was queued; drain,
	// closed by Close, that it should send what is due and stop.
	wake  chan struct{}
	drain chan struct{}
}

// New checks cfg and starts the sending goroutine; it does not connect (see
// Check). A nil log discards log lines.
func New(cfg Config, log *slog.Logger) (*Notifier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	n := &Notifier{
		cfg:    cfg,
		log:    log.With("component", "notify", "smtp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))),
		redact: newRedactor(cfg.User, cfg.Password),
		queue:  make(chan *message, cfg.QueueSize),
		done:   make(chan struct{}),
	}
	if cfg.Security == SecurityNone && cfg.User != "" {
		n.log.Warn("SMTP security is none: the password crosses the network unencrypted")
	}
	if cfg.Insecure {
		n.log.Warn("SMTP certificate verification is off (insecure)")
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if cfg.Outbox != nil {
		n.wake, n.drain = make(chan struct{}, 1), make(chan struct{})
		go n.runOutbox()
		return n, nil
	}
	go n.run()
	return n, nil
}

func normalize(cfg Config) (Config, error) {
	cfg.Host = strings.TrimSpace(cfg.Host)
	if cfg.Host == "" {
		return cfg, errors.New("notify: the SMTP host is required")
	}
	switch strings.ToLower(strings.TrimSpace(cfg.Security)) {
	case "":
		if cfg.Port == 465 {
			cfg.Security = SecurityTLS
		} else {
			cfg.Security = SecurityStartTLS
		}
	case "tls", "implicit", "ssl":
		cfg.Security = SecurityTLS
	case "starttls":
		cfg.Security = SecurityStartTLS
	case "none", "plain":
		cfg.Security = SecurityNone
	default:
		return cfg, fmt.Errorf("notify: unknown SMTP security %q: use tls (port 465), starttls (587) or none", cfg.Security)
	}
	if cfg.Port == 0 {
		switch cfg.Security {
		case SecurityTLS:
			cfg.Port = 465
		case SecurityStartTLS:
			cfg.Port = 587
		default:
			cfg.Port = 25
		}
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return cfg, fmt.Errorf("notify: SMTP port %d is out of range", cfg.Port)
	}
	if cfg.Password != "" && cfg.User == "" {
		return cfg, errors.New("notify: an SMTP password without a user: set the SMTP user (usually the full address)")
	}
	if cfg.User != "" && cfg.Password == "" {
		return cfg, fmt.Errorf("notify: the SMTP user %s has no password", cfg.User)
	}
	if cfg.From == "" {
		cfg.From = cfg.User
	}
	if cfg.From == "" {
		return cfg, errors.New("notify: a From address is required when sending without a login")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return cfg, fmt.Errorf("notify: From address %q: %v", cfg.From, err)
	}
	cfg.From = from.Address
	admins := make([]string, 0, len(cfg.Admins))
	for _, a := range cfg.Admins {
		if strings.TrimSpace(a) == "" {
			continue
		}
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return cfg, fmt.Errorf("notify: admin address %q: %v", a, err)
		}
		admins = append(admins, addr.Address)
	}
	cfg.Admins = admins
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 4
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 2 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	return cfg, nil
}

func (n *Notifier) now() time.Time {
	if n.cfg.Now != nil {
		return n.cfg.Now()
	}
	return time.Now()
}

func (n *Notifier) addr() string {
	return net.JoinHostPort(n.cfg.Host, strconv.Itoa(n.cfg.Port))
}

// OnError sets fn to be called with a *DeliveryError for each failed
// attempt at a mail; the last one for a mail has Final set. It is called
// from the sending goroutine, except for a mail dropped because the queue
// is full or the notifier is closed (Final, Kind Dropped): that one comes
// from the goroutine that called AccountFinished or JobFinished, so fn must
// be safe for concurrent use and quick.
func (n *Notifier) OnError(fn func(error)) {
	n.mu.Lock()
	n.onError = fn
	n.mu.Unlock()
}

func (n *Notifier) report(e *DeliveryError) {
	attrs := []any{"to", e.To, "subject", e.Subject, "attempt", e.Attempt, "kind", e.Err.Kind.String(), "error", e.Err.Error()}
	if e.Final {
		n.log.Error("notification not sent", attrs...)
	} else {
		n.log.Warn("notification attempt failed, will retry", attrs...)
	}
	n.mu.Lock()
	fn := n.onError
	n.mu.Unlock()
	if fn != nil {
		fn(e)
	}
}

// AccountFinished queues the mail telling the member (at a.Target, the new
// mailbox) how the account's move ended. The admins are not mailed per
// account: they get the job's digest (JobFinished, Progress). lang is "zh"
// or "en" (anything else is English). It never blocks.
func (n *Notifier) AccountFinished(job *state.Job, a *state.Account, lang string) {
	if a == nil {
		return
	}
	addr, err := mail.ParseAddress(a.Target)
	if err != nil {
		n.log.Warn("member not notified: the new login is not an email address", "account", a.ID, "target", a.Target)
		return
	}
	// The reason names the old server and quotes its replies: the member
	// reads what the portal says instead, the admins the reason in the digest.
	forMember := a.Reason != "" && a.State != state.AccountSucceeded
	n.enqueue(n.accountMail(job, a, lang, []string{addr.Address}, forMember).about(job, KindMember))
}

// Invite asks a member to start their move in the portal (R11,
// 发送提醒邮件给所有搬家成员): sent to the new mailbox, where they sign in.
// It reports whether the mail was queued.
func (n *Notifier) Invite(job *state.Job, a *state.Account, portal, lang string) bool {
	if a == nil {
		return false
	}
	addr, err := mail.ParseAddress(a.Target)
	if err != nil {
		n.log.Warn("member not invited: the new login is not an email address", "account", a.ID, "target", a.Target)
		return false
	}
	return n.enqueue(n.inviteMail(job, a, portal, lang, []string{addr.Address}).about(job, KindInvite))
}

// JobFinished queues the summary mail for the admins: accounts per state,
// the totals, and each failed or abandoned account with its reason.
func (n *Notifier) JobFinished(job *state.Job, accts []*state.Account, lang string) {
	if len(n.cfg.Admins) == 0 {
		return
	}
	n.enqueue(n.jobMail(job, accts, lang, n.cfg.Admins).about(job, KindDigest))
}

func appendNew(list []string, add ...string) []string {
	for _, a := range add {
		dup := false
		for _, b := range list {
			if strings.EqualFold(a, b) {
				dup = true
				break
			}
		}
		if !dup {
			list = append(list, a)
		}
	}
	return list
}

// enqueue queues m and reports whether it was taken; a mail not taken is
// reported to OnError.
func (n *Notifier) enqueue(m *message) bool {
	if n.cfg.Outbox != nil {
		return n.store(m)
	}
	n.mu.Lock()
	closed := n.closed
	queued := false
	if !closed {
		select {
		case n.queue <- m:
			queued = true
		default:
		}
	}
	n.mu.Unlock()
	if queued {
		return true
	}
	reason := "the notification queue is full (the SMTP server is slow or down)"
	if closed {
		reason = "the notifier is closed"
	}
	n.report(&DeliveryError{To: m.to, Subject: m.subject, Final: true, Err: &Error{Kind: Dropped, Reason: reason}})
	return false
}

// Close stops taking mails and waits until the queued ones are sent or
// given up, or until ctx ends: then what is left is dropped (and reported)
// and Close returns an error saying how many mails were lost.
func (n *Notifier) Close(ctx context.Context) error {
	if n.cfg.Outbox != nil {
		return n.closeOutbox(ctx)
	}
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
	case <-ctx.Done():
		n.cancel()
		<-n.done
	}
	n.cancel()
	if n.lost > 0 {
		return fmt.Errorf("notify: %d notification mails not sent before shutdown: %w", n.lost, context.Cause(ctx))
	}
	return nil
}

func (n *Notifier) run() {
	defer close(n.done)
	for m := range n.queue {
		if n.ctx.Err() != nil {
			n.lost++
			n.report(&DeliveryError{To: m.to, Subject: m.subject, Final: true, Err: &Error{Kind: Dropped, Reason: "shutting down before the mail could be sent"}})
			continue
		}
		if err := n.deliver(m); err != nil && err.Kind == Dropped {
			n.lost++
		}
	}
}

// deliver tries m until it is sent (nil), fails for good or the notifier
// shuts down (the last error, of Kind Dropped for a shutdown).
func (n *Notifier) deliver(m *message) *Error {
	wait := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := n.sendOnce(n.ctx, m, attempt)
		if err == nil {
			n.log.Info("notification sent", "to", m.to, "subject", m.subject, "attempt", attempt)
			return nil
		}
		final := !err.Temporary || attempt > n.cfg.Retries || n.ctx.Err() != nil
		n.report(&DeliveryError{To: m.to, Subject: m.subject, Attempt: attempt, Final: final, Err: err})
		if final {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			err = &Error{Kind: Dropped, Reason: "shutting down before the mail could be sent again", Err: err}
			n.report(&DeliveryError{To: m.to, Subject: m.subject, Attempt: attempt, Final: true, Err: err})
			return err
		}
		wait = min(wait*2, maxBackoff)
	}
}
