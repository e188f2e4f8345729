package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// job is a banjia state file with one job over some users.
type job struct {
	bin   string
	dir   string
	users []benchUser
}

type result struct {
	elapsed time.Duration
	cpu     time.Duration // banjia's user + system time
	rssKB   int64
	output  string
}

func (j *job) state() string { return filepath.Join(j.dir, "banjia.db") }

func (j *job) csv() (string, error) {
	var s strings.Builder
	s.WriteString("old address,new address,old password,new password\n")
	for _, u := range j.users {
		fmt.Fprintf(&s, "%s,%s,%s,%s\n", u.Old, u.New, u.OldPW, u.NewPW)
	}
	p := filepath.Join(j.dir, "accounts.csv")
	return p, os.WriteFile(p, []byte(s.String()), 0o600)
}

func (j *job) banjia(env []string, args ...string) (string, error) {
	out, _, err := j.banjiaCPU(env, args...)
	return out, err
}

// banjiaCPU runs banjia and reports the CPU time it used.
func (j *job) banjiaCPU(env []string, args ...string) (string, time.Duration, error) {
	cmd := exec.Command(j.bin, append([]string{"--state", j.state(), "--lang", "en"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return out.String(), cpu, fmt.Errorf("banjia %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), cpu, nil
}

func (j *job) create(srcAddr, dstAddr string) error {
	csv, err := j.csv()
	if err != nil {
		return err
	}
	_, err = j.banjia(nil, "job", "create", "bench", "--from", "imap+plain://"+srcAddr, "--to", "imap+plain://"+dstAddr, "--accounts", csv)
	return err
}

// start runs `job start` to the end and reads the process's own peak RSS.
func (j *job) start(parallel, conns int, rerun bool) (*result, error) {
	rss := filepath.Join(j.dir, "peak-rss")
	os.Remove(rss)
	args := []string{"job", "start", "bench", "--parallel", strconv.Itoa(parallel), "--conns", strconv.Itoa(conns)}
	if rerun {
		args = append(args, "--rerun")
	}
	env := []string{"BANJIA_PEAKRSS_FILE=" + rss}
	if d := os.Getenv("BENCH_CPUPROFILE_DIR"); d != "" {
		env = append(env, "BANJIA_CPUPROFILE="+filepath.Join(d, filepath.Base(j.dir)+".pprof"))
	}
	t0 := time.Now()
	out, cpu, err := j.banjiaCPU(env, args...)
	res := &result{elapsed: time.Since(t0), cpu: cpu, output: out}
	if err != nil {
		return res, err
	}
	if !strings.Contains(out, "completed") {
		return res, fmt.Errorf("job did not complete:\n%s", out)
	}
	if b, err := os.ReadFile(rss); err == nil {
		fmt.Sscanf(string(b), "%d", &res.rssKB)
	}
	return res, nil
}
