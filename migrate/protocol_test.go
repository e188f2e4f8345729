package migrate

// Fast unit tests of the in-doubt protocol's pieces and of the lane's
// retry policy, over small in-memory fakes: no mail server is started.
// The real-server tests (indoubt_test.go, faults_test.go, ...) check the
// same promise end to end.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/state"
)

var t0 = time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)

func srcMsg(uid uint32, sec int, size int64) mail.Message {
	return mail.Message{UID: uid, Date: t0.Add(time.Duration(sec) * time.Second), Size: size}
}

func dstMsg(uid uint32, sec int, size int64) sinks.Message {
	return sinks.Message{UID: uid, Date: t0.Add(time.Duration(sec) * time.Second), Size: size}
}

func ranges(uids ...uint32) state.Ranges {
	var r state.Ranges
	for _, u := range uids {
		r.Add(u)
	}
	return r
}

func uidSet(m map[uint32]bool) string {
	var out []string
	for u := uint32(0); u < 1000; u++ {
		if m[u] {
			out = append(out, fmt.Sprint(u))
		}
	}
	return strings.Join(out, ",")
}

func TestProtoSuspects(t *testing.T) {
	pending := []mail.Message{srcMsg(1, 10, 100), srcMsg(2, 20, 200), srcMsg(3, 30, 300), srcMsg(4, 30, 300), srcMsg(5, 50, 500)}
	cases := []struct {
		name   string
		cands  []sinks.Message
		known  state.Ranges
		unsure map[uint32]bool
		want   string
	}{
		{"nothing above the floor", nil, nil, nil, ""},
		{"alike in date", []sinks.Message{dstMsg(7, 10, 999)}, nil, nil, "1"},
		{"alike in size", []sinks.Message{dstMsg(7, 99, 200)}, nil, nil, "2"},
		{"a known copy is no one's suspect", []sinks.Message{dstMsg(7, 10, 100)}, ranges(7), nil, ""},
		{"unsure in this run", nil, nil, map[uint32]bool{5: true}, "5"},
		{"a suspect's twins come along", []sinks.Message{dstMsg(7, 30, 999)}, nil, nil, "3,4"},
		{"an unsure message's twin comes along", nil, nil, map[uint32]bool{4: true}, "3,4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := uidSet(suspects(pending, c.cands, c.known, c.unsure)); got != c.want {
				t.Fatalf("suspects = %q, want %q", got, c.want)
			}
		})
	}
}

// fakeSource serves bodies by UID.
type fakeSource struct {
	bodies  map[uint32]string
	fetched []uint32
}

func (s *fakeSource) Folders(context.Context) ([]mail.Folder, error) { return nil, nil }
func (s *fakeSource) Messages(context.Context, mail.Folder) ([]mail.Message, error) {
	return nil, nil
}
func (s *fakeSource) Fetch(_ context.Context, _ mail.Folder, msgs []mail.Message, fn func(*mail.Body) error) error {
	for _, m := range msgs {
		s.fetched = append(s.fetched, m.UID)
		body := s.bodies[m.UID]
		m.Size = int64(len(body))
		if err := fn(&mail.Body{Message: m, Reader: strings.NewReader(body)}); err != nil {
			return err
		}
	}
	return nil
}
func (s *fakeSource) Close() error { return nil }

// fakeSink holds one folder's messages by UID.
type fakeSink struct {
	bodies  map[uint32]string
	fetched []uint32
}

func (s *fakeSink) Namespace() sinks.Namespace                     { return sinks.Namespace{} }
func (s *fakeSink) Folders(context.Context) ([]mail.Folder, error) { return nil, nil }
func (s *fakeSink) Prepare(_ context.Context, name string) (sinks.Folder, error) {
	return sinks.Folder{Name: name}, nil
}
func (s *fakeSink) Subscribe(context.Context, string) error { return nil }
func (s *fakeSink) Append(context.Context, sinks.Folder, io.Reader, int64, []string, time.Time) (sinks.Appended, error) {
	return sinks.Appended{}, errors.New("not in these tests")
}
func (s *fakeSink) Messages(context.Context, string, uint32) ([]sinks.Message, error) {
	return nil, nil
}
func (s *fakeSink) Fetch(_ context.Context, _ string, uids []uint32, fn func(uint32, io.Reader) error) error {
	for _, u := range uids {
		s.fetched = append(s.fetched, u)
		if err := fn(u, strings.NewReader(s.bodies[u])); err != nil {
			return err
		}
	}
	return nil
}
func (s *fakeSink) Close() error { return nil }

