package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/appendtap"
	"github.com/banjia-mail/banjia/internal/imapfill"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/internal/sealscan"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
)

// countedSource counts the message bodies a source is asked for: a sync
// where nothing is new must ask for none.
type countedSource struct {
	sources.Source
	bodies, lists *atomic.Int64
}

func (s *countedSource) Fetch(ctx context.Context, f mail.Folder, msgs []mail.Message, fn func(*mail.Body) error) error {
	return s.Source.Fetch(ctx, f, msgs, func(b *mail.Body) error {
		s.bodies.Add(1)
		return fn(b)
	})
}

func (s *countedSource) Folders(ctx context.Context) ([]mail.Folder, error) {
	s.lists.Add(1)
	return s.Source.Folders(ctx)
}

func (s *countedSource) Identities(ctx context.Context, f mail.Folder, msgs []mail.Message) error {
	return s.Source.(sources.Identifier).Identities(ctx, f, msgs)
}

// cutoverCounts are what a manager's runs asked of the servers.
type cutoverCounts struct {
	bodies, prefetched, appended, lists atomic.Int64
}

func (c *cutoverCounts) reset() {
	c.lists.Store(0)
	c.bodies.Store(0)
	c.prefetched.Store(0)
	c.appended.Store(0)
}

// countingManager is a manager over the world's state file whose sources
// count the bodies they fetch and whose sink reaches the target through an
// appendtap that counts APPENDs.
func countingManager(t *testing.T, w *world, n *cutoverCounts) *migrate.Manager {
	t.Helper()
	var mu sync.Mutex
	taps := map[string]*appendtap.Tap{}
	cfg := migrate.Config{Accounts: 4, Lanes: 2, RetryBase: 50 * time.Millisecond, RetryFor: 5 * time.Second, ConnectFor: 5 * time.Second}
	cfg.OpenSource = func(ctx context.Context, e mail.Endpoint) (sources.Source, error) {
		s, err := sources.Open(ctx, e)
		if err != nil {
			return nil, err
		}
		cs := &countedSource{Source: s, bodies: &n.bodies, lists: &n.lists}
		return &prefetchCounter{countedSource: cs, n: &n.prefetched}, nil
	}
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		addr := net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
		mu.Lock()
		tap := taps[addr]
		if tap == nil {
			var err error
			if tap, err = appendtap.Start(addr, func(appendtap.Append) { n.appended.Add(1) }); err != nil {
				mu.Unlock()
				return nil, err
			}
			taps[addr] = tap
			t.Cleanup(func() { tap.Close() })
		}
		mu.Unlock()
		e.Host, e.Port = "127.0.0.1", tap.Port()
		return imapsink.Open(ctx, e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := migrate.NewManager(ctx, w.Store, cfg)
	t.Cleanup(func() {
		m.Stop()
		cancel()
	})
	return m
}

// prefetchCounter keeps prefetches apart from the bodies read: a
// prefetched body is read (and counted) by the Fetch that follows.
type prefetchCounter struct {
	*countedSource
	n *atomic.Int64
}

func (s *prefetchCounter) Prefetch(ctx context.Context, f mail.Folder, msgs []mail.Message) {
	s.n.Add(int64(len(msgs)))
	s.countedSource.Source.(sources.Prefetcher).Prefetch(ctx, f, msgs)
}

// newMail is what reaches an old mailbox after the first pass: two
// messages in INBOX and one in a folder that did not exist then.
func newMail(u migratetest.User, round int) map[string][]imapfill.Message {
	msg := func(k int, flags ...string) imapfill.Message {
		d := time.Date(2026, 12, 3, 9, round, k, 0, time.UTC)
		body := fmt.Sprintf("From: sender%d@elsewhere.test\r\nTo: %s\r\nSubject: after the MX switch %d.%d\r\nMessage-ID: <cut-%d-%d-%s>\r\nDate: %s\r\n\r\nThis reached the old server after the first pass (%d.%d).\r\n",
			k, u.Old, round, k, round, k, u.Old, d.Format(time.RFC1123Z), round, k)
		return imapfill.Message{Body: []byte(body), Flags: flags, Date: d}
	}
	return map[string][]imapfill.Message{
		"INBOX":   {msg(1), msg(2, `\Seen`)},
		"Cutover": {msg(3, `\Flagged`)},
	}
}

// deliverNew APPENDs new mail into a user's old mailbox over IMAP, as the
// old server's delivery would.
func deliverNew(t *testing.T, w *world, u migratetest.User, round int) int {
	t.Helper()
	c, err := imapfill.Login(w.Src.IMAPAddr, u.Old, u.SourcePW)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	for folder, msgs := range newMail(u, round) {
		if folder != "INBOX" {
			// Made once; the next round's CREATE says it exists.
			c.Create(folder, nil).Wait()
		}
		if err := imapfill.Append(c, folder, msgs); err != nil {
			t.Fatalf("append to the old %s %s: %v", u.Old, folder, err)
		}
		n += len(msgs)
	}
	return n
}

// syncOf waits for the job's sync number n to end: Wait for a job that
// ends with it, the recorded count for a member-triggered one (the manager
// waits for its members again after a sync, as banjia serve does).
func syncOf(t *testing.T, m *migrate.Manager, job, mode string, n int) {
	t.Helper()
	if mode != state.ModeMember {
		if err := m.Wait(job); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := m.Status(job)
		if err != nil {
			t.Fatal(err)
		}
		if st.Job.Syncs >= n && mode != state.ModeMember {
			return
		}
		if st.Job.Syncs >= n {
			// The sync ended; the job must be back to waiting for members.
			for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				if st, _ := m.Status(job); m.Running(job) && st.Job.State == state.JobRunning {
					return
				}
			}
			st, _ = m.Status(job)
			t.Fatalf("10 s after sync %d the member-triggered job does not wait for its members: %s, running %v", n, st.Job.State, m.Running(job))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("sync %d did not end within 3 minutes", n)
}

// waitStates waits until every account of the job is in a final state.
func waitStates(t *testing.T, m *migrate.Manager, job string) *migrate.Status {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := m.Status(job)
		if err != nil {
			t.Fatal(err)
		}
		done := len(st.Accounts) > 0
		for _, a := range st.Accounts {
			done = done && a.State.Finished()
		}
		if done {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the accounts did not finish within 3 minutes")
	return nil
}

// TestCutoverSync walks a job's whole life in each mode (admin passwords,
// delegated admin, member-triggered) with 20 accounts on Dovecot: the
// first pass; a sync where nothing is new, which lists every account and
// asks the source for no message body; new mail APPENDed into the old
// mailboxes, which the next sync copies exactly (the target equals the
// source byte for byte, and only the new messages were appended); then
// the close, after which no password of any kind can be read from the
// state file with its key, and sync and start are refused with the reason.
func TestCutoverSync(t *testing.T) {
	migratetest.NeedsRealServers(t, "a source master user (delegated) and 20 mailboxes on both sides")
	const admin, adminPW = "migration-admin", "admin-secret-cutover-4711"
	for _, mode := range []string{state.ModePasswords, state.ModeDelegated, state.ModeMember} {
		t.Run(mode, func(t *testing.T) {
			o := migratetest.Options{Accounts: 20, Messages: 12, BadPassword: -1}
			if mode == state.ModeDelegated {
				o.SourceAdmin, o.SourceAdminPW = admin, adminPW
			}
			w := newWorld(t, o)
			secrets := []string{}
			for _, u := range w.Users {
				secrets = append(secrets, u.OldPW, u.NewPW)
			}
			switch mode {
			case state.ModeDelegated:
				j, err := w.Store.Job(w.Job)
				if err != nil {
					t.Fatal(err)
				}
				j.Mode, j.Source.User = state.ModeDelegated, admin
				j.Delegation = &mail.Delegation{Method: mail.DelegateAuthzID}
				if j.SourceAdminSecret, err = w.Store.Seal(adminPW); err != nil {
					t.Fatal(err)
				}
				if err := w.Store.PutJob(j); err != nil {
					t.Fatal(err)
				}
				as, _ := w.Store.Accounts(w.Job)
				for _, a := range as {
					a.SourceSecret = nil
				}
				if err := w.Store.PutAccounts(w.Job, as...); err != nil {
					t.Fatal(err)
				}
				secrets = append(secrets, adminPW)
			case state.ModeMember:
				// The window stays open: the job waits for more members
				// after the first pass, as in banjia serve.
				memberJob(t, w, time.Now().Add(time.Hour))
				for _, u := range w.Users {
					enroll(t, w, u)
				}
			}
			before := w.Sources()
			total := 0
			for _, mb := range before {
				for _, msgs := range mb {
					total += len(msgs)
				}
			}
			var n cutoverCounts
			m := countingManager(t, w, &n)

			// First pass.
			if err := m.Start(w.Job); err != nil {
				t.Fatal(err)
			}
			if mode != state.ModeMember {
				if err := m.Wait(w.Job); err != nil {
					t.Fatal(err)
				}
			}
			st := waitStates(t, m, w.Job)
			for _, a := range st.Accounts {
				if a.State != state.AccountSucceeded {
					t.Fatalf("first pass %s: %s %q", a.ID, a.State, a.Reason)
				}
			}
			if st.Phase != state.PhaseFirstPass {
				t.Fatalf("phase after the first pass: %q", st.Phase)
			}
			if got := n.appended.Load(); got != int64(total) {
				t.Fatalf("first pass appended %d messages, the sources hold %d", got, total)
			}
			for _, u := range w.Users {
				migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
			}

			// A sync right away: nothing is new.
			n.reset()
			if err := m.Sync(w.Job, "test"); err != nil {
				t.Fatal(err)
			}
			syncOf(t, m, w.Job, mode, 1)
			if b, p, a := n.bodies.Load(), n.prefetched.Load(), n.appended.Load(); b != 0 || p != 0 || a != 0 {
				t.Fatalf("a sync with nothing new fetched %d bodies, prefetched %d, appended %d", b, p, a)
			}
			st, _ = m.Status(w.Job)
			if st.Phase != state.PhaseSynced || st.Job.Syncs != 1 || st.Job.Synced.IsZero() {
				t.Fatalf("after a sync: phase %q, %d syncs at %v", st.Phase, st.Job.Syncs, st.Job.Synced)
			}
			for _, a := range st.Accounts {
				if a.State != state.AccountSucceeded {
					t.Fatalf("sync %s: %s %q", a.ID, a.State, a.Reason)
				}
			}
			// Every account logged in and listed its folders again.
			if l := n.lists.Load(); l < int64(len(w.Users)) {
				t.Fatalf("a sync of %d accounts listed folders %d times", len(w.Users), l)
			}

			// The MX is switched, but mail still reaches the old server.
			for round := 1; round <= 2; round++ {
				added := 0
				for _, u := range w.Users {
					added += deliverNew(t, w, u, round)
				}
				targetBefore := map[string]int{}
				for _, u := range w.Users {
					targetBefore[u.Old] = migratetest.Count(t, w.Dst, u.New, u.NewPW)
				}
				n.reset()
				evs, _ := w.Store.Events(w.Job, 0, 0)
				last := evs[len(evs)-1].Seq
				if err := m.Sync(w.Job, "test"); err != nil {
					t.Fatal(err)
				}
				syncOf(t, m, w.Job, mode, round+1)
				// The members are not told again that their move finished:
				// the sync has its own events.
				evs, _ = w.Store.Events(w.Job, last, 0)
				kinds := map[string]int{}
				for _, e := range evs {
					kinds[e.Kind]++
					if e.Kind == "account.synced" && !strings.Contains(e.Message, "synced: 3 new messages copied") {
						t.Fatalf("sync event: %s", e.Message)
					}
				}
				if kinds["account.synced"] != len(w.Users) || kinds["account.succeeded"] != 0 || kinds["job.synced"] != 1 || kinds["job.completed"] != 0 {
					t.Fatalf("events of sync %d: %v", round+1, kinds)
				}
				if a, b := n.appended.Load(), n.bodies.Load(); a != int64(added) || b != int64(added) {
					t.Fatalf("sync %d: %d new messages on the sources; %d bodies fetched, %d appended", round+1, added, b, a)
				}
				after := w.Sources()
				for _, u := range w.Users {
					got := w.Target(u)
					migratetest.SameMail(t, u.Old, after[u.Old], got)
					if c := migratetest.Count(t, w.Dst, u.New, u.NewPW); c != targetBefore[u.Old]+3 {
						t.Fatalf("%s: %d messages on the target before the sync, %d after; 3 were new", u.Old, targetBefore[u.Old], c)
					}
					if len(got["Cutover"]) != round {
						t.Fatalf("%s: the new folder holds %d messages after sync %d", u.Old, len(got["Cutover"]), round+1)
					}
				}
				st, _ = m.Status(w.Job)
				if st.Job.Syncs != round+1 {
					t.Fatalf("%d syncs recorded, want %d", st.Job.Syncs, round+1)
				}
				for _, a := range st.Accounts {
					if a.State != state.AccountSucceeded || a.Counts.Imported != a.Counts.ToImport {
						t.Fatalf("sync %d %s: %s %+v %q", round+1, a.ID, a.State, a.Counts, a.Reason)
					}
				}
			}

			// Close: every credential goes.
			if err := m.Close(w.Job, "test"); err != nil {
				t.Fatal(err)
			}
			err := m.Sync(w.Job, "test")
			if !errors.Is(err, migrate.ErrClosed) || !strings.Contains(err.Error(), "was closed at") || !strings.Contains(err.Error(), "no longer starts or syncs") {
				t.Fatalf("sync after close: %v", err)
			}
			if err := m.Start(w.Job); !errors.Is(err, migrate.ErrClosed) {
				t.Fatalf("start after close: %v", err)
			}
			if err := m.Control(w.Job, "resume", "test"); !errors.Is(err, migrate.ErrClosed) {
				t.Fatalf("resume after close: %v", err)
			}
			st, _ = m.Status(w.Job)
			if st.Phase != state.PhaseClosed || !strings.HasPrefix(st.Job.PhaseText("en"), "closed at ") {
				t.Fatalf("phase after close: %q (%s)", st.Phase, st.Job.PhaseText("en"))
			}
			m.Stop()
			// The file as it is now, still open: the close scrubbed it at once.
			if got, err := sealscan.Recoverable(w.Path, secrets); err != nil || len(got) > 0 {
				t.Fatalf("after close, passwords can be read from the open state file: %q (%v)", got, err)
			}
			if err := w.Store.Close(); err != nil {
				t.Fatal(err)
			}
			if got, err := sealscan.Recoverable(w.Path, secrets); err != nil || len(got) > 0 {
				t.Fatalf("after close, passwords can be read from the state file: %q (%v)", got, err)
			}
			w.Open() // for the cleanup's Close
		})
	}
}
