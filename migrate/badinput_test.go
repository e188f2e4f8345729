package migrate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/internal/appendtap"
	"github.com/banjia-mail/banjia/internal/badmail"
	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/state"
)

// The source keeps "/" inside a folder name (its delimiter is ".") through
// Dovecot's listescape plugin, as some real Dovecot installations do.
const badSourceConfig = `mail_plugins = $mail_plugins listescape
plugin {
  listescape_char = "\\"
}
`

// The target refuses messages over badmail.Limit: APPEND gets
// "NO [LIMIT] Mail size is larger than the maximum size allowed by server
// configuration" (Dovecot 2.3's quota plugin; count backend, no quota rule
// but the per-message size).
var badTargetConfig = fmt.Sprintf(`mail_plugins = $mail_plugins quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_rule = *:storage=0
  quota_max_mail_size = %dk
}
`, badmail.Limit>>10)

// badItem is one corpus item as placed on the source.
type badItem struct {
	name, kind string
	account    int
	want       badmail.Want
	why        string
	folder     string // IMAP name on the source ("." delimiter)
	target     string // expected target folder; "" when the target refuses the name
	isFolder   bool   // a folder-name item (its probes are its messages)
	msgs       []badMsg
	outcome    string
	note       string // how the source serves it, when not as delivered
}

type badMsg struct {
	uid  uint32
	body []byte // as generated
}

