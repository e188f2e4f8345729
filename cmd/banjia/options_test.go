package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/state"
)

func TestPeriodStart(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"all": {}, "2y": time.Date(2024, 11, 23, 12, 0, 0, 0, time.UTC), "1y": time.Date(2025, 11, 23, 12, 0, 0, 0, time.UTC),
		"3m": time.Date(2026, 8, 23, 12, 0, 0, 0, time.UTC), "30d": time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC),
	}
	for p, want := range cases {
		got, err := state.PeriodStart(p, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", p, got, err, want)
		}
	}
	if _, err := state.PeriodStart("5w", now); err == nil {
		t.Error("5w accepted")
	}
}

func TestJobNameLast(t *testing.T) {
	got := jobNameLast([]string{"banjia", "--state", "s", "job", "create", "acme", "--from", "x"})
	want := "banjia --state s job create --from x acme"
	if s := join(got); s != want {
		t.Fatalf("%q", s)
	}
	if s := join(jobNameLast([]string{"banjia", "job", "pause", "acme"})); s != "banjia job pause acme" {
		t.Fatalf("%q", s)
	}
}

func join(a []string) string {
	out := ""
	for i, s := range a {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// TestRetryFlagsRefuseBadValues: a retry or timeout setting that would make
// the engine give up at once, or never wait, is refused with what to give.
func TestRetryFlagsRefuseBadValues(t *testing.T) {
	cases := []struct{ flag, value, want string }{
		{"--retry-for", "0s", "--retry-for 0s: give a duration above zero"},
		{"--connect-for", "-1m", "--connect-for -1m0s: give a duration above zero"},
		{"--retry-wait", "0s", "--retry-wait 0s: give a duration above zero"},
		{"--idle-timeout", "-5s", "--idle-timeout -5s: give a duration above zero"},
		{"--conns", "0", "--conns 0: give a number above zero"},
	}
	for _, c := range cases {
		t.Run(c.flag, func(t *testing.T) {
			cmd := exec.Command(binary, "demo", c.flag+"="+c.value)
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); code != 1 || !strings.Contains(string(out), c.want) {
				t.Fatalf("exit %d, output:\n%s\nwant %q", code, out, c.want)
			}
			if strings.Contains(string(out), "old server (source)") {
				t.Fatalf("servers were started before the flags were checked:\n%s", out)
			}
		})
	}
}

// TestScheduleFlagsRefuseBadValues: a window, time zone or rate cap that
// cannot be honoured is refused at job create, before anything is stored.
func TestScheduleFlagsRefuseBadValues(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--window", "25:00-07:00"}, `window "25:00-07:00": "25:00" is not a time of day (HH:MM)`},
		{[]string{"--window", "22:00"}, `window "22:00": want HH:MM-HH:MM, such as 22:00-07:00`},
		{[]string{"--window", "22:00-07:00", "--time-zone", "Mars/Olympus"}, `time zone "Mars/Olympus": not known`},
		{[]string{"--time-zone", "Asia/Shanghai"}, `time zone "Asia/Shanghai" given without a window`},
		{[]string{"--max-rate", "-1"}, "largest rate: want 0 (no cap) up to 100000 MB/s"},
		{[]string{"--max-rate-per-host", "0.001"}, "largest rate per old server 1048 bytes/s: want at least 16 KB/s"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--state", dir + "/s.db", "job", "create", "acme", "--from", "imaps://imap.old.example", "--to", "imaps://imap.new.example", "--mode", "member", "--domain", "old.example", "--new-domain", "new.example"}, c.args...)
			out, err := exec.Command(binary, args...).CombinedOutput()
			if code := exitCode(err); code != 1 || !strings.Contains(string(out), c.want) {
				t.Fatalf("exit %d, output:\n%s\nwant %q", code, out, c.want)
			}
		})
	}
}
