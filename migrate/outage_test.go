package migrate_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestDeadServersDoNotHoldThePool: a job of 40 accounts where 10 live on a
// server whose port is closed and 5 on one that never answers a connect (a
// firewall that drops packets). With the shipped settings each of those
// fails within 90 s, naming the step, and the 25 others finish in about the
// time they take alone: a dead server neither holds the accounts copied at
// once nor makes every one of its accounts find out again for a minute.
func TestDeadServersDoNotHoldThePool(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the shipped --connect-for (1 minute)")
	}
	const good, messages = 25, 20
	opts := migratetest.Options{Accounts: good, Messages: messages, BadPassword: -1, Folders: []string{"INBOX", "Sent"}}

	// The 25 alone, for the time they take.
	alone := newWorld(t, opts)
	start := time.Now()
	if err := shipped(alone, migrate.Config{}).Run(context.Background(), alone.Job); err != nil {
		t.Fatal(err)
	}
	tookAlone := time.Since(start)

	w := newWorld(t, opts)
	before := w.Sources()
	closed := closedPort(t)
	silent := blackHole(t)
	// The dead accounts are spread through the list (accounts are taken
	// in the order of their addresses), as a real list would have them.
	var rows []migrate.AccountRow
	for i := 0; i < 15; i++ {
		server := closed
		if i%3 == 2 {
			server = silent
		}
		n := i * good / 15
		rows = append(rows, migrate.AccountRow{Line: i + 1, Old: fmt.Sprintf("u%02d-dead@old.test", n), New: fmt.Sprintf("u%02d-dead@new.test", n),
			OldPassword: "old-pw", NewPassword: "new-pw", Server: server})
	}
	job, err := w.Store.Job(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.AddAccounts(w.Store, job, rows, time.Now()); err != nil {
		t.Fatal(err)
	}

	logs := &logCount{counts: map[string]*atomic.Int64{}}
	start = time.Now()
	err = shipped(w, migrate.Config{Log: slog.New(logs)}).Run(context.Background(), w.Job)
	if err != nil {
		t.Fatal(err)
	}
	var lastGood time.Duration
	for id, a := range accounts(t, w) {
		switch {
		case strings.Contains(id, "-dead@"):
			took := a.Finished.Sub(a.Started)
			step := []string{"cannot connect to " + closed}
			if a.Server == silent {
				// Rarely a try of the silent server ends in an error
				// other than the timeout: the step is still the connect.
				step = []string{"no answer from " + silent + " within 15s", "cannot connect to " + silent}
			}
			if a.State != state.AccountFailed || !containsAny(a.Reason, step) {
				t.Errorf("%s: %s %q, want failed with %q", id, a.State, a.Reason, step)
				logs.dump(t, id, 20)
			}
			if took > 90*time.Second {
				t.Errorf("%s failed after %s, want within 90s", id, took.Round(time.Second))
			}
			t.Logf("%s: failed after %s: %s", id, took.Round(time.Second), a.Reason)
		default:
			if a.State != state.AccountSucceeded {
				t.Errorf("%s: %s %q", id, a.State, a.Reason)
			}
			lastGood = max(lastGood, a.Finished.Sub(start))
		}
	}
	for _, u := range w.Users {
		migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
	}
	// The dead accounts' first tries take places for at most a connect
	// timeout (15 s) each; finding out for a minute per account, as
	// before, made this 4 minutes.
	t.Logf("25 accounts alone: %s; with 15 on dead servers: %s", tookAlone.Round(time.Second), lastGood.Round(time.Second))
	if limit := tookAlone*3/2 + 20*time.Second; lastGood > limit {
		t.Errorf("the 25 accounts on a live server took %s beside the dead ones, %s alone: want at most %s", lastGood.Round(time.Second), tookAlone.Round(time.Second), limit.Round(time.Second))
	}
	if t.Failed() {
		logs.dump(t, "u03-dead@old.test", 40)
	}
}

// closedPort is host:port of a port nobody listens on: connects are
// refused at once.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// blackHole is host:port of a socket whose accept queue is full and never
// drained: the kernel drops further SYNs, so a connect gets no answer at
// all, as behind a firewall that drops packets.
func blackHole(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// One connection fills a backlog of 0.
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c2, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c2.Close()
		t.Fatal("the black hole answered a connect")
	}
	return addr
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
