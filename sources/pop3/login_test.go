package pop3

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
)

// TestLoginErrorCodes: the response codes of RFC 3206 decide what a
// refused POP3 login is; the server's words stay in the admin's reason.
func TestLoginErrorCodes(t *testing.T) {
	e := mail.Endpoint{Scheme: "pop3s", Host: "pop.old.test", Port: 995, User: "ann@old.test", Password: "pw-never-shown"}
	for _, c := range []struct {
		name, line string
		class      fault.Class
		refusal    fault.Refusal
		wait       time.Duration
		want       []string
	}{
		{"wrong password", "-ERR [AUTH] Authentication failed.", fault.Account, fault.BadCredentials, 0,
			[]string{"wrong user name, password", `the server said: "[AUTH] Authentication failed."`}},
		{"no code", "-ERR Login failed", fault.Account, fault.BadCredentials, 0, []string{"wrong user name, password", `"Login failed"`}},
		{"disabled", "-ERR [SYS/PERM] Your account has been suspended", fault.Account, fault.Disabled, 0,
			[]string{"disabled or may not use POP3", "[SYS/PERM]", `"[SYS/PERM] Your account has been suspended"`}},
		{"passing problem", "-ERR [SYS/TEMP] Database unavailable", fault.Retry, fault.NotRefused, 0, []string{"passing problem", "[SYS/TEMP]"}},
		{"in use", "-ERR [IN-USE] Unable to lock maildrop", fault.Retry, fault.NotRefused, 0, []string{"in use by another POP3 session"}},
		{"login delay", "-ERR [LOGIN-DELAY] Wait a while", fault.Retry, fault.NotRefused, loginDelay, []string{"only every few minutes"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := loginError(e, errors.New(c.line))
			if got := fault.Classify(err); got != c.class {
				t.Errorf("class %v, want %v", got, c.class)
			}
			if got := fault.RefusalOf(err); got != c.refusal {
				t.Errorf("refusal %v, want %v", got, c.refusal)
			}
			if got := fault.Wait(err); got != c.wait {
				t.Errorf("wait %v, want %v", got, c.wait)
			}
			for _, w := range c.want {
				if !strings.Contains(fault.Reason(err), w) {
					t.Errorf("reason %q lacks %q", fault.Reason(err), w)
				}
			}
			if strings.Contains(err.Error(), e.Password) {
				t.Errorf("%q shows the password", err)
			}
		})
	}
}
