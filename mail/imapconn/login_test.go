package imapconn

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
)

// TestLoginErrorRefusals: a disabled account ([CONTACTADMIN]), a wrong
// password and an expired one fail the account alike, but say which they
// are, in the reason (with the server's own words) and as a Refusal the
// portal can word for the member without the server's.
func TestLoginErrorRefusals(t *testing.T) {
	e := mail.Endpoint{Scheme: "imaps", Host: "imap.old.test", Port: 993, User: "ann@old.test", Password: "pw-never-shown"}
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	for _, c := range []struct {
		name    string
		err     error
		refusal fault.Refusal
		class   fault.Class
		want    []string
	}{
		{"disabled", no(imap.ResponseCodeContactAdmin, "Account is locked, ask the helpdesk (0.001 + 0.000 secs)."), fault.Disabled, fault.Account,
			[]string{"disabled", "CONTACTADMIN", `the server said: "Account is locked, ask the helpdesk"`}},
		{"wrong password", no(imap.ResponseCodeAuthenticationFailed, "Authentication failed."), fault.BadCredentials, fault.Account,
			[]string{"wrong user name, password", `the server said: "Authentication failed."`}},
		{"no code", no("", "LOGIN failed."), fault.BadCredentials, fault.Account, []string{"wrong user name, password", `"LOGIN failed."`}},
		{"expired", no(imap.ResponseCodeExpired, "Password expired."), fault.Expired, fault.Account, []string{"has expired", `"Password expired."`}},
		{"unavailable", no(imap.ResponseCodeUnavailable, "Try later."), fault.NotRefused, fault.Retry, []string{"temporarily unavailable"}},
		{"connection lost", errors.New("EOF"), fault.NotRefused, fault.Retry, []string{"lost during login"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := LoginError(e, c.err)
			if got := fault.RefusalOf(err); got != c.refusal {
				t.Errorf("refusal %v, want %v", got, c.refusal)
			}
			if got := fault.Classify(err); got != c.class {
				t.Errorf("class %v, want %v", got, c.class)
			}
			reason := fault.Reason(err)
			for _, w := range c.want {
				if !strings.Contains(reason, w) {
					t.Errorf("reason %q lacks %q", reason, w)
				}
			}
			if strings.Contains(reason, e.Password) {
				t.Errorf("reason %q shows the password", reason)
			}
		})
	}
	// Disabled and wrong-password reasons differ.
	if fault.Reason(LoginError(e, no(imap.ResponseCodeContactAdmin, "x"))) == fault.Reason(LoginError(e, no(imap.ResponseCodeAuthenticationFailed, "x"))) {
		t.Fatal("a disabled account and a wrong password give the same reason")
	}
}