// TestBadInputs copies the badmail corpus (>= 100 malformed messages and
// awkward folder names) from a Dovecot maildir source to a Dovecot sdbox
// target with a message size limit, and checks item by item that each is
// on the target byte for byte with its flags and date, or failed with a
// reason naming its folder and UID; that nothing is duplicated, the job
// completes, a re-run appends nothing and the source is unchanged.
func TestBadInputs(t *testing.T) {
	migratetest.NeedsRealServers(t, "what a Dovecot source serves and a Dovecot target refuses or rewrites")
	corpus := badmail.New()
	if n := corpus.Len(); n < 100 {
		t.Fatalf("corpus has %d items; the suite promises at least 100", n)
	}
	src := dovecot.StartT(t, dovecot.Options{ExtraConfig: badSourceConfig})
	dst := dovecot.StartT(t, dovecot.Options{Format: "sdbox", ExtraConfig: badTargetConfig})
	w := &migratetest.World{T: t, Src: migratetest.FromDovecot(src), Dst: migratetest.FromDovecot(dst), Job: "bad"}
	// Account 0 holds the corpus; account 1 the folder names the target
	// refuses (see badmail.Folder.Group).
	for i, name := range []string{"bad", "refused"} {
		u := migratetest.User{Old: name + "@old.test", New: name + "@new.test", OldPW: fmt.Sprintf("old-%d", i), NewPW: fmt.Sprintf("new-%d", i)}
		if err := src.AddUser(u.Old, u.OldPW); err != nil {
			t.Fatal(err)
		}
		if err := dst.AddUser(u.New, u.NewPW); err != nil {
			t.Fatal(err)
		}
		w.Users = append(w.Users, u)
	}
	// A mailbox outside the job, to learn what the target makes of each message.
	if err := dst.AddUser(badScratchUser, badScratchPW); err != nil {
		t.Fatal(err)
	}
	items := badPlaceCorpus(t, w, corpus)

	before := badSources(t, w)
	for _, it := range items {
		got := before[w.Users[it.account].Old][it.folder]
		for _, m := range it.msgs {
			if sm := badFindUID(got, m.uid); sm == nil {
				t.Fatalf("item %s: the source has no UID %d in %q", it.name, m.uid, it.folder)
			} else if string(sm.Body) != string(m.body) {
				// The served bytes are the reference; say how they differ.
				if bytes.Equal(sm.Body, bytes.ReplaceAll(m.body, []byte{0}, []byte{0x80})) {
					it.note = "the source serves its NUL bytes as 0x80"
				} else {
					it.note = fmt.Sprintf("the source serves %d bytes for the %d delivered", len(sm.Body), len(m.body))
				}
			}
		}
	}

	w.Path = filepath.Join(t.TempDir(), "banjia.db")
	w.Open()
	t.Cleanup(func() { w.Store.Close() })
	job := &state.Job{ID: w.Job, State: state.JobCreated, Created: time.Now(),
		Source: migratetest.Endpoint(src.IMAPAddr), Target: migratetest.Endpoint(dst.IMAPAddr)}
	if err := w.Store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	var accts []*state.Account
	for _, u := range w.Users {
		a := &state.Account{ID: u.Old, Source: u.Old, Target: u.New, State: state.AccountNotStarted}
		a.SourceSecret, _ = w.Store.Seal(u.OldPW)
		a.TargetSecret, _ = w.Store.Seal(u.NewPW)
		accts = append(accts, a)
	}
	if err := w.Store.PutAccounts(w.Job, accts...); err != nil {
		t.Fatal(err)
	}

	rec := &badSentLog{sent: map[badKey]int{}}
	cfg := migrate.Config{Lanes: 2, Retries: 3, RetryBase: 10 * time.Millisecond, BatchMessages: 16}
	runStart := time.Now()
	badRun(t, w, cfg, rec, "first run")
	// The run went through the pipelined path the binary takes (LITERAL+,
	// several APPENDs on the wire before the first answer), not one APPEND
	// per round trip.
	if rec.maxInFlight < 2 {
		t.Errorf("at most %d APPEND in flight on a target connection: the pipelined path was not exercised", rec.maxInFlight)
	}
	var facts []string // what the summary row may claim
	if j, _ := w.Store.Job(w.Job); j.State != state.JobCompleted {
		t.Errorf("job state %s after the run, want %s", j.State, state.JobCompleted)
		facts = append(facts, "job ended "+string(j.State))
	} else {
		facts = append(facts, "job completed")
	}
	as := accounts(t, w)
	for _, u := range w.Users {
		a := as[u.Old]
		switch {
		case a.State == state.AccountSucceeded:
		case a.State == state.AccountPartial && a.Counts.Failed > 0 && a.Reason != "":
			t.Logf("%s finished with failures: %s", u.Old, a.Reason)
		case a.State == state.AccountFailed && a.Reason != "":
			t.Logf("%s failed: %s", u.Old, a.Reason)
		default:
			t.Errorf("%s ended %s with reason %q; want succeeded, or failed with a reason", u.Old, a.State, a.Reason)
		}
	}

	// Judge every item.
	failures := badFailedEvents(t, w)
	targets := map[int]map[string][]dovecot.SnapMessage{}
	left := map[int]map[string]map[badKey]int{}
	for i, u := range w.Users {
		targets[i], _ = badSnapshot(t, dst, u.New, u.NewPW)
		left[i] = map[string]map[badKey]int{}
		for name, msgs := range targets[i] {
			left[i][name] = map[badKey]int{}
			for _, m := range msgs {
				left[i][name][badKeyOf(m)]++
			}
		}
	}
	norm := badNormalForms(t, w, items, before)
	claimed := map[int]map[string]bool{0: {}, 1: {}}
	for _, it := range items {
		if it.target != "" {
			claimed[it.account][it.target] = true
		}
	}
	exact, normalised, failed, lost := 0, 0, 0, 0
	wantDone, wantFailed := map[int]int64{}, map[int]int64{} // messages, by account
	for _, it := range items {
		who := w.Users[it.account].Old
		var outcomes []string
		for _, m := range it.msgs {
			sm := badFindUID(before[who][it.folder], m.uid)
			k := badKeyOf(*sm)
			tf := it.target
			if tf == "" {
				// A refused name: any target folder no other source folder owns.
				for name, set := range left[it.account] {
					if !claimed[it.account][name] && set[k] > 0 {
						tf = name
						break
					}
				}
			}
			reason, isFailed := failures[badFailKey(who, it.folder, m.uid)]
			if !isFailed {
				reason, isFailed = failures[badFailKey(who, it.folder, 0)]
			}
			renamed := ""
			if it.target == "" {
				renamed = fmt.Sprintf(", as %q", tf)
			}
			nf, nk, isNormal := norm.find(*sm, left[it.account][tf], runStart)
			switch {
			case tf != "" && left[it.account][tf][k] > 0:
				left[it.account][tf][k]--
				if isFailed {
					t.Errorf("item %s (%q UID %d): on the target, yet also reported failed: %s", it.name, it.folder, m.uid, reason)
				}
				outcomes = append(outcomes, "migrated exactly"+renamed)
				wantDone[it.account]++
			case isNormal:
				// The target rewrote what it was given, as it does for any client.
				left[it.account][tf][nk]--
				if rec.sent[k] == 0 {
					t.Errorf("item %s (%q UID %d): the target holds its normal form, but the engine did not send the source's bytes, flags and date", it.name, it.folder, m.uid)
				}
				outcomes = append(outcomes, "migrated"+renamed+"; sent byte for byte, stored by the target in its normal form ("+nf+")")
				wantDone[it.account]++
			case isFailed:
				outcomes = append(outcomes, "failed: "+reason)
				wantFailed[it.account]++
			default:
				where := ""
				for name, set := range left[it.account] {
					if set[k] > 0 {
						where = fmt.Sprintf(" (a copy is in target folder %q instead of %q)", name, tf)
					}
				}
				where += badDiffers(*sm, targets[it.account][tf])
				label := "LOST: not on the target, and no failure names it"
				if a := as[who]; a.State == state.AccountFailed {
					label = fmt.Sprintf("LOST: not copied, and no failure names it; its account failed (%s)", a.Reason)
				}
				t.Errorf("item %s (%s %q UID %d): %s%s", it.name, who, it.folder, m.uid, label, where)
				outcomes = append(outcomes, label)
			}
		}
		it.outcome = strings.Join(slices.Compact(outcomes), "; ")
		switch {
		case strings.Contains(it.outcome, "LOST"):
			lost++
		case strings.Contains(it.outcome, "normal form"):
			normalised++
			if it.want == badmail.Fail {
				t.Errorf("item %s cannot be held by the target (%s), yet it %s", it.name, it.why, it.outcome)
			}
		case strings.HasPrefix(it.outcome, "failed"):
			failed++
			if it.want == badmail.Exact && it.target != "" {
				t.Errorf("item %s: the target can hold it, but it %s", it.name, it.outcome)
			}
			if it.why != "" && !strings.Contains(strings.ToLower(it.outcome), strings.ToLower(it.why)) {
				t.Errorf("item %s: unclear reason (it does not say %q): %s", it.name, it.why, it.outcome)
			}
		default:
			exact++
			if it.want == badmail.Fail {
				t.Errorf("item %s cannot be held by the target (%s), yet it %s", it.name, it.why, it.outcome)
			}
		}
	}
	duplicated := 0
	for i, folders := range left {
		for name, set := range folders {
			for _, n := range set {
				if n > 0 {
					duplicated += n
					t.Errorf("%s: target folder %q holds %d message(s) beyond the source's (duplicated or stray)", w.Users[i].New, name, n)
				}
			}
		}
	}
	// The account's counts agree with the items.
	for i, u := range w.Users {
		a := as[u.Old]
		if a.Counts.Failed != wantFailed[i] || a.Counts.Imported != wantDone[i] {
			t.Errorf("%s: counts %+v; the items say %d imported, %d failed", u.Old, a.Counts, wantDone[i], wantFailed[i])
		}
		// 搬家成功 only when every message is on the target.
		if wantFailed[i] > 0 && a.State != state.AccountPartial {
			t.Errorf("%s: %d messages not copied, yet the account reads %s (%q)", u.Old, wantFailed[i], a.State, a.Reason)
		}
		if wantFailed[i] == 0 && a.State != state.AccountSucceeded {
			t.Errorf("%s: every message copied, yet the account reads %s (%q)", u.Old, a.State, a.Reason)
		}
	}

	// A re-run appends nothing (the failed messages are tried again and refused again).
	w.Resupply()
	rec.ok.Store(0)
	cfg.Rerun = true
	badRun(t, w, cfg, rec, "re-run")
	if n := rec.ok.Load(); n != 0 {
		t.Errorf("re-run appended %d messages", n)
		facts = append(facts, fmt.Sprintf("re-run appended %d", n))
	} else {
		facts = append(facts, "re-run appended nothing")
	}
	for i, u := range w.Users {
		again, _ := badSnapshot(t, dst, u.New, u.NewPW)
		for name, msgs := range again {
			if len(msgs) != len(targets[i][name]) {
				t.Errorf("%s: re-run changed target folder %q from %d to %d messages", u.New, name, len(targets[i][name]), len(msgs))
			}
		}
	}
	after := badSources(t, w)
	migratetest.Unchanged(t, before, after)
	if badSameSource(before, after) {
		facts = append(facts, "source unchanged")
	} else {
		facts = append(facts, "SOURCE CHANGED")
	}
	for _, it := range items {
		if it.note != "" {
			it.outcome += " (" + it.note + ")"
		}
	}
	badReport(t, corpus, items, exact, normalised, failed, lost, duplicated, strings.Join(facts, ", "))
}

