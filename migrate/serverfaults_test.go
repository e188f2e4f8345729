package migrate_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestServerFaults: while a job runs, the servers themselves break its
// sessions: an admin kicks users (Dovecot sends BYE) on the source and the
// target, and imap processes on both are killed outright, as a crash or the
// OOM killer would, for 8 seconds. Every fault is retried; the job completes with every
// message on the target exactly once and the source untouched.
//
// With an sdbox target a killed imap process can leave a saved file the
// index does not know; Dovecot recovers it when the next save meets it, by
// rebuilding the folder's index, after the engine has already sent that
// message again. The engine then removes the recovered copy. The rebuild
// itself resets the folder's flags (sdbox keeps flags only in the index), a
// loss by the server that no client can prevent; so there bodies are
// compared, and with a maildir target everything, flags included.
func TestServerFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	for _, format := range []string{"sdbox"} {
		t.Run(format, func(t *testing.T) { serverFaults(t, format) })
	}
}

func serverFaults(t *testing.T, format string) {
	w := newWorld(t, migratetest.Options{Accounts: 3, Messages: 1500, MaxAttachment: 200 << 10, BadPassword: -1, TargetFormat: format})
	before := w.Sources()

	var mu sync.Mutex
	counts := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 11))
		// Faults come for a while, as in an incident, then stop: a server
		// that crashes forever is down, and Dovecot itself throttles a
		// service whose processes keep dying, so the tail of the job must
		// be able to finish once the incident is over.
		until := time.Now().Add(8 * time.Second)
		for time.Now().Before(until) {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(50+rng.IntN(100)) * time.Millisecond):
			}
			u := w.Users[rng.IntN(len(w.Users))]
			var kind string
			var err error
			switch rng.IntN(4) {
			case 0:
				kind, err = "source BYE (kick)", w.Src.Kick(u.Old)
			case 1:
				kind, err = "target BYE (kick)", w.Dst.Kick(u.New)
			case 2:
				kind = "source imap process killed"
				if w.Src.KillSessions("imap") == 0 {
					continue
				}
			case 3:
				kind = "target imap process killed"
				if w.Dst.KillSessions("imap") == 0 {
					continue
				}
			}
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[kind]++
			mu.Unlock()
		}
	}()

	logged := map[string]*atomic.Int64{"interrupted copy of message": {}, "in-doubt message was stored": {}}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logs := &logCount{counts: logged}
	err := runner(w, migrate.Config{Accounts: 3, Lanes: 2, Retries: 20, RetryBase: 200 * time.Millisecond, Log: slog.New(logs)}).Run(ctx, w.Job)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	total := 0
	for _, u := range w.Users {
		a := accounts(t, w)[u.Old]
		if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
			t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
		}
		failed := t.Failed()
		if format == "sdbox" {
			total += migratetest.SameBodies(t, u.Old, before[u.Old], w.Target(u))
		} else {
			total += migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
		}
		if t.Failed() && !failed || a.State != state.AccountSucceeded {
			logs.dump(t, u.Old, 60)
		}
	}
	migratetest.Unchanged(t, before, w.Sources())
	faults := 0
	var parts []string
	for k, n := range counts {
		faults += n
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	if faults < 20 {
		t.Errorf("only %d server faults injected during the run", faults)
	}
	if t.Failed() {
		t.Logf("target log:\n%s", w.Dst.Log())
		return
	}
	settled := fmt.Sprintf("%d APPENDs whose answer was lost found stored, %d copies the server recovered after a re-send removed",
		logged["in-doubt message was stored"].Load(), logged["interrupted copy of message"].Load())
	t.Logf("%s target: %d server faults (%s); %d messages, 0 lost, 0 duplicated; %s; %s", format, faults, strings.Join(parts, ", "), total, settled, elapsed.Round(time.Millisecond))
	if out := os.Getenv("BANJIA_RELIABILITY_OUT"); out != "" {
		what := "exact with flags and dates"
		if format == "sdbox" {
			what = "bodies and dates exact (flags: see above)"
		}
		line := fmt.Sprintf("| server faults, %s target | %d during the run: %s | %d messages, %d accounts | 0 lost, 0 duplicated, %s; %s; job completed in %s |\n",
			format, faults, strings.Join(parts, ", "), total, len(w.Users), what, settled, elapsed.Round(time.Second))
		os.WriteFile(filepath.Join(out, "serverfaults-"+format+".md"), []byte(line), 0o644)
	}
}

// TestTargetOverQuota: a target mailbox that fills up fails its account with
// what to do (NO [OVERQUOTA]), the other accounts go on; after the admin
// raises the quota, resuming copies the rest, nothing twice.
func TestTargetOverQuota(t *testing.T) {
	w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 40, BadPassword: -1,
		TargetConfig: "mail_plugins = $mail_plugins quota\nplugin {\n  quota = count:User quota\n  quota_vsizes = yes\n  quota_rule = *:storage=3M\n}\n"})
	// The second account holds more than the quota allows.
	var big []dovecot.Message
	for _, m := range mailgen.Mailbox(w.Users[1].Old, mailgen.Options{Seed: 99, Messages: 30, MaxAttachment: 400 << 10, Folders: []string{"Big"}}) {
		big = append(big, dovecot.Message{Body: append(m.Body, []byte(strings.Repeat("x", 150<<10))...), Flags: m.Flags, Date: m.Date})
	}
	if err := w.Src.Deliver(w.Users[1].Old, "Big", big); err != nil {
		t.Fatal(err)
	}
	before := w.Sources()
	if err := runner(w, migrate.Config{Accounts: 2, Lanes: 2}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	as := accounts(t, w)
	if a := as[w.Users[0].Old]; a.State != state.AccountSucceeded {
		t.Fatalf("small account: %s %q", a.State, a.Reason)
	}
	migratetest.SameMail(t, w.Users[0].Old, before[w.Users[0].Old], w.Target(w.Users[0]))
	full := as[w.Users[1].Old]
	if full.State != state.AccountFailed || !strings.Contains(full.Reason, "the target mailbox is full (over quota): raise its quota and resume") {
		t.Fatalf("full account: %s %q", full.State, full.Reason)
	}
	copied := migratetest.Count(t, w.Dst, w.Users[1].New, w.Users[1].NewPW)

	// The admin raises the quota; the account is resumed with its password.
	if err := w.Dst.Reconfigure("plugin {\n  quota_rule = *:storage=100M\n}"); err != nil {
		t.Fatal(err)
	}
	w.Resupply()
	if err := runner(w, migrate.Config{Accounts: 2, Lanes: 2, Rerun: true}).Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	if a := accounts(t, w)[w.Users[1].Old]; a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
		t.Fatalf("after raising the quota: %s %+v %q", a.State, a.Counts, a.Reason)
	}
	n := migratetest.SameMail(t, w.Users[1].Old, before[w.Users[1].Old], w.Target(w.Users[1]))
	t.Logf("%d of %d messages fit before the quota; the rest after it was raised, none twice", copied, n)
	migratetest.Unchanged(t, before, w.Sources())
}
