package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// SMSHook sends a text message (提醒短信) through what the admin has: a
// command (an SMS gateway's CLI, a script) or a webhook. banjia speaks no
// SMS provider's API itself: each has its own, and its own contract.
type SMSHook struct {
	// Command is run as COMMAND TO TEXT (split on spaces, no shell), with
	// BANJIA_SMS_TO and BANJIA_SMS_TEXT in its environment too; exit 0 is sent.
	Command string
	// URL gets a POST of {"to": TO, "text": TEXT, "job": JOB, "account": OLD}
	// as JSON; a 2xx answer is sent.
	URL string
	// Timeout bounds one sending. Default 30s.
	Timeout time.Duration
}

// NewSMSHook checks the admin's settings; both empty is no hook (nil).
func NewSMSHook(command, rawURL string) (*SMSHook, error) {
	command, rawURL = strings.TrimSpace(command), strings.TrimSpace(rawURL)
	if command == "" && rawURL == "" {
		return nil, nil
	}
	if command != "" && rawURL != "" {
		return nil, errors.New("SMS: give a command or a webhook URL, not both")
	}
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("SMS webhook: want an http:// or https:// URL")
		}
	}
	if command != "" {
		if _, err := exec.LookPath(strings.Fields(command)[0]); err != nil {
			return nil, fmt.Errorf("SMS command %q: %w", strings.Fields(command)[0], err)
		}
	}
	return &SMSHook{Command: command, URL: rawURL}, nil
}

// SMS is one text to send: To is the member's phone number when the
// accounts file gave one, else their address.
type SMS struct {
	To, Text     string
	Job, Account string
}

// Send hands one text to the hook.
func (h *SMSHook) Send(ctx context.Context, m SMS) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if h.Command != "" {
		argv := strings.Fields(h.Command)
		cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], m.To, m.Text)...)
		cmd.Env = append(os.Environ(), "BANJIA_SMS_TO="+m.To, "BANJIA_SMS_TEXT="+m.Text)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("SMS command %s for %s: %v: %s", argv[0], m.To, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	body, err := json.Marshal(map[string]string{"to": m.To, "text": m.Text, "job": m.Job, "account": m.Account})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("SMS webhook for %s: %w", m.To, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		said, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("SMS webhook for %s: %s: %s", m.To, resp.Status, strings.TrimSpace(string(said)))
	}
	return nil
}

// phoneOf is the member's phone number for texts, when the accounts file
// gave one.
func phoneOf(a *state.Account) string { return strings.TrimSpace(a.Phone) }
