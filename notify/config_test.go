package notify

import (
	"testing"
	"time"
)

// The port decides the security when none is given, and plain SMTP is
// never a default: port 25 still means STARTTLS.
func TestDefaultsFromPort(t *testing.T) {
	for _, c := range []struct {
		port     int
		security string
		wantPort int
		wantSec  string
	}{
		{465, "", 465, SecurityTLS},
		{587, "", 587, SecurityStartTLS},
		{25, "", 25, SecurityStartTLS},
		{0, "", 587, SecurityStartTLS},
		{0, "tls", 465, SecurityTLS},
		{0, "SSL", 465, SecurityTLS},
		{0, "implicit", 465, SecurityTLS},
		{0, "none", 25, SecurityNone},
		{2525, "none", 2525, SecurityNone},
	} {
		cfg, err := normalize(Config{Host: "h", Port: c.port, Security: c.security, User: "u@x.example", Password: "p"})
		if err != nil {
			t.Fatalf("%d/%q: %v", c.port, c.security, err)
		}
		if cfg.Port != c.wantPort || cfg.Security != c.wantSec {
			t.Errorf("%d/%q: got %d/%s, want %d/%s", c.port, c.security, cfg.Port, cfg.Security, c.wantPort, c.wantSec)
		}
		if cfg.From != "u@x.example" || cfg.Retries != 4 || cfg.Backoff != 2*time.Second || cfg.Timeout != 30*time.Second {
			t.Errorf("defaults: From %q, Retries %d, Backoff %s, Timeout %s", cfg.From, cfg.Retries, cfg.Backoff, cfg.Timeout)
		}
	}
	cfg, _ := normalize(Config{Host: "h", From: "a@x.example", Retries: -1})
	if cfg.Retries != 0 {
		t.Errorf("Retries -1 became %d, want 0 (no retries)", cfg.Retries)
	}
}
