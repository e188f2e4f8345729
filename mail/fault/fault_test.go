package fault_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/mail/fault"
)

// timeoutErr is a net.Error that timed out without being one of the
// well-known sentinel errors (a TLS handshake or resolver timeout).
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// refusedNetErr is a net.Error that did not time out.
type refusedNetErr struct{}

func (refusedNetErr) Error() string   { return "no route" }
func (refusedNetErr) Timeout() bool   { return false }
func (refusedNetErr) Temporary() bool { return false }

func imapNo(code imap.ResponseCode, text string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

// TestClassify: the errors sources and sinks meet, as they come (wrapped
// or not), each with what the engine must do about it.
func TestClassify(t *testing.T) {
	opErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	cases := []struct {
		name string
		err  error
		want fault.Class
	}{
		// Classified by a source or sink: the class wins, however deep.
		{"retry", fault.New(fault.Retry, "server busy", errors.New("x")), fault.Retry},
		{"message", fault.New(fault.Message, "too big", errors.New("x")), fault.Message},
		{"account", fault.New(fault.Account, "wrong password", errors.New("x")), fault.Account},
		{"account wrapped twice", fmt.Errorf("lane: %w", fmt.Errorf("folder: %w", fault.New(fault.Account, "no permission", nil))), fault.Account},
		{"message around a lost connection", fault.New(fault.Message, "refused", io.EOF), fault.Message},
		{"retry after", fault.RetryAfter(time.Minute, "throttled", nil), fault.Retry},
		// The outermost class is the one decided last, with most context.
		{"account around retry", fault.New(fault.Account, "gave up", fault.New(fault.Retry, "busy", nil)), fault.Account},

		// Lost or stalled connections.
		{"EOF", io.EOF, fault.Retry},
		{"unexpected EOF wrapped", fmt.Errorf("reading literal: %w", io.ErrUnexpectedEOF), fault.Retry},
		{"closed", net.ErrClosed, fault.Retry},
		{"reset", syscall.ECONNRESET, fault.Retry},
		{"refused", syscall.ECONNREFUSED, fault.Retry},
		{"broken pipe", syscall.EPIPE, fault.Retry},
		{"net.OpError", opErr, fault.Retry},
		{"net.OpError wrapped", fmt.Errorf("append: %w", opErr), fault.Retry},
		{"deadline", os.ErrDeadlineExceeded, fault.Retry},
		{"timeout net.Error", timeoutErr{}, fault.Retry},
		{"timeout wrapped", fmt.Errorf("dial: %w", timeoutErr{}), fault.Retry},
		{"context deadline", context.DeadlineExceeded, fault.Retry},
		// Cut short by us, not refused by the server.
		{"context canceled", context.Canceled, fault.Retry},
		{"context canceled wrapped", fmt.Errorf("select: %w", context.Canceled), fault.Retry},
		{"reset only in the text", errors.New("read tcp: connection reset by peer"), fault.Retry},
		{"closed only in the text", errors.New("use of closed network connection"), fault.Retry},
		{"broken pipe only in the text", errors.New("write: broken pipe"), fault.Retry},

		// Anything else unclassified fails the message, not the job.
		{"net.Error without timeout", refusedNetErr{}, fault.Message},
		{"plain error", errors.New("malformed message"), fault.Message},
		// A server's NO or BAD the source or sink did not classify: the
		// engine cannot know that trying again helps.
		{"IMAP NO", imapNo("", "Mailbox is full"), fault.Message},
		{"IMAP NO [UNAVAILABLE]", imapNo(imap.ResponseCodeUnavailable, "try later"), fault.Message},
		{"IMAP NO [OVERQUOTA]", imapNo(imap.ResponseCodeOverQuota, "quota"), fault.Message},
		{"IMAP BAD", &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Invalid arguments"}, fault.Message},
		{"IMAP NO wrapped", fmt.Errorf("append: %w", imapNo(imap.ResponseCodeTooBig, "too big")), fault.Message},
		// Classified IMAP errors keep their class.
		{"IMAP NO classified as account", fault.New(fault.Account, "target full", imapNo(imap.ResponseCodeOverQuota, "quota")), fault.Account},
		{"IMAP NO classified as retry", fault.New(fault.Retry, "busy", imapNo(imap.ResponseCodeUnavailable, "later")), fault.Retry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fault.Classify(c.err); got != c.want {
				t.Fatalf("Classify(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// TestReasonAndWait: people read the outermost classified error's
// reason; the server's wait survives wrapping and is zero when none
// was asked.
func TestReasonAndWait(t *testing.T) {
	inner := fault.RetryAfter(90*time.Second, "server is throttling", imapNo("", "Throttled: try in 90 s"))
	wrapped := fmt.Errorf("lane 2: %w", inner)
	if got := fault.Reason(wrapped); got != "server is throttling" {
		t.Errorf("Reason = %q", got)
	}
	if got := fault.Wait(wrapped); got != 90*time.Second {
		t.Errorf("Wait = %v", got)
	}
	if got := fault.Wait(fault.New(fault.Retry, "busy", nil)); got != 0 {
		t.Errorf("Wait without a hint = %v", got)
	}
	if got := fault.Wait(io.EOF); got != 0 {
		t.Errorf("Wait of an unclassified error = %v", got)
	}
	if got := fault.Reason(errors.New("plain")); got != "plain" {
		t.Errorf("Reason of an unclassified error = %q", got)
	}
	if got := fault.Reason(nil); got != "" {
		t.Errorf("Reason(nil) = %q", got)
	}
	if got := fault.New(fault.Message, "", io.EOF).Error(); got != io.EOF.Error() {
		t.Errorf("Error without a reason = %q", got)
	}
	if got := fault.New(fault.Message, "too big", nil).Error(); got != "too big" {
		t.Errorf("Error without a cause = %q", got)
	}
	if !errors.Is(wrapped, inner) || !errors.Is(fault.New(fault.Retry, "x", io.EOF), io.EOF) {
		t.Error("classified errors do not unwrap to their cause")
	}
	for c, want := range map[fault.Class]string{fault.Retry: "retry", fault.Message: "message", fault.Account: "account", fault.Class(9): "unknown"} {
		if c.String() != want {
			t.Errorf("Class(%d) = %q, want %q", int(c), c.String(), want)
		}
	}
	if fault.IsTransient(nil) {
		t.Error("nil is transient")
	}
}

// TestRefusal: a refused login keeps its kind through wrapping; other
// errors are not refusals.
func TestRefusal(t *testing.T) {
	err := fault.Refused(fault.Disabled, "disabled", imapNo(imap.ResponseCodeContactAdmin, "locked"))
	if got := fault.RefusalOf(fmt.Errorf("opening source: %w", err)); got != fault.Disabled {
		t.Fatalf("wrapped refusal: %v", got)
	}
	if fault.Classify(err) != fault.Account {
		t.Fatalf("a refused login is class %v", fault.Classify(err))
	}
	for _, e := range []error{nil, io.EOF, fault.New(fault.Account, "over quota", nil)} {
		if got := fault.RefusalOf(e); got != fault.NotRefused {
			t.Fatalf("RefusalOf(%v) = %v", e, got)
		}
	}
}
