package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/faultproxy"
	"github.com/banjia-mail/banjia/internal/imapfill"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// foreignFolders are the folders that hold mail of the member's own on the
// target: the inbox and folders the migration writes into.
var foreignFolders = []string{"INBOX", "Archive/2019", "客户/北京"}

// foreignMsg is one message put on the target by someone other than the
// engine, as it must stay.
type foreignMsg struct {
	folder string
	uid    uint32
	kind   string
	body   []byte
	flags  []string // sorted
	date   time.Time
}

// foreignLog is every foreign message of one target mailbox.
type foreignLog struct {
	mu   sync.Mutex
	msgs []foreignMsg
}

func (l *foreignLog) add(m foreignMsg) {
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
}

// TestForeignMailOnTarget: the target mailbox was in use before the move,
// and new mail keeps arriving there while the move runs over connections
// that keep breaking (APPENDs whose answers are lost, in-doubt lookups,
// sweeps). The member's own mail must never be touched: every message that
// did not come from the source is still there under its UID, byte for byte,
// with its flags and INTERNALDATE; every source message is on the target
// exactly once as a copy the migration made; the source is unchanged.
//
// "Exactly once" beside a byte-identical message of the member's own: the
// member's message stays, and the migration adds its own copy, so the
// target holds that content twice, once with the member's flags and once
// with the source's. The migration never takes mail it did not put there
// for its own copy: the member may later delete either one believing the
// other stays, and the two may carry different flags. So the target is
// exactly the foreign messages plus the source mailbox.
//
// Foreign mail put there before the run: new messages (some flagged, one
// with a keyword), a byte-identical copy of a source message with other
// flags, a message with a source message's Message-ID but other bytes, and
// one with a source message's INTERNALDATE and size but other bytes (which
// passes every check but the digest). During the run more arrives, as an
// MX delivers it (INTERNALDATE now) and as a client would put it (with a
// source message's Message-ID, or its date and size with other bytes): a
// look-alike of every message of those folders, so that many arrive above
// the folder's floor while their originals are pending or in doubt.
func TestForeignMailOnTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 500, BadPassword: -1})
	before := w.Sources()
	logs := map[string]*foreignLog{}
	for _, u := range w.Users {
		l := &foreignLog{}
		logs[u.Old] = l
		c := foreignLogin(t, w, u)
		for fi, folder := range foreignFolders {
			src := before[u.Old][folder]
			if len(src) < 3 {
				t.Fatalf("%s: source folder %q has %d messages; the test needs 3", u.Old, folder, len(src))
			}
			if folder != "INBOX" {
				if err := c.Create(folder, nil).Wait(); err != nil {
					t.Fatalf("create %q: %v", folder, err)
				}
			}
			twin := src[len(src)/2]
			i := 100 * fi
			for _, m := range []foreignMsg{
				{kind: "new", body: foreignMail(u.New, folder, i), flags: []string{`\Seen`}, date: time.Now().Add(-48 * time.Hour)},
				{kind: "new", body: foreignMail(u.New, folder, 10+i), flags: []string{`$Foreign`, `\Flagged`}, date: time.Now().Add(-24 * time.Hour)},
				{kind: "new", body: foreignMail(u.New, folder, 20+i), date: time.Now().Add(-time.Hour)},
				{kind: "identical", body: twin.Body, flags: otherFlags(twin.Flags), date: twin.Date},
				{kind: "same Message-ID", body: received(src[0].Body), flags: []string{`\Answered`}, date: time.Now().Add(-2 * time.Hour)},
				{kind: "same date and size", body: altered(src[len(src)-1].Body), date: src[len(src)-1].Date},
			} {
				m.folder = folder
				m.uid = foreignAppend(t, c, m)
				l.add(m)
			}
			// An earlier attempt with another tool copied part of the
			// folder, and the member has worked on those copies since:
			// every fourth message is there byte for byte, some with other
			// flags; every fourth but two has a look-alike with the same
			// INTERNALDATE and size.
			for k := 1; k < len(src); k += 4 {
				m := foreignMsg{folder: folder, kind: "identical (earlier copy)", body: src[k].Body, flags: src[k].Flags, date: src[k].Date}
				if k%8 == 1 {
					m.flags = otherFlags(src[k].Flags)
				}
				m.uid = foreignAppend(t, c, m)
				l.add(m)
				if k+2 < len(src) {
					m := foreignMsg{folder: folder, kind: "same date and size (earlier)", body: altered(src[k+2].Body), date: src[k+2].Date}
					m.uid = foreignAppend(t, c, m)
					l.add(m)
				}
			}
		}
		c.Logout().Wait()
	}

	plan := faultproxy.Plan{Early: 0.1, MeanBytes: 256 << 10, Healthy: 0.05, HalfClose: 0.1, Stall: 0.03, StallFor: 1500 * time.Millisecond}
	sp, dp := faulted(t, w, plan, 11)

	// New mail while the run goes on, straight to the target (the MX has
	// switched), not through the faults.
	stop := make(chan struct{})
	var during atomic.Int64
	var wg sync.WaitGroup
	for _, u := range w.Users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := foreignLogin(t, w, u)
			defer func() { c.Logout().Wait() }()
			// A look-alike of every source message of the folders, the
			// latest first (those are copied last, so most of them arrive
			// above the folder's floor while their originals are pending
			// or in doubt), and new mail in between.
			var plan []foreignMsg
			for k := 0; ; k++ {
				more := false
				for _, folder := range foreignFolders {
					src := before[u.Old][folder]
					if k >= len(src) {
						continue
					}
					more = true
					s := src[len(src)-1-k]
					m := foreignMsg{folder: folder, date: time.Now()}
					if k%3 == 0 {
						m.kind, m.body, m.flags = "same Message-ID during the run", received(s.Body), []string{`\Seen`}
					} else {
						m.kind, m.body, m.date = "same date and size during the run", altered(s.Body), s.Date
					}
					plan = append(plan, m)
					if len(plan)%4 == 0 {
						plan = append(plan, foreignMsg{folder: folder, kind: "new during the run", body: foreignMail(u.New, folder, 1000+len(plan))})
					}
				}
				if !more {
					break
				}
			}
			for _, m := range plan {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				folder := m.folder
				if m.date.IsZero() {
					m.date = time.Now()
				}
				// Dovecot 2.3 may drop a session whose APPEND meets the
				// engine's CREATEs and LIST-STATUS (see migratetest.Count):
				// the delivery is tried again on a new one, as an MX would.
				var err error
				for try := 0; ; try++ {
					if m.uid, err = foreignAppendE(c, m); err == nil {
						break
					}
					c.Close()
					if try == 5 {
						t.Errorf("%s: delivering %s to %q: %v", u.New, m.kind, folder, err)
						return
					}
					t.Logf("%s: delivering to %q: %v; again on a new connection", u.New, folder, err)
					c = foreignLogin(t, w, u)
				}
				logs[u.Old].add(m)
				during.Add(1)
			}
		}()
	}

	counts := map[string]*atomic.Int64{"in-doubt message was stored": {}, "in-doubt message not on the target": {}, "lane retry": {}, "sent again": {}}
	logc := &logCount{counts: counts}
	start := time.Now()
	// The shipped retry settings, as in TestConnectionFaults.
	r := shipped(w, migrate.Config{Accounts: 2, Lanes: 2, Log: slog.New(logc)})
	// A guard against a hang, not a speed target: under -race on a loaded
	// 2-core machine the run once took past 4 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runErr := r.Run(ctx, w.Job)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	sp.SetFaults(false)
	dp.SetFaults(false)
	if runErr != nil {
		t.Fatal(runErr)
	}

	total, foreign := 0, 0
	for _, u := range w.Users {
		a := accounts(t, w)[u.Old]
		if a.State != state.AccountSucceeded || a.Counts.Failed != 0 {
			t.Errorf("%s: %s %+v %q", u.Old, a.State, a.Counts, a.Reason)
		}
		got := w.Target(u)
		foreign += checkForeign(t, u.Old, logs[u.Old].msgs, got)
		failed := t.Failed()
		total += migratetest.SameMail(t, u.Old, before[u.Old], got)
		if !failed && t.Failed() {
			logc.dump(t, u.Old, 80)
		}
	}
	migratetest.Unchanged(t, before, w.Sources())
	sc, dc := sp.Counts(), dp.Counts()
	stored, missed := counts["in-doubt message was stored"].Load(), counts["in-doubt message not on the target"].Load()
	t.Logf("%d source messages, %d foreign (%d delivered during the run), faults %d (source %+v, target %+v), in-doubt lookups: %d found stored, %d not found; %d sent again and swept; %d retries; %s",
		total, foreign, during.Load(), sc.Total()+dc.Total(), sc, dc, stored, missed, counts["sent again"].Load(), counts["lane retry"].Load(), elapsed.Round(time.Millisecond))
	if t.Failed() {
		return
	}
	if during.Load() < 20 {
		t.Errorf("only %d foreign messages arrived during the run; the test proves little", during.Load())
	}
	if stored+missed == 0 {
		t.Errorf("no in-doubt lookup ran; the faults did not reach the in-doubt paths")
	}
	if out := os.Getenv("BANJIA_RELIABILITY_OUT"); out != "" {
		line := fmt.Sprintf("| foreign mail on the target | %d faults injected (target: %d resets, %d before the greeting, %d half-closes, %d stalls); %d in-doubt lookups | %d source messages, %d of the member's own on the target (%d arriving during the run; byte-identical, same Message-ID, same date and size) | every foreign message kept byte for byte with its flags; every source message copied once; job completed in %s | shipped: `--parallel 2 --conns 2`, retry and timeout defaults |\n",
			sc.Total()+dc.Total(), dc.Resets, dc.EarlyResets, dc.HalfCloses, dc.Stalls, stored+missed, total, foreign, during.Load(), elapsed.Round(time.Second))
		os.WriteFile(filepath.Join(out, "foreign.md"), []byte(line), 0o644)
	}
}

