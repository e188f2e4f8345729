package migrate_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
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
// target, and imap processes are killed outright, as a crash or the OOM
// killer would (on the source, and on an sdbox target; a maildir target's
// are only kicked: see serverFaults). Faults come in bursts with quiet gaps
// between them (a server whose processes die without pause is down, not
// faulty, and Dovecot throttles a service whose processes keep dying) from
// the start until the job has copied 90% of its messages, so its late part
// is faulted too. Only faults that hit something count: a kick that found a
// session, a kill of at least one process. The job runs with the engine's
// shipped defaults (retries, backoff), only the accounts and connections
// set, as an admin would with --parallel and --conns. Every fault is
// retried; the job completes with every message on the target exactly
// once, with its flags and date, and the source untouched; with a maildir
// target and an sdbox one.
//
// A killed imap process can leave a saved message the client never heard
// of: its copy is found by the in-doubt lookup, or (sdbox) recovered by the
// server when the next save meets the orphaned file, after the engine has
// sent the message again, and then removed by the engine. Such a copy can
// lack flags it was sent with; the engine sets them again (the target is
// the truth).
func TestServerFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	for _, format := range []string{"sdbox", "maildir"} {
		t.Run(format, func(t *testing.T) { serverFaults(t, format) })
	}
}

// faultsUntil is the share of the job's messages copied after which the
// servers stop breaking sessions: the rest of the job must be able to
// finish once the incident is over.
const faultsUntil = 0.9

// A burst of faults comes each time the job has copied another faultEvery
// of its messages, and is followed by at least quietGap without faults.
const (
	faultEvery = 0.025
	quietGap   = 300 * time.Millisecond
)

