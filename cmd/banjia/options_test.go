package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

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

// TestImportFromTheCLI: an accounts CSV saved by Excel as "CSV UTF-8" (with
// a BOM) and one saved as GBK make the same job; a file with bad rows
// makes none unless --skip-bad-rows, which names what it left out.
func TestImportFromTheCLI(t *testing.T) {
	const csv = "旧邮箱,新邮箱,密码,新密码\nzhang@old.example,zhang@new.example,密码1,n1\nli@old.example,li@new.example,pw2,n2\n"
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(csv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stateFile := dir + "/s.db"
	run := func(args ...string) (string, int) {
		out, err := exec.Command(binary, append([]string{"--state", stateFile}, args...)...).CombinedOutput()
		return string(out), exitCode(err)
	}
	var listed []string
	for name, data := range map[string]string{"bom": "\ufeff" + csv, "gbk": gbk} {
		// Each job in a state file of its own: one new address is in
		// one job at a time.
		stateFile = dir + "/" + name + ".db"
		path := dir + "/" + name + ".csv"
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, code := run("job", "create", name, "--from", "imaps://imap.old.example", "--to", "imaps://imap.new.example", "--accounts", path); code != 0 {
			t.Fatalf("%s: exit %d\n%s", name, code, out)
		}
		out, _ := run("job", "accounts", name)
		listed = append(listed, out)
	}
	if listed[0] != listed[1] || !strings.Contains(listed[0], "zhang@old.example -> zhang@new.example") || strings.Contains(listed[0], "\ufeff") {
		t.Fatalf("the two files made different jobs:\n%s\n%s", listed[0], listed[1])
	}
	stateFile = dir + "/s.db"
	bad := dir + "/bad.csv"
	if err := os.WriteFile(bad, []byte(csv+"x y@old.example,x@new.example,pw\nz@old.example,,pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := run("job", "create", "bad", "--from", "imaps://imap.old.example", "--to", "imaps://imap.new.example", "--accounts", bad)
	if code != 1 || !strings.Contains(out, "2 bad rows, nothing imported") || !strings.Contains(out, "line 4:") || !strings.Contains(out, "line 5:") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if out, _ := run("job", "status"); strings.Contains(out, "bad") {
		t.Fatalf("a job was made from a bad file:\n%s", out)
	}
	out, code = run("job", "create", "some", "--from", "imaps://imap.old.example", "--to", "imaps://imap.new.example", "--accounts", bad, "--skip-bad-rows")
	if code != 0 || !strings.Contains(out, "skipped line 4:") || !strings.Contains(out, "skipped line 5:") {
		t.Fatalf("--skip-bad-rows: exit %d\n%s", code, out)
	}
}