// checkForeign fails unless every foreign message is in got under its UID,
// byte for byte with its flags and INTERNALDATE, and removes them from got.
// It returns how many there were.
func checkForeign(t *testing.T, who string, msgs []foreignMsg, got migratetest.Mailbox) int {
	t.Helper()
	for _, f := range msgs {
		list := got[f.folder]
		i := slices.IndexFunc(list, func(m dovecot.SnapMessage) bool { return m.UID == f.uid })
		if i < 0 {
			t.Errorf("%s %q: the member's own message UID %d (%s) is gone from the target", who, f.folder, f.uid, f.kind)
			continue
		}
		m := list[i]
		if !bytes.Equal(m.Body, f.body) {
			t.Errorf("%s %q: the member's own message UID %d (%s) changed", who, f.folder, f.uid, f.kind)
		}
		if strings.Join(m.Flags, " ") != strings.Join(f.flags, " ") {
			t.Errorf("%s %q: the member's own message UID %d (%s) has flags %v, had %v", who, f.folder, f.uid, f.kind, m.Flags, f.flags)
		}
		if !m.Date.Equal(f.date.Truncate(time.Second)) {
			t.Errorf("%s %q: the member's own message UID %d (%s) has INTERNALDATE %s, had %s", who, f.folder, f.uid, f.kind, m.Date, f.date)
		}
		got[f.folder] = slices.Delete(list, i, i+1)
	}
	return len(msgs)
}

