// Package fault classifies migration errors by what the engine should do about
// them: try again, give up on this one message, or give up on the account.
// Sources and sinks wrap their errors with a class and a reason a person can
// act on; the runner reads the class, people read the reason.
package fault

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/banjia-mail/banjia/wording"
)

// Class is what to do about an error.
type Class int

const (
	// Retry: transient (connection lost, server busy); try again after a pause.
	Retry Class = iota
	// Message: this message cannot be copied (too big, malformed for the target);
	// record it as failed and go on.
	Message
	// Account: nothing more can be done for this account (wrong password, no
	// permission, target full); fail it with the reason.
	Account
)

func (c Class) String() string {
	switch c {
	case Retry:
		return "retry"
	case Message:
		return "message"
	case Account:
		return "account"
	}
	return "unknown"
}

// Error is a classified error.
type Error struct {
	Class Class
	// Reason is what a person reads, e.g. "wrong password or authorization code".
	Reason string
	// After, when set on a Retry, is how long the server asked us to wait.
	After time.Duration
	// Refusal, on a refused login, says which kind of refusal it was: the
	// same class (Account) covers a mistyped password, which the member can
	// fix, and a disabled account, which only the old provider's admin can.
	Refusal Refusal
	// Why is Reason as a code and its parameters, for reading in another
	// language; Reason is its English wording.
	Why wording.Reason
	Err error
}

// Refusal is why a server refused a login, as far as it said.
type Refusal int

const (
	// NotRefused: not a refused login (or the server did not say why).
	NotRefused Refusal = iota
	// BadCredentials: wrong user name, password or authorization code, or
	// IMAP off for the account: servers word these the same way.
	BadCredentials
	// Disabled: the server says the account may not log in and to contact
	// its admin (IMAP [CONTACTADMIN]).
	Disabled
	// Expired: the password has expired (IMAP [EXPIRED]).
	Expired
)

func (r Refusal) String() string {
	switch r {
	case BadCredentials:
		return "bad credentials"
	case Disabled:
		return "disabled"
	case Expired:
		return "expired"
	}
	return "not refused"
}

// Refused wraps err as a refused login (class Account) of kind r.
func Refused(r Refusal, reason string, err error) error {
	return &Error{Class: Account, Reason: reason, Refusal: r, Err: err}
}

// RefusalOf is the kind of login refusal err is, NotRefused if none.
func RefusalOf(err error) Refusal {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Refusal
	}
	return NotRefused
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	if e.Reason == "" {
		return e.Err.Error()
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Coded wraps err with a class and a reason from the catalogue.
func Coded(c Class, why wording.Reason, err error) error {
	return &Error{Class: c, Reason: why.String(), Why: why, Err: err}
}

// RetryAfterCoded is RetryAfter with a reason from the catalogue.
func RetryAfterCoded(d time.Duration, why wording.Reason, err error) error {
	return &Error{Class: Retry, Reason: why.String(), Why: why, After: d, Err: err}
}

// RefusedCoded is Refused with a reason from the catalogue.
func RefusedCoded(r Refusal, why wording.Reason, err error) error {
	return &Error{Class: Account, Reason: why.String(), Why: why, Refusal: r, Err: err}
}

// WhyOf is the reason of err as a code and parameters where it has one,
// else its text as it is.
func WhyOf(err error) wording.Reason {
	var fe *Error
	if errors.As(err, &fe) && fe.Why.Code != "" {
		return fe.Why
	}
	if err == nil {
		return wording.Reason{}
	}
	return wording.Plain(Reason(err))
}

// New wraps err with a class and a reason.
func New(c Class, reason string, err error) error {
	return &Error{Class: c, Reason: reason, Err: err}
}

// RetryAfter wraps err as transient with a server-requested pause.
func RetryAfter(d time.Duration, reason string, err error) error {
	return &Error{Class: Retry, Reason: reason, After: d, Err: err}
}

// Classify says what to do about err. Unclassified network and timeout errors
// are transient; anything else unclassified fails the message, since the
// engine cannot know it would help to try again and must not stop the job.
// A cancelled context is ours, not the message's or the folder's: a pass
// cut short (a stop, or another lane failing the account) must not record
// what it was doing as failed.
func Classify(err error) Class {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Class
	}
	if IsTransient(err) || errors.Is(err, context.Canceled) {
		return Retry
	}
	return Message
}

// Reason is the person-readable reason of err, or its text.
func Reason(err error) string {
	var fe *Error
	if errors.As(err, &fe) && fe.Reason != "" {
		return fe.Reason
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// Wait is how long the server asked to wait before retrying, if it did.
func Wait(err error) time.Duration {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.After
	}
	return 0
}

// IsTransient reports whether err looks like a lost or stalled connection.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "use of closed network connection") || strings.Contains(s, "connection reset") ||
		strings.Contains(s, "broken pipe")
}