// TestProtoSettleOneToOne: a lookup pairs target copies with pending
// messages one to one by content, never takes a known copy, ignores CR,
// and fetches only what is alike in date or size.
func TestProtoSettleOneToOne(t *testing.T) {
	same := "Subject: same\r\n\r\nidentical body\r\n"
	other := "Subject: other\r\n\r\nanother body..\r\n" // same length as same
	pending := []mail.Message{srcMsg(1, 10, int64(len(same))), srcMsg(2, 10, int64(len(same))), srcMsg(3, 10, int64(len(same))), srcMsg(4, 10, int64(len(other)))}
	src := &fakeSource{bodies: map[uint32]string{1: same, 2: same, 3: same, 4: other}}
	bare := strings.ReplaceAll(same, "\r", "")
	dst := &fakeSink{bodies: map[uint32]string{10: same, 11: bare, 12: same, 13: "Subject: far\r\n\r\nunrelated\r\n"}}
	cands := []sinks.Message{
		dstMsg(10, 10, int64(len(same))),
		dstMsg(11, 10, int64(len(bare))), // stored with LF line ends
		dstMsg(12, 10, int64(len(same))), // known: another message's copy
		dstMsg(13, 99, 7),                // alike in nothing
	}
	found, err := settle(context.Background(), src, dst, mail.Folder{Name: "INBOX"}, sinks.Folder{Name: "INBOX"}, cands, ranges(12), pending)
	if err != nil {
		t.Fatal(err)
	}
	taken := map[uint32]uint32{}
	for s, d := range found {
		if d == 12 {
			t.Errorf("message %d matched the known copy 12", s)
		}
		if prev, ok := taken[d]; ok {
			t.Errorf("copy %d matched both %d and %d", d, prev, s)
		}
		taken[d] = s
	}
	if len(found) != 2 || taken[10] == 0 || taken[11] == 0 {
		t.Errorf("found %v, want two of 1..3 matched to 10 and 11", found)
	}
	if _, ok := found[4]; ok {
		t.Errorf("message 4 (other content) matched %d", found[4])
	}
	for _, u := range dst.fetched {
		if u == 12 || u == 13 {
			t.Errorf("target message %d fetched; it cannot be a copy", u)
		}
	}
}

// TestProtoSettleShortBody: a source body cut short by a closed connection
// is an error, never a digest that would make a stored copy look missing.
func TestProtoSettleShortBody(t *testing.T) {
	body := "Subject: x\r\n\r\nbody\r\n"
	src := &shortSource{fakeSource{bodies: map[uint32]string{1: body}}}
	dst := &fakeSink{bodies: map[uint32]string{10: body}}
	pending := []mail.Message{srcMsg(1, 10, int64(len(body)))}
	_, err := settle(context.Background(), src, dst, mail.Folder{}, sinks.Folder{}, []sinks.Message{dstMsg(10, 10, int64(len(body)))}, nil, pending)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("settle over a short body: %v, want io.ErrUnexpectedEOF", err)
	}
}

// shortSource reports the full size but streams one byte less.
type shortSource struct{ fakeSource }

func (s *shortSource) Fetch(_ context.Context, _ mail.Folder, msgs []mail.Message, fn func(*mail.Body) error) error {
	for _, m := range msgs {
		body := s.bodies[m.UID]
		m.Size = int64(len(body))
		if err := fn(&mail.Body{Message: m, Reader: strings.NewReader(body[:len(body)-1])}); err != nil {
			return err
		}
	}
	return nil
}