func foreignLogin(t *testing.T, w *world, u migratetest.User) *imapclient.Client {
	t.Helper()
	c, err := imapfill.Login(w.Dst.IMAPAddr, u.New, u.NewPW)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func foreignAppend(t *testing.T, c *imapclient.Client, m foreignMsg) uint32 {
	t.Helper()
	uid, err := foreignAppendE(c, m)
	if err != nil {
		t.Fatalf("append foreign %s to %q: %v", m.kind, m.folder, err)
	}
	return uid
}

// foreignAppendE APPENDs m and returns its UID (APPENDUID).
func foreignAppendE(c *imapclient.Client, m foreignMsg) (uint32, error) {
	opts := &imap.AppendOptions{Time: m.date}
	for _, f := range m.flags {
		opts.Flags = append(opts.Flags, imap.Flag(f))
	}
	cmd := c.Append(m.folder, int64(len(m.body)), opts)
	cmd.Write(m.body)
	cmd.Close()
	data, err := cmd.Wait()
	if err == nil && data.UID == 0 {
		err = errors.New("no APPENDUID in the answer")
	}
	if err != nil {
		return 0, err
	}
	return uint32(data.UID), nil
}

// foreignMail is a new message sent to the member at the new address.
func foreignMail(to, folder string, i int) []byte {
	return []byte(fmt.Sprintf("From: friend%d@elsewhere.test\r\nTo: %s\r\nSubject: =?UTF-8?Q?new_mail_%d?=\r\nMessage-ID: <foreign.%d.%s@elsewhere.test>\r\nDate: Mon, 2 Mar 2026 10:%02d:00 +0800\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNot from the old mailbox (%s, %d).\r\n",
		i, to, i, i, strings.ReplaceAll(to, "@", "."), i%60, folder, i))
}

// received is body with one more trace header: the same Message-ID (if
// any), other bytes, as the same message delivered anew.
func received(body []byte) []byte {
	return append([]byte("Received: from mx.new.test by imap.new.test; Mon, 2 Mar 2026 10:00:00 +0800\r\n"), body...)
}

// altered is body with one letter changed: the same size, other bytes.
func altered(body []byte) []byte {
	out := bytes.Clone(body)
	for i := len(out) - 1; i >= 0; i-- {
		if c := out[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			if c == 'x' {
				out[i] = 'y'
			} else {
				out[i] = 'x'
			}
			return out
		}
	}
	panic("no letter to alter")
}

// otherFlags are flags unlike the source message's, sorted.
func otherFlags(flags []string) []string {
	if slices.Contains(flags, `\Flagged`) {
		return []string{`$Foreign`}
	}
	return []string{`$Foreign`, `\Flagged`}
}