func serverFaults(t *testing.T, format string) {
	const accts, perAccount = 3, 2500
	w := newWorld(t, migratetest.Options{Accounts: accts, Messages: perAccount, MaxAttachment: 200 << 10, BadPassword: -1, TargetFormat: format})
	before := w.Sources()

	// progress is the share of the job's messages recorded as copied.
	progress := func() float64 {
		as, err := w.Store.Accounts(w.Job)
		if err != nil {
			return 0
		}
		var n int64
		for _, a := range as {
			n += a.Counts.Imported
		}
		return float64(n) / float64(accts*perAccount)
	}
	// A maildir target's imap process killed while it holds
	// dovecot-uidlist.lock leaves the lock behind, and Dovecot makes every
	// later session of that folder wait until the lock is two minutes old
	// before it overrides it: one kill stalls the job for two minutes,
	// kills throughout the job stall it past any time limit. So a maildir
	// target is faulted by kicks only (its sessions end cleanly, the lock
	// is released), the source by kicks and kills.
	kinds := 4
	if format == "maildir" {
		kinds = 3
	}
	var mu sync.Mutex
	counts := map[string]int{} // faults that hit, by kind
	hit := map[string]int{}    // connections kicked, processes killed, by kind
	late := 0                  // faults after three quarters of the job
	missed := 0                // kicks and kills that found nothing
	var lastAt float64         // progress at the last fault
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 11))
		wait := func(d time.Duration) bool {
			select {
			case <-stop:
				return false
			case <-time.After(d):
				return true
			}
		}
		for milestone := 0.0; milestone < faultsUntil; milestone += faultEvery {
			// The next burst once the job has copied the next share of its
			// messages, however fast it goes.
			for progress() < milestone {
				if !wait(20 * time.Millisecond) {
					return
				}
			}
			for i, n := 0, 4+rng.IntN(5); i < n; i++ {
				if !wait(time.Duration(50+rng.IntN(100)) * time.Millisecond) {
					return
				}
				p := progress()
				if p >= faultsUntil {
					return
				}
				// A fault that finds nothing (the user's lanes are between
				// sessions, waiting to connect again after the last fault)
				// is not one: another is tried a moment later.
				var kind string
				var n int
				for try := 0; try < 8 && n == 0; try++ {
					u := w.Users[rng.IntN(len(w.Users))]
					var err error
					switch rng.IntN(kinds) {
					case 0:
						kind = "source BYE (kick)"
						n, err = w.Src.Kick(u.Old)
					case 1:
						kind = "target BYE (kick)"
						n, err = w.Dst.Kick(u.New)
					case 2:
						kind, n = "source imap process killed", w.Src.KillSessions("imap")
					case 3:
						kind, n = "target imap process killed", w.Dst.KillSessions("imap")
					}
					if err != nil {
						t.Error(err)
						return
					}
					if n == 0 {
						mu.Lock()
						missed++
						mu.Unlock()
						if !wait(time.Duration(40+rng.IntN(40)) * time.Millisecond) {
							return
						}
					}
				}
				if n == 0 {
					continue
				}
				mu.Lock()
				counts[kind]++
				hit[kind] += n
				if p >= 0.75 {
					late++
				}
				lastAt = p
				mu.Unlock()
			}
			// A quiet gap: Dovecot throttles a service whose processes
			// keep dying, which would stop it for up to a minute.
			if !wait(quietGap) {
				return
			}
		}
	}()

	logged := map[string]*atomic.Int64{"interrupted copy of message": {}, "in-doubt message was stored": {}, "set again": {}}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logs := &logCount{counts: logged}
	cfg := migrate.Config{Accounts: accts, Lanes: 2, Log: slog.New(logs)}
	err := shipped(w, cfg).Run(ctx, w.Job)
	close(stop)
	wg.Wait()
	if err != nil {
		logs.dump(t, "", 80)
		t.Fatalf("%v; target log:\n%s", err, w.Dst.Log())
	}
	elapsed := time.Since(start)
	total := 0
	for _, u := range w.Users {
		a := accounts(t, w)[u.Old]
		if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
			t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
		}
		failed := t.Failed()
		total += migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
		if t.Failed() && !failed || a.State != state.AccountSucceeded {
			logs.dump(t, u.Old, 60)
		}
	}
	migratetest.Unchanged(t, before, w.Sources())
	faults := 0
	var parts []string
	for k, n := range counts {
		faults += n
		what := "connections"
		if strings.Contains(k, "killed") {
			what = "processes"
		}
		parts = append(parts, fmt.Sprintf("%d %s (%d %s)", n, k, hit[k], what))
	}
	sort.Strings(parts)
	t.Logf("%s target: %d server faults hit (%s), %d after three quarters of the job (the last at %.0f%% copied); %d found no session",
		format, faults, strings.Join(parts, ", "), late, 100*lastAt, missed)
	if faults < 20 {
		t.Errorf("only %d server faults hit a session during the run", faults)
	}
	// The late part of the job is faulted too, not only its start.
	// (On a quick machine three quarters to 90% of the job is a second or
	// two: room for a burst or two.)
	if late < 1 || lastAt < 0.8 {
		t.Errorf("%d server faults after three quarters of the job, the last at %.0f%% copied; want one at 80%% or later", late, 100*lastAt)
	}
	if t.Failed() {
		t.Logf("target log:\n%s", w.Dst.Log())
		return
	}
	settled := fmt.Sprintf("%d APPENDs whose answer was lost found stored (flags set again on %d of them), %d copies the server recovered after a re-send removed",
		logged["in-doubt message was stored"].Load(), logged["set again"].Load(), logged["interrupted copy of message"].Load())
	settings := fmt.Sprintf("shipped: `--parallel %d --conns %d`, retry and timeout defaults", accts, cfg.Lanes)
	t.Logf("%s target: %d server faults that hit (%s), %d after three quarters of the job, until %.0f%% copied; %s; %d messages, 0 lost, 0 duplicated, flags and dates exact; %s; %s",
		format, faults, strings.Join(parts, ", "), late, 100*faultsUntil, settings, total, settled, elapsed.Round(time.Millisecond))
	if out := os.Getenv("BANJIA_RELIABILITY_OUT"); out != "" {
		line := fmt.Sprintf("| server faults, %s target | %d that hit a session, in bursts until %.0f%% of the job was copied: %s | %d messages, %d accounts | 0 lost, 0 duplicated, exact with flags and dates; %s; job completed in %s | %s |\n",
			format, faults, 100*faultsUntil, strings.Join(parts, ", "), total, len(w.Users), settled, elapsed.Round(time.Second), settings)
		os.WriteFile(filepath.Join(out, "serverfaults-"+format+".md"), []byte(line), 0o644)
	}
}

// TestTargetOverQuota: a target mailbox that fills up fails its account with
// what to do (NO [OVERQUOTA]), the other accounts go on; after the admin
// raises the quota, resuming copies the rest, nothing twice.
func TestTargetOverQuota(t *testing.T) {
	migratetest.NeedsRealServers(t, "a Dovecot quota, raised while the job waits")
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
