package imapsource_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/mail/imapconn"
)

// TestProviderReplies: the words providers answer with, as their users
// report them, and the reason and class banjia gives for each.
func TestProviderReplies(t *testing.T) {
	e := mail.Endpoint{Scheme: "imaps", Host: "imap.example.test", Port: 993, User: "u@example.test", Password: "secret"}
	plain := e
	plain.Auth = "plain"
	cases := []struct {
		name  string
		err   error
		class fault.Class
		want  []string
		not   string
	}{
		{name: "NetEase before ID",
			err:   imapconn.CommandError(`examine "INBOX"`, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "EXAMINE Unsafe Login. Please contact kefu@188.com for help"}),
			class: fault.Account, want: []string{"identifies itself", "IMAP ID", "Unsafe Login"}},
		{name: "Gmail daily limit on FETCH",
			err:   imapconn.CommandError(`fetch from "INBOX"`, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Account exceeded command or bandwidth limits. (Failure)"}),
			class: fault.Account, want: []string{"daily transfer limit", "tomorrow"}, not: "target mailbox is full"},
		{name: "full target",
			err:   imapconn.CommandError("append", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Quota exceeded (mailbox for user is full)"}),
			class: fault.Account, want: []string{"target mailbox is full"}},
		{name: "Gmail connection limit at login",
			err:   imapconn.LoginError(e, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlert, Text: "Too many simultaneous connections. (Failure)"}),
			class: fault.Retry, want: []string{"too many connections"}, not: "password"},
		{name: "Coremail PLAIN asked for",
			err:   imapconn.LoginError(plain, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Request not ending with"}),
			class: fault.Account, want: []string{"as a command, not the password", "auth=login"}},
		{name: "Exchange not connected",
			err:   imapconn.CommandError("list folders", &imap.Error{Type: imap.StatusResponseTypeBad, Text: "User is authenticated but not connected."}),
			class: fault.Account, want: []string{"has no permission for this mailbox; grant FullAccess", "wrong password"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := c.err.Error()
			if got := fault.Classify(c.err); got != c.class {
				t.Errorf("class %v, want %v: %s", got, c.class, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not say %q", msg, w)
				}
			}
			if c.not != "" && strings.Contains(msg, c.not) {
				t.Errorf("%q says %q", msg, c.not)
			}
			if strings.Contains(msg, "secret") {
				t.Error("shows the password")
			}
		})
	}
}