// badPlaceCorpus puts the corpus on the source: message folders through
// Deliver (maildir files written byte for byte), folder-name items over
// IMAP (CREATE and APPEND, as a mail client would make them).
func badPlaceCorpus(t *testing.T, w *migratetest.World, c *badmail.Corpus) []*badItem {
	t.Helper()
	delim := w.Src.Delimiter()
	var items []*badItem
	var order []string
	byFolder := map[string][]dovecot.Message{}
	for _, m := range c.Messages {
		f := strings.Join(m.Folder, "/")
		if _, ok := byFolder[f]; !ok {
			order = append(order, f)
		}
		byFolder[f] = append(byFolder[f], dovecot.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
		// A fresh folder gives UIDs 1, 2, ... in delivery order.
		it := &badItem{name: m.Name, kind: m.Kind, want: m.Want, why: m.Why, folder: badmail.IMAPName(m.Folder, delim),
			target: strings.Join(m.Folder, "/"), msgs: []badMsg{{uid: uint32(len(byFolder[f])), body: m.Body}}}
		items = append(items, it)
	}
	for _, f := range order {
		if err := w.Src.Deliver(w.Users[0].Old, f, byFolder[f]); err != nil {
			t.Fatal(err)
		}
	}
	clients := map[int]*imapclient.Client{}
	for _, f := range c.Folders {
		acct := 0
		if f.Group == "refused" {
			acct = 1
		}
		cl := clients[acct]
		if cl == nil {
			var err error
			if cl, err = imapclient.DialInsecure(w.Src.IMAPAddr, nil); err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			u := w.Users[acct]
			if err := cl.Login(u.Old, u.OldPW).Wait(); err != nil {
				t.Fatal(err)
			}
			clients[acct] = cl
		}
		name := badmail.IMAPName(f.Levels, delim)
		if err := cl.Create(name, nil).Wait(); err != nil {
			t.Fatalf("folder item %s: the source refuses to create %q: %v", f.Name, name, err)
		}
		it := &badItem{name: f.Name, kind: "folder names", account: acct, folder: name, target: f.Target, isFolder: true}
		for _, m := range f.Probes {
			cmd := cl.Append(name, int64(len(m.Body)), &imap.AppendOptions{Flags: badFlags(m.Flags), Time: m.Date})
			if _, err := cmd.Write(m.Body); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := cmd.Wait()
			if err != nil {
				t.Fatalf("folder item %s: append to %q: %v", f.Name, name, err)
			}
			it.msgs = append(it.msgs, badMsg{uid: uint32(data.UID), body: m.Body})
		}
		items = append(items, it)
	}
	return items
}

func badFlags(fs []string) []imap.Flag {
	var out []imap.Flag
	for _, f := range fs {
		out = append(out, imap.Flag(f))
	}
	return out
}

// badRun runs the job with a deadline: a stuck job fails the test with
// the goroutines' stacks instead of hanging it.
func badRun(t *testing.T, w *migratetest.World, cfg migrate.Config, rec *badSentLog, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	// The real sink, pipelining as the binary does; what reaches the
	// target is recorded on the wire.
	tap, err := appendtap.Start(w.Dst.IMAPAddr, func(a appendtap.Append) {
		fl := slices.Clone(a.Flags)
		slices.Sort(fl)
		rec.mu.Lock()
		rec.sent[badKeyOf(dovecot.SnapMessage{Body: a.Body, Flags: fl, Date: a.Date})]++
		rec.mu.Unlock()
		rec.ok.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		tap.Close()
		rec.mu.Lock()
		rec.maxInFlight = max(rec.maxInFlight, tap.MaxInFlight())
		rec.mu.Unlock()
	}()
	cfg.OpenSink = func(ctx context.Context, e mail.Endpoint) (sinks.Sink, error) {
		e.Host, e.Port = "127.0.0.1", tap.Port()
		return imapsink.Open(ctx, e)
	}
	err = runner(w, cfg).Run(ctx, w.Job)
	if ctx.Err() != nil {
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("%s: the job is stuck: still running after %s (%v)", what, time.Since(start).Round(time.Second), err)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: %s, %d appended", what, time.Since(start).Round(time.Millisecond), rec.ok.Load())
}

// badSentLog records what the engine handed the target in APPENDs the target
// accepted: bytes, flags and date, as keys.
type badSentLog struct {
	mu   sync.Mutex
	sent map[badKey]int
	ok   atomic.Int64
	// maxInFlight is the most APPENDs seen in flight at once on one
	// target connection.
	maxInFlight int64
}

// badSnapshot reads a mailbox keyed by the server's own folder names: the
// source's "a/b" (one level) and "a.b" (two) must not be merged as
// migratetest.Snapshot's delimiter translation would.
func badSnapshot(t *testing.T, s *dovecot.Server, user, pw string) (migratetest.Mailbox, string) {
	t.Helper()
	m, delim, err := dovecot.Snapshot(s.IMAPAddr, user, pw)
	if err != nil {
		t.Fatalf("snapshot %s: %v", user, err)
	}
	return migratetest.Mailbox(m), delim
}

func badSources(t *testing.T, w *migratetest.World) map[string]migratetest.Mailbox {
	out := map[string]migratetest.Mailbox{}
	for _, u := range w.Users {
		out[u.Old], _ = badSnapshot(t, w.Src.Server, u.Old, u.OldPW)
	}
	return out
}

// badDiffers describes the target message most like a missing source message:
// same bytes with other flags or date, or same date and flags with other bytes.
func badDiffers(want dovecot.SnapMessage, in []dovecot.SnapMessage) string {
	for _, m := range in {
		if string(m.Body) == string(want.Body) {
			return fmt.Sprintf("; the target has the same bytes with flags %v date %s (source: %v %s)", m.Flags, m.Date.UTC(), want.Flags, want.Date.UTC())
		}
	}
	for _, m := range in {
		if m.Date.Unix() == want.Date.Unix() && slices.Equal(m.Flags, want.Flags) {
			i := 0
			for i < len(m.Body) && i < len(want.Body) && m.Body[i] == want.Body[i] {
				i++
			}
			end := func(b []byte) []byte { return b[i:min(len(b), i+16)] }
			return fmt.Sprintf("; the target has one with its date and flags but %d bytes instead of %d, first difference at byte %d: %q vs source %q", len(m.Body), len(want.Body), i, end(m.Body), end(want.Body))
		}
	}
	return ""
}

// badSameSource says whether two source snapshots hold the same folders,
// UIDs, bytes and flags.
func badSameSource(a, b map[string]migratetest.Mailbox) bool {
	if len(a) != len(b) {
		return false
	}
	for who, am := range a {
		bm := b[who]
		if len(am) != len(bm) {
			return false
		}
		for name, msgs := range am {
			other, ok := bm[name]
			if !ok || len(other) != len(msgs) {
				return false
			}
			for i := range msgs {
				if msgs[i].UID != other[i].UID || !bytes.Equal(msgs[i].Body, other[i].Body) || !slices.Equal(msgs[i].Flags, other[i].Flags) {
					return false
				}
			}
		}
	}
	return true
}

func badFindUID(msgs []dovecot.SnapMessage, uid uint32) *dovecot.SnapMessage {
	for i := range msgs {
		if msgs[i].UID == uid {
			return &msgs[i]
		}
	}
	return nil
}

type badKey struct {
	digest [32]byte
	flags  string
	date   int64
}

func badKeyOf(m dovecot.SnapMessage) badKey {
	return badKey{digest: sha256.Sum256(m.Body), flags: strings.Join(m.Flags, " "), date: m.Date.Unix()}
}

func badFailKey(account, folder string, uid uint32) string {
	return fmt.Sprintf("%s\x00%s\x00%d", account, folder, uid)
}

// badFailedEvents maps account, source folder and UID to the reason of every
// "message.failed" event, as the engine writes them:
// "<account>: message UID <n> in <folder quoted> (<size> bytes) not copied: <reason>".
func badFailedEvents(t *testing.T, w *migratetest.World) map[string]string {
	t.Helper()
	evs, err := w.Store.Events(w.Job, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range evs {
		if e.Kind == "folder.failed" {
			// "ACCOUNT: folder "NAME" not copied (N messages): REASON": every
			// message of the folder, under UID 0.
			_, after, ok := strings.Cut(e.Message, ": folder ")
			var folder, rest string
			if ok {
				folder, rest, ok = badCutQuoted(after)
			}
			_, reason, ok2 := strings.Cut(rest, "): ")
			if !ok || !ok2 {
				t.Errorf("folder failure event in an unknown format: %q", e.Message)
				continue
			}
			out[badFailKey(e.Account, folder, 0)] = fmt.Sprintf("%s (folder %q)", reason, folder)
			continue
		}
		if e.Kind != "message.failed" {
			continue
		}
		var uid uint32
		var rest string
		_, after, ok := strings.Cut(e.Message, ": message UID ")
		if ok {
			_, err = fmt.Sscanf(after, "%d in ", &uid)
			ok = err == nil
		}
		if ok {
			_, rest, ok = strings.Cut(after, " in ")
		}
		var folder string
		if ok {
			folder, rest, ok = badCutQuoted(rest)
		}
		if !ok {
			t.Errorf("failure event in an unknown format: %q", e.Message)
			continue
		}
		_, reason, _ := strings.Cut(rest, " not copied: ")
		if _, dup := out[badFailKey(e.Account, folder, uid)]; dup {
			continue // a re-run reports it again
		}
		out[badFailKey(e.Account, folder, uid)] = fmt.Sprintf("%s (%q UID %d)", reason, folder, uid)
	}
	return out
}

// badCutQuoted reads one Go-quoted string at the start of s.
func badCutQuoted(s string) (string, string, bool) {
	for i := 1; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '"' {
			var v string
			if _, err := fmt.Sscanf(s[:i+1], "%q", &v); err != nil {
				return "", "", false
			}
			return v, s[i+1:], true
		}
	}
	return "", "", false
}

// badReport writes the summary row and the item table for docs/reliability.md.
func badReport(t *testing.T, c *badmail.Corpus, items []*badItem, exact, normalised, failed, lost, duplicated int, facts string) {
	kinds := map[string]int{}
	var order []string
	for _, it := range items {
		if kinds[it.kind] == 0 {
			order = append(order, it.kind)
		}
		kinds[it.kind]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	result := fmt.Sprintf("%d migrated exactly, %d failed with a reason, %d lost, %d duplicated", exact, failed, lost, duplicated)
	if normalised > 0 {
		result = fmt.Sprintf("%d migrated exactly, %d migrated byte for byte and stored by the target in its normal form (bare CR/LF line ends, future dates), %d failed with a reason, %d lost, %d duplicated",
			exact, normalised, failed, lost, duplicated)
	}
	t.Logf("%d items (%s): %s", len(items), strings.Join(parts, ", "), result)
	out := os.Getenv("BANJIA_RELIABILITY_OUT")
	if out == "" {
		for _, it := range items {
			t.Logf("  %-24s %s", it.name, it.outcome)
		}
		return
	}
	row := fmt.Sprintf("| bad inputs | generated corpus (internal/badmail: %s) put on a Dovecot maildir source (\".\" delimiter, listescape) and copied to a Dovecot sdbox target (\"/\") refusing messages over %d KiB; then a re-run | %d items (%d messages, %d folder names) | %s; %s | test: `--conns 2`, 16-message batches, a message that keeps failing given up after 2 s (shipped: 5 min) |\n",
		strings.Join(parts, ", "), badmail.Limit>>10, len(items), len(c.Messages), len(c.Folders), result, facts)
	var b strings.Builder
	b.WriteString("| item | kind | source folder (UID) | expected target folder | outcome |\n|---|---|---|---|---|\n")
	for _, it := range items {
		var uids []string
		for _, m := range it.msgs {
			uids = append(uids, fmt.Sprint(m.uid))
		}
		target := fmt.Sprintf("%q", it.target)
		if it.target == "" {
			target = "(the target refuses the name)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", badCell(it.name), badCell(it.kind),
			badCell(fmt.Sprintf("%q (%s)", it.folder, strings.Join(uids, ", "))), badCell(target), badCell(it.outcome))
	}
	err := errors.Join(
		os.WriteFile(filepath.Join(out, "badinput.md"), []byte(row), 0o644),
		os.WriteFile(filepath.Join(out, "badinput-items.md"), []byte(b.String()), 0o644))
	if err != nil {
		t.Error(err)
	}
}

// badCell keeps a table cell on one line and its pipes literal.
func badCell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ").Replace(s)
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// badNormalForm is what the target stores when a plain IMAP client appends a
// source message's exact bytes, flags and date: Dovecot rewrites bare LF as
// CRLF, drops a CR before CRLF and at the very end, and sets an
// INTERNALDATE in the future to the time of the APPEND. No client can make
// it keep those, so such a copy is correct if the engine sent the source's
// bytes (checked through badRecordingSink) and the target holds this form.
type badNormalForm struct {
	m       dovecot.SnapMessage
	clamped bool // the target replaced the date
}

type badNormals map[badKey]badNormalForm

const badScratchUser, badScratchPW = "scratch@new.test", "scratch-pw"

// badNormalForms appends every source message to a scratch mailbox on the
// target and reads back what the target made of it.
func badNormalForms(t *testing.T, w *migratetest.World, items []*badItem, before map[string]migratetest.Mailbox) badNormals {
	t.Helper()
	var c *imapclient.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	// appendOnce reports the UID the target gave, 0 if it refused the message.
	appendOnce := func(sm *dovecot.SnapMessage) (uint32, error) {
		if c == nil {
			var err error
			if c, err = imapclient.DialInsecure(w.Dst.IMAPAddr, nil); err != nil {
				return 0, err
			}
			if err := c.Login(badScratchUser, badScratchPW).Wait(); err != nil {
				return 0, err
			}
		}
		cmd := c.Append("INBOX", int64(len(sm.Body)), &imap.AppendOptions{Flags: badFlags(sm.Flags), Time: sm.Date})
		cmd.Write(sm.Body)
		cmd.Close()
		data, err := cmd.Wait()
		var ie *imap.Error
		if errors.As(err, &ie) {
			return 0, nil
		}
		if err != nil {
			// Dovecot hangs up after refusing a large literal sent without
			// waiting (LITERAL+): the refusal is what counts.
			c.Close()
			c = nil
			return 0, nil
		}
		return uint32(data.UID), nil
	}
	byUID := map[uint32]badKey{}
	for _, it := range items {
		for _, m := range it.msgs {
			sm := badFindUID(before[w.Users[it.account].Old][it.folder], m.uid)
			if len(sm.Body) == 0 {
				continue // refused by any client
			}
			uid, err := appendOnce(sm)
			if err != nil {
				t.Fatalf("scratch mailbox: %v", err)
			}
			if uid != 0 {
				byUID[uid] = badKeyOf(*sm)
			}
		}
	}
	got, _ := badSnapshot(t, w.Dst.Server, badScratchUser, badScratchPW)
	out := badNormals{}
	for _, sm := range got["INBOX"] {
		k, ok := byUID[sm.UID]
		if !ok {
			t.Fatalf("scratch mailbox: UID %d was not appended", sm.UID)
		}
		if badKeyOf(sm).digest != k.digest || sm.Date.Unix() != k.date {
			out[k] = badNormalForm{m: sm, clamped: sm.Date.Unix() != k.date}
		}
	}
	if len(got["INBOX"]) != len(byUID) {
		t.Fatalf("scratch mailbox holds %d messages, %d were appended", len(got["INBOX"]), len(byUID))
	}
	return out
}

// find looks among a target folder's unclaimed messages for the normal form
// of source message sm; it describes how the form badDiffers.
func (n badNormals) find(sm dovecot.SnapMessage, left map[badKey]int, since time.Time) (string, badKey, bool) {
	nf, ok := n[badKeyOf(sm)]
	if !ok {
		return "", badKey{}, false
	}

	want := badKeyOf(nf.m)
	for k, c := range left {
		if c == 0 || k.digest != want.digest || k.flags != want.flags {
			continue
		}
		if k.date == badKeyOf(sm).date || (nf.clamped && k.date >= since.Unix()-1 && k.date <= time.Now().Unix()+1) {
			var what []string
			if len(nf.m.Body) != len(sm.Body) || string(nf.m.Body) != string(sm.Body) {
				what = append(what, fmt.Sprintf("line ends rewritten, %d bytes -> %d", len(sm.Body), len(nf.m.Body)))
			}
			if nf.clamped {
				what = append(what, fmt.Sprintf("INTERNALDATE %s is in the future: set to the time of the APPEND", sm.Date.UTC().Format(time.DateOnly)))
			}
			return strings.Join(what, "; "), k, true
		}
	}
	return "", badKey{}, false
}
