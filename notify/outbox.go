package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// The outbox sender: with Config.Outbox every mail is written to the state
// file when composed (state/outbox.go) and one goroutine sends what is due.
// A mail the server does not take stays there: a temporary failure, a
// refused login or an unreachable server is tried again after a wait that
// doubles up to MaxBackoff, for as long as it takes; a recipient the server
// refuses for good is held for the admin (banjia outbox). Nothing is
// dropped, so a migration of thousands of accounts never outruns its mail.

// outboxBatch is how many due mails one look at the state file takes.
const outboxBatch = 64

func (n *Notifier) store(m *message) bool {
	om := &state.OutMail{Job: m.job, Kind: m.kind, To: m.to, Subject: m.subject, Data: m.data}
	if err := n.cfg.Outbox.QueueMail(om); err != nil {
		// The state file cannot be written: the migration stops on the
		// same error; the admin is told this mail is lost.
		n.report(&DeliveryError{To: m.to, Subject: m.subject, Final: true, Err: &Error{Kind: Dropped, Reason: "the outbox could not be written", Err: err}})
		return false
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return true
}

// runOutbox sends the due mails until the notifier is cancelled, or, once
// Close drains it, until no mail is due.
func (n *Notifier) runOutbox() {
	defer close(n.done)
	if err := n.cfg.Outbox.WakeMails(); err != nil {
		n.log.Error("outbox", "err", err)
	}
	draining := false
	// down counts the server's failures in a row: while it is down, one
	// mail probes it and the rest wait, rather than each failing in turn.
	down := 0
	for {
		due, err := n.cfg.Outbox.MailsDue(time.Now(), outboxBatch)
		if err != nil {
			n.log.Error("outbox unreadable", "err", err)
		}
		tried := 0 // mails tried, not refused because the server is down
		for _, m := range due {
			if n.ctx.Err() != nil {
				return
			}
			if err := n.sendStored(m); err != nil && serverWide(err) {
				down++
				break
			}
			down = 0
			tried++
		}
		if tried > 0 {
			continue
		}
		next, waiting := n.cfg.Outbox.NextMailDue()
		if draining && (down > 0 || !waiting) {
			// Closing: nothing left to try, or the server is down. A
			// mail due again soon is waited for, as long as Close allows.
			return
		}
		var timer <-chan time.Time
		var t *time.Timer
		if down > 0 {
			t = time.NewTimer(n.outboxWait(down))
			timer = t.C
		} else if waiting {
			t = time.NewTimer(max(time.Until(next), 0))
			timer = t.C
		}
		drain := n.drain
		if draining {
			// Closed already: waiting for the timer.
			drain = nil
		}
		wake := n.wake
		if down > 0 {
			// A new mail does not bring the server back.
			wake = nil
		}
		select {
		case <-wake:
		case <-n.cfg.Outbox.MailRetried():
			down = 0
		case <-timer:
		case <-drain:
			draining = true
		case <-n.ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if n.ctx.Err() != nil {
			return
		}
	}
}

// serverWide says a failure is the server's or the settings', not one mail's.
func serverWide(err *Error) bool {
	switch err.Kind {
	case Connect, TLS, Auth, Relay:
		return true
	}
	return false
}

// sendStored makes one attempt at a stored mail and records its outcome.
func (n *Notifier) sendStored(om *state.OutMail) *Error {
	m := &message{to: om.To, subject: om.Subject, data: om.Data, job: om.Job, kind: om.Kind}
	attempt := om.Attempts + 1
	err := n.sendOnce(n.ctx, m, attempt)
	if err == nil {
		n.log.Info("notification sent", "to", m.to, "subject", m.subject, "attempt", attempt)
		if err := n.cfg.Outbox.MailSent(om.Seq); err != nil {
			n.log.Error("outbox: a sent mail stays listed", "seq", om.Seq, "err", err)
		}
		return nil
	}
	if err.Kind == Dropped {
		// Shutting down mid-attempt: the mail stays as it was.
		return err
	}
	held := err.Kind == Recipient && !err.Temporary
	next := time.Now().Add(n.outboxWait(attempt))
	if ferr := n.cfg.Outbox.MailFailedWhy(om.Seq, next, err.Error(), err.Why, held); ferr != nil {
		n.log.Error("outbox", "seq", om.Seq, "err", ferr)
	}
	n.report(&DeliveryError{To: m.to, Subject: m.subject, Attempt: attempt, Final: held, Err: err})
	return err
}

// outboxWait is the pause after the attempt-th failed try of a mail.
func (n *Notifier) outboxWait(attempt int) time.Duration {
	wait := n.cfg.Backoff
	for i := 1; i < attempt && wait < n.cfg.MaxBackoff; i++ {
		wait *= 2
	}
	return min(wait, n.cfg.MaxBackoff)
}

// closeOutbox sends what is due now and stops, or stops when ctx ends;
// mails not sent stay in the outbox for the next run.
func (n *Notifier) closeOutbox(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.drain)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
	case <-ctx.Done():
		n.cancel()
		<-n.done
	}
	n.cancel()
	left, err := n.cfg.Outbox.Outbox()
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("notify: %d notification mails wait in the outbox (banjia outbox lists them; they are sent when banjia runs again): %w", len(left), ErrMailWaiting)
	}
	return nil
}

// ErrMailWaiting says mails were left in the outbox at Close: kept, not lost.
var ErrMailWaiting = errors.New("mail waiting")