func TestProtoDigestN(t *testing.T) {
	body := "Subject: x\r\n\r\nhello\r\n"
	want, _ := digest(strings.NewReader(strings.ReplaceAll(body, "\r", "")))
	cases := []struct {
		name    string
		r       string
		size    int64
		wantErr bool
	}{
		{"exact", body, int64(len(body)), false},
		{"size unknown", body, 0, false},
		{"short", body[:10], int64(len(body)), true},
		{"long", body + "x", int64(len(body)), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := digestN(strings.NewReader(c.r), c.size)
			if c.wantErr {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
				}
				return
			}
			if err != nil || d != want {
				t.Fatalf("digest %q, %v; want %q (CR ignored)", d, err, want)
			}
		})
	}
}

// TestProtoCutBatches: twins never split, suspects go first, every
// message goes out once, and batches keep to the limits but for twins.
func TestProtoCutBatches(t *testing.T) {
	var pending []mail.Message
	for i := 1; i <= 20; i++ {
		pending = append(pending, srcMsg(uint32(i), i%7, int64(100+i%7))) // keys repeat every 7
	}
	doubtful := map[uint32]bool{}
	for _, m := range pending {
		if keyOf(m) == keyOf(pending[2]) {
			doubtful[m.UID] = true
		}
	}
	for _, limit := range []int{1, 2, 3, 64} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			cuts := cutBatches(pending, doubtful, limit, 1<<30)
			where := map[twinKey]int{}
			seen := map[uint32]bool{}
			for i, c := range cuts {
				groups := map[twinKey]bool{}
				for _, m := range c.msgs {
					if seen[m.UID] {
						t.Fatalf("message %d in two batches", m.UID)
					}
					seen[m.UID] = true
					k := keyOf(m)
					if j, ok := where[k]; ok && j != i {
						t.Fatalf("twins of %d split between batches %d and %d", m.UID, j, i)
					}
					where[k] = i
					groups[k] = true
				}
				if len(groups) > 1 && len(c.msgs) > limit+2 {
					t.Errorf("batch %d holds %d messages in %d groups over a limit of %d", i, len(c.msgs), len(groups), limit)
				}
				for _, m := range c.doubt {
					if !doubtful[m.UID] {
						t.Errorf("message %d looked up but not a suspect", m.UID)
					}
				}
				if i > 0 && len(c.doubt) > 0 && len(cuts[i-1].doubt) == 0 {
					t.Errorf("a batch of suspects after a plain one")
				}
			}
			if len(seen) != len(pending) {
				t.Fatalf("%d of %d messages cut into batches", len(seen), len(pending))
			}
			for u := range doubtful {
				in := false
				for _, c := range cuts {
					for _, m := range c.doubt {
						in = in || m.UID == u
					}
				}
				if !in {
					t.Errorf("suspect %d not looked up", u)
				}
			}
		})
	}
}

func TestProtoKeepListed(t *testing.T) {
	rs := ranges(1, 2, 3, 7, 8, 4294967295)
	got := keepListed(rs, map[uint32]bool{2: true, 3: true, 8: true, 9: true, 4294967295: true})
	if want := ranges(2, 3, 8, 4294967295); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("keepListed = %v, want %v", got, want)
	}
	if got := keepListed(nil, map[uint32]bool{1: true}); got.Count() != 0 {
		t.Fatalf("keepListed of nothing = %v", got)
	}
}

func TestProtoAlikeUnknown(t *testing.T) {
	cands := []sinks.Message{dstMsg(10, 1, 100), dstMsg(11, 1, 100), dstMsg(12, 1, 101), dstMsg(13, 2, 200)}
	cases := []struct {
		name  string
		uid   uint32
		known state.Ranges
		want  bool
	}{
		{"an unknown twin beside it", 10, nil, true},
		{"its twin is known", 10, ranges(11), false},
		{"alike in date only", 12, nil, false},
		{"alone", 13, nil, false},
		{"not listed", 99, nil, false},
	}
	for _, c := range cases {
		if got := alikeUnknown(cands, c.uid, c.known); got != c.want {
			t.Errorf("%s: alikeUnknown = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestProtoDoubtGrace(t *testing.T) {
	if d := doubtGrace(nil); d != 100*time.Millisecond {
		t.Errorf("grace for nothing = %v", d)
	}
	if d := doubtGrace([]mail.Message{{Size: 16 << 20}, {Size: 16 << 20}}); d != 1100*time.Millisecond {
		t.Errorf("grace for 32 MiB = %v, want 1.1s", d)
	}
}

// TestProtoPacer: what a lane does after a failure, by the error's class
// and whether the round moved anything.
func TestProtoPacer(t *testing.T) {
	transient := fault.New(fault.Retry, "connection reset", nil)
	slowDown := fault.RetryAfter(3*time.Second, "slow down", nil)
	account := fault.New(fault.Account, "wrong password", nil)
	doubt := []mail.Message{{Size: 64 << 20}}
	cases := []struct {
		name     string
		err      error
		halted   error
		moved    bool
		doubt    []mail.Message
		idle     time.Duration // since the lane's last progress
		want     action
		wantErr  bool
		minWait  time.Duration
		maxWait  time.Duration
		noReason bool
	}{
		{"stopped at a boundary", errStopped, nil, false, nil, 0, stop, true, 0, 0, true},
		{"boundary passed", transient, errStopped, true, nil, 0, stop, true, 0, 0, true},
		{"account error", account, nil, false, nil, 0, failAccount, true, 0, 0, true},
		{"source folder renumbered", mail.ErrValidityChanged, nil, true, nil, 0, failAccount, true, 0, 0, true},
		{"throttled without progress", slowDown, nil, false, nil, 0, throttle, false, 3 * time.Second, 3 * time.Second, true},
		{"throttled after progress", slowDown, nil, true, nil, 0, retry, false, 3 * time.Second, 3 * time.Second, true},
		{"transient after progress", transient, nil, true, nil, time.Hour, retry, false, 0, time.Second, true},
		{"transient, patience left", transient, nil, false, nil, 0, retry, false, 0, time.Second, true},
		{"transient, patience spent", transient, nil, false, nil, time.Hour, giveUp, false, 0, time.Second, false},
		{"answers lost: wait for the server to store them", transient, nil, true, doubt, 0, retry, false, 2 * time.Second, 3 * time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPacer(&Config{Retries: 1, RetryFor: time.Minute, RetryBase: 100 * time.Millisecond, RetryMax: time.Second})
			p.batch()
			p.pat.since = time.Now().Add(-c.idle)
			d := p.afterRound(c.err, c.halted, c.moved, c.doubt)
			if d.act != c.want {
				t.Fatalf("act = %v, want %v", d.act, c.want)
			}
			if (d.err != nil) != c.wantErr {
				t.Fatalf("err = %v, want an error: %v", d.err, c.wantErr)
			}
			if c.maxWait > 0 && (d.wait < c.minWait || d.wait > c.maxWait) {
				t.Fatalf("wait = %v, want %v..%v", d.wait, c.minWait, c.maxWait)
			}
			if (d.reason.IsZero()) != c.noReason {
				t.Fatalf("reason = %q", d.reason)
			}
		})
	}

	t.Run("three messages given up in a row fail the account", func(t *testing.T) {
		p := newPacer(&Config{Retries: 1, RetryFor: time.Nanosecond, RetryBase: time.Millisecond, RetryMax: time.Millisecond})
		p.batch()
		for i := 1; i <= 3; i++ {
			time.Sleep(time.Millisecond)
			d := p.afterRound(transient, nil, false, nil)
			if d.act != giveUp || (d.err != nil) != (i == 3) {
				t.Fatalf("give-up %d: %v, %v", i, d.act, d.err)
			}
		}
		p.moved()
		time.Sleep(time.Millisecond)
		if d := p.afterRound(transient, nil, false, nil); d.err != nil {
			t.Fatalf("progress did not start the count again: %v", d.err)
		}
	})
	t.Run("connection failures", func(t *testing.T) {
		p := newPacer(&Config{Retries: 2, RetryFor: time.Minute, RetryBase: time.Millisecond, RetryMax: time.Second})
		p.batch()
		if d := p.connectFailed(slowDown); d.act != throttle || d.wait != 3*time.Second || p.connectFails != 0 {
			t.Fatalf("throttled connect: %+v, %d", d, p.connectFails)
		}
		if d := p.connectFailed(transient); d.act != retry || p.connectFails != 1 {
			t.Fatalf("first failure: %+v", d)
		}
		p.pat.since = time.Now().Add(-time.Hour)
		if d := p.connectFailed(transient); d.act != failAccount || fault.Classify(d.err) != fault.Account {
			t.Fatalf("patience spent: %+v", d)
		}
	})
	t.Run("endless throttling fails the account", func(t *testing.T) {
		p := newPacer(&Config{Retries: 1, RetryFor: time.Minute, RetryBase: time.Millisecond, RetryMax: time.Second})
		p.batch()
		for i := 1; i <= maxThrottled+1; i++ {
			d := p.connectFailed(slowDown)
			if (d.err != nil) != (i > maxThrottled) {
				t.Fatalf("throttle %d: %v", i, d.err)
			}
		}
	})
	t.Run("twin waits double up to the most", func(t *testing.T) {
		p := newPacer(&Config{RetryBase: time.Millisecond, RetryMax: time.Second})
		p.batch()
		prev := time.Duration(0)
		for range 10 {
			d := p.twinWait()
			if d < prev || d > twinWaitMax {
				t.Fatalf("twin wait %v after %v", d, prev)
			}
			prev = d
		}
		if prev != twinWaitMax {
			t.Fatalf("twin wait stopped at %v", prev)
		}
	})
}

// TestProtoDoubts walks messages through the protocol's state table.
func TestProtoDoubts(t *testing.T) {
	type world struct {
		d     *doubts
		cp    *state.Checkpoint
		b     *batch
		dirty map[string]bool
	}
	setup := func() *world {
		w := &world{dirty: map[string]bool{}}
		w.d = newDoubts(&sync.Mutex{}, func(f string) { w.dirty[f] = true })
		w.cp = &state.Checkpoint{Folder: "INBOX", Target: "INBOX", TargetValidity: 7, Floor: 5}
		w.d.loadLocked(map[string]*state.Checkpoint{"INBOX": w.cp})
		w.b = &batch{folder: mail.Folder{Name: "INBOX"}, target: sinks.Folder{Name: "INBOX", Validity: 7}, cp: w.cp}
		return w
	}
	m := srcMsg(1, 10, 100)
	twin := srcMsg(2, 10, 100)
	cases := []struct {
		name string
		run  func(t *testing.T, w *world)
	}{
		{"flying until answered; a twin is in flight too", func(t *testing.T, w *world) {
			w.d.sent(w.b, m)
			if !w.d.inFlight(w.b, twin) {
				t.Fatal("an alike APPEND on its way is not seen")
			}
			w.d.answered(w.b, m)
			if w.d.inFlight(w.b, twin) {
				t.Fatal("still flying once answered")
			}
		}},
		{"answered: copied and confirmed, no sweep", func(t *testing.T, w *world) {
			if w.d.storedLocked(w.b, m, sinks.Appended{UID: 9, Validity: 7}) {
				t.Fatal("a message sent once queued for the sweep")
			}
			if !w.cp.Confirmed.Contains(9) || !w.d.known(w.cp).Contains(9) {
				t.Fatal("copy not confirmed")
			}
		}},
		{"an answer from another incarnation of the folder is not confirmed", func(t *testing.T, w *world) {
			w.d.storedLocked(w.b, m, sinks.Appended{UID: 9, Validity: 8})
			if w.cp.Confirmed.Contains(9) {
				t.Fatal("confirmed a UID of another UIDVALIDITY")
			}
		}},
		{"lost answer: unsure until stored", func(t *testing.T, w *world) {
			w.d.lostAnswer(w.b, m)
			if !w.d.unsureIn("INBOX")[1] {
				t.Fatal("not unsure")
			}
			if w.d.raiseFloorLocked(w.cp, suspects([]mail.Message{m}, nil, nil, w.d.unsureIn("INBOX")), 50) || w.cp.Floor != 5 {
				t.Fatalf("the floor rose to %d while a message was in doubt", w.cp.Floor)
			}
			w.d.storedLocked(w.b, m, sinks.Appended{UID: 9})
			if len(w.d.unsureIn("INBOX")) != 0 {
				t.Fatal("still unsure once stored")
			}
			if !w.d.raiseFloorLocked(w.cp, nil, 50) || w.cp.Floor != 50 {
				t.Fatalf("floor %d once nothing is in doubt, want 50", w.cp.Floor)
			}
		}},
		{"found and claimed; a known copy is not claimed twice", func(t *testing.T, w *world) {
			if !w.d.claimLocked(w.b, m, 9) {
				t.Fatal("claim refused")
			}
			if w.d.claimLocked(w.b, twin, 9) {
				t.Fatal("one copy claimed for two messages")
			}
		}},
		{"not found, sent again, answered: resent until swept", func(t *testing.T, w *world) {
			w.d.lostAnswer(w.b, m)
			w.d.notFound(w.b, m)
			if !w.d.storedLocked(w.b, m, sinks.Appended{UID: 12, Validity: 7}) {
				t.Fatal("a message sent again not queued for the sweep")
			}
			if len(w.cp.Resent) != 1 || w.cp.Resent[0] != (state.Resent{UID: 1, Copy: 12, Floor: 5}) || !w.dirty["INBOX"] {
				t.Fatalf("Resent = %+v, dirty %v", w.cp.Resent, w.dirty)
			}
			w.d.sweepLaterLocked(w.b, m, 12)
			list := w.d.takeSweeps()
			if len(list) != 1 || list[0].uid != 12 || list[0].floor != 5 {
				t.Fatalf("sweeps = %+v", list)
			}
			w.d.swept(list)
			if w.cp.Resent != nil {
				t.Fatalf("Resent after the sweep = %+v", w.cp.Resent)
			}
		}},
		{"a run that died before its sweep leaves it to the next", func(t *testing.T, w *world) {
			cp := &state.Checkpoint{Folder: "Sent", Target: "Sent", TargetValidity: 3, Resent: []state.Resent{{UID: 4, Copy: 40, Floor: 30}}}
			d := newDoubts(&sync.Mutex{}, func(string) {})
			d.loadLocked(map[string]*state.Checkpoint{"Sent": cp})
			list := d.takeSweeps()
			if len(list) != 1 || list[0].uid != 40 || list[0].floor != 30 || list[0].b.target.Validity != 3 {
				t.Fatalf("loaded sweeps = %+v", list)
			}
		}},
		{"the folder goes elsewhere: its sweeps are given up", func(t *testing.T, w *world) {
			w.d.notFound(w.b, m)
			w.d.storedLocked(w.b, m, sinks.Appended{UID: 12})
			if n := w.d.dropSweepsLocked("INBOX"); n != 1 || w.cp.Resent != nil || len(w.d.takeSweeps()) != 0 {
				t.Fatalf("dropped %d, Resent %+v", n, w.cp.Resent)
			}
		}},
		{"renumbered: forgotten", func(t *testing.T, w *world) {
			w.d.lostAnswer(w.b, m)
			w.d.notFound(w.b, twin)
			w.d.forgetLocked("INBOX")
			if len(w.d.unsureIn("INBOX")) != 0 || w.d.storedLocked(w.b, twin, sinks.Appended{UID: 3}) {
				t.Fatal("a renumbered folder's doubts survived")
			}
		}},
		{"the target folder recreated", func(t *testing.T, w *world) {
			if !w.d.targetLocked(w.cp, sinks.Folder{Name: "INBOX", Validity: 8}) {
				t.Fatal("another UIDVALIDITY not noticed")
			}
			if w.d.targetLocked(w.cp, sinks.Folder{Name: "INBOX", Validity: 7}) {
				t.Fatal("the same folder taken for a new one")
			}
		}},
		{"known spans the folders landing in one target folder", func(t *testing.T, w *world) {
			other := &state.Checkpoint{Folder: "Sent Items", Target: "INBOX", TargetValidity: 7, Confirmed: ranges(20)}
			stale := &state.Checkpoint{Folder: "Old", Target: "INBOX", TargetValidity: 6, Confirmed: ranges(21)}
			w.d.cps["Sent Items"], w.d.cps["Old"] = other, stale
			k := w.d.known(w.cp)
			if !k.Contains(20) || k.Contains(21) {
				t.Fatalf("known = %v, want 20 and not 21 (another incarnation)", k)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, setup()) })
	}
}
