// Package sinktest is the conformance suite every sink runs: the same
// table proves each keeps the promises the engine builds on (a folder's
// state from Prepare, APPEND storing exact bytes, flags and dates with the
// UID the server gave, listing from a floor, the optional interfaces), on
// every server the sink is meant for.
package sinktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
)

// Options say what the server under test offers.
type Options struct {
	// UIDPlus says the server answers APPEND with the new UID (UIDPLUS):
	// Append and Send must then report it and the folder's validity.
	UIDPlus bool
	// Subscriptions says Folders reports which folders are unsubscribed
	// (LIST-EXTENDED); otherwise every folder counts as subscribed.
	Subscriptions bool
	// BadFolder is a folder name the server refuses to create ("" skips
	// the check): Prepare must fail it as a fault.Message, so that only
	// that folder is given up.
	BadFolder string
	// KeywordLimit is the number of keywords a folder takes at most (0:
	// no limit known): one more must be refused as sinks.ErrKeywordsRefused.
	KeywordLimit int
	// NoUIDNext says the server's SELECT omits UIDNEXT (Courier's does):
	// Prepare then reports 0, and the engine looks for in-doubt copies
	// from UID 1.
	NoUIDNext bool
	// AddsLineEnd says the server ends a message that lacks a final CRLF
	// with one (Courier): what is fetched is the body sent plus "\r\n".
	AddsLineEnd bool
}

// stored is the body the server holds for one sent as body.
func (o Options) stored(body []byte) []byte {
	if o.AddsLineEnd && !bytes.HasSuffix(body, []byte("\r\n")) {
		return append(bytes.Clone(body), "\r\n"...)
	}
	return body
}

// Run runs the suite. open returns a fresh session on the same, otherwise
// untouched, target mailbox each time it is called; each subtest works in
// folders of its own.
func Run(t *testing.T, o Options, open func(t *testing.T) sinks.Sink) {
	t.Run("prepare creates and selects", func(t *testing.T) { prepare(t, o, open(t)) })
	t.Run("append stores exact bytes, flags and dates", func(t *testing.T) { appendExact(t, o, open(t)) })
	t.Run("messages from a floor", func(t *testing.T) { floor(t, open(t)) })
	t.Run("fetch of a subset, an unknown UID and an error from the callback", func(t *testing.T) { fetchSubset(t, open(t)) })
	t.Run("pipeliner answers each message with its own UID in order", func(t *testing.T) { pipeliner(t, o, open(t)) })
	t.Run("expunger removes exactly the given UIDs", func(t *testing.T) { expunger(t, o, open(t)) })
	t.Run("flag setter replaces the flags", func(t *testing.T) { flagSetter(t, open(t)) })
	t.Run("subscribe", func(t *testing.T) { subscribe(t, o, open(t)) })
	t.Run("namespace", func(t *testing.T) { namespace(t, open(t)) })
	t.Run("keywords refused", func(t *testing.T) { keywordsRefused(t, o, open(t)) })
	t.Run("bad folder name fails the folder, not the account", func(t *testing.T) { badFolder(t, o, open(t)) })
}

// Message is one message the suite appends.
type Message struct {
	Body  []byte
	Flags []string
	Date  time.Time
}

// Sample is n messages of different sizes (some over 4 KiB, where go-imap
// switches to synchronising literals; an 8-bit body; every fourth without
// a final CRLF), flags and dates in several zones, all different so each
// can be told by its bytes. Headers are 7-bit: Cyrus rewrites 8-bit
// header bytes, which is the server's doing, not the sink's.
func Sample(tag string, n int) []Message {
	zones := []*time.Location{time.UTC, time.FixedZone("CST", 8*3600), time.FixedZone("EST", -5*3600), time.FixedZone("IST", 5*3600+1800)}
	flagSets := [][]string{{`\Seen`}, {`\Seen`, `\Flagged`, "$Forwarded"}, nil, {`\Answered`, `\Draft`, "work"}}
	var out []Message
	for i := 0; i < n; i++ {
		var b bytes.Buffer
		fmt.Fprintf(&b, "From: sender-%d@old.test\r\nTo: p@new.test\r\nSubject: =?UTF-8?B?6YKu5Lu2?= %s %d\r\nMessage-ID: <%s.%d@old.test>\r\n"+
			"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n搬家 %d\r\n", i, tag, i, tag, i, i)
		lines := 1 + i%3*120
		for l := 0; l < lines; l++ {
			fmt.Fprintf(&b, "line %d of message %d, %s\r\n", l, i, tag)
		}
		if i%4 == 3 {
			b.WriteString("no final line end")
		}
		out = append(out, Message{Body: b.Bytes(), Flags: flagSets[i%len(flagSets)],
			Date: time.Date(2015+i%10, time.Month(1+i%12), 1+i%27, i%24, i%60, i%60, 0, zones[i%len(zones)])})
	}
	return out
}

// folderName is a folder of the suite's own, in the sink's namespace, two
// levels deep so that Prepare has a parent to create.
func folderName(s sinks.Sink, leaf string) string {
	ns := s.Namespace()
	return ns.Prefix + "sinktest 搬家" + string(ns.Delim) + leaf
}

func mustPrepare(t *testing.T, s sinks.Sink, name string) sinks.Folder {
	t.Helper()
	f, err := s.Prepare(context.Background(), name)
	if err != nil {
		t.Fatalf("prepare %q: %v", name, err)
	}
	return f
}

// store appends msgs one by one and returns the UIDs the target gave them,
// read back from the folder when the server does not say (no UIDPLUS).
func store(t *testing.T, o Options, s sinks.Sink, f sinks.Folder, msgs []Message) []uint32 {
	t.Helper()
	ctx := context.Background()
	var uids []uint32
	for i, m := range msgs {
		a, err := s.Append(ctx, f, bytes.NewReader(m.Body), int64(len(m.Body)), m.Flags, m.Date)
		if err != nil {
			t.Fatalf("append %d to %q: %v", i, f.Name, err)
		}
		if o.UIDPlus {
			if a.UID == 0 || a.Validity != f.Validity {
				t.Fatalf("append %d: UID %d validity %d, want a UID and validity %d", i, a.UID, a.Validity, f.Validity)
			}
		}
		uids = append(uids, a.UID)
	}
	if !o.UIDPlus {
		listed, err := s.Messages(ctx, f.Name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != len(msgs) {
			t.Fatalf("%q lists %d messages after %d appends", f.Name, len(listed), len(msgs))
		}
		uids = uids[:0]
		for _, m := range listed {
			uids = append(uids, m.UID)
		}
	}
	return uids
}

// sameFlags compares flags as IMAP does, without regard to case (RFC 3501
// 2.3.2), ignoring \Recent, which is the server's own.
func sameFlags(got, want []string) bool {
	norm := func(fl []string) []string {
		var out []string
		for _, f := range fl {
			if !strings.EqualFold(f, `\Recent`) {
				out = append(out, strings.ToLower(f))
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(got), norm(want))
}

// kept is what of flags the folder keeps, as the engine expects it to
// arrive.
func kept(f sinks.Folder, flags []string) []string {
	keep, _ := sinks.KeepFlags(f, flags)
	return keep
}

func prepare(t *testing.T, o Options, s sinks.Sink) {
	defer s.Close()
	ctx := context.Background()
	name := folderName(s, "prepare")
	f := mustPrepare(t, s, name)
	if f.Name != name || f.Validity == 0 || (f.UIDNext == 0) != o.NoUIDNext {
		t.Fatalf("prepare %q: %+v, want the name, a validity and a UIDNEXT", name, f)
	}
	list, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found, parent bool
	for _, l := range list {
		switch l.Name {
		case name:
			found = true
			if uint32(l.Validity) != f.Validity || l.Messages != 0 || (!o.NoUIDNext && l.UIDNext != f.UIDNext) {
				t.Errorf("Folders says %q has validity %d, %d messages, UIDNEXT %d; Prepare said %d, 0, %d",
					name, l.Validity, l.Messages, l.UIDNext, f.Validity, f.UIDNext)
			}
		case folderName(s, "")[:len(folderName(s, ""))-1]:
			parent = true
		}
	}
	if !found {
		t.Fatalf("Folders does not list the prepared %q", name)
	}
	if !parent {
		t.Errorf("Folders does not list the parent of %q", name)
	}
	// Preparing again (a re-run, a second lane) finds the same folder.
	again := mustPrepare(t, s, name)
	if again.Validity != f.Validity || again.UIDNext != f.UIDNext {
		t.Fatalf("prepared again: validity %d UIDNEXT %d, first %d %d", again.Validity, again.UIDNext, f.Validity, f.UIDNext)
	}
	msgs := Sample("prepare", 2)
	store(t, Options{}, s, f, msgs)
	after := mustPrepare(t, s, name)
	if after.Validity != f.Validity || (!o.NoUIDNext && after.UIDNext < f.UIDNext+2) {
		t.Fatalf("after 2 appends: validity %d UIDNEXT %d, before %d %d", after.Validity, after.UIDNext, f.Validity, f.UIDNext)
	}
	inbox := mustPrepare(t, s, "INBOX")
	if inbox.Validity == 0 {
		t.Fatal("INBOX has no validity")
	}
}

func appendExact(t *testing.T, o Options, s sinks.Sink) {
	defer s.Close()
	ctx := context.Background()
	f := mustPrepare(t, s, folderName(s, "append"))
	msgs := Sample("append", 6)
	uids := store(t, o, s, f, msgs)
	for i := 1; i < len(uids); i++ {
		if uids[i] <= uids[i-1] {
			t.Fatalf("UIDs not ascending in append order: %v", uids)
		}
	}
	if o.UIDPlus && uids[0] < f.UIDNext {
		t.Fatalf("first UID %d is below the UIDNEXT %d Prepare reported", uids[0], f.UIDNext)
	}
	listed, err := s.Messages(ctx, f.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(msgs) {
		t.Fatalf("%d messages listed, %d appended", len(listed), len(msgs))
	}
	for i, m := range listed {
		w := msgs[i]
		if m.UID != uids[i] {
			t.Errorf("message %d listed as UID %d, appended as %d", i, m.UID, uids[i])
		}
		if m.Size != int64(len(o.stored(w.Body))) {
			t.Errorf("message %d: size %d, want %d", i, m.Size, len(o.stored(w.Body)))
		}
		if !m.Date.Equal(w.Date) {
			t.Errorf("message %d: date %v, want %v", i, m.Date, w.Date)
		}
		if !sameFlags(m.Flags, kept(f, w.Flags)) {
			t.Errorf("message %d: flags %q, want %q", i, m.Flags, kept(f, w.Flags))
		}
	}
	got := map[uint32][]byte{}
	err = s.Fetch(ctx, f.Name, uids, func(uid uint32, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[uid] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, uid := range uids {
		if !bytes.Equal(got[uid], o.stored(msgs[i].Body)) {
			t.Errorf("UID %d: %d bytes fetched, differ from the %d appended", uid, len(got[uid]), len(msgs[i].Body))
		}
	}
	// Fetching is read-only: \Seen must not appear.
	again, err := s.Messages(ctx, f.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again {
		if !sameFlags(again[i].Flags, listed[i].Flags) {
			t.Errorf("fetching changed the flags of UID %d: %q -> %q", again[i].UID, listed[i].Flags, again[i].Flags)
		}
	}
}

func floor(t *testing.T, s sinks.Sink) {
	defer s.Close()
	ctx := context.Background()
	f := mustPrepare(t, s, folderName(s, "floor"))
	uids := store(t, Options{}, s, f, Sample("floor", 5))
	from := func(uid uint32) []uint32 {
		t.Helper()
		msgs, err := s.Messages(ctx, f.Name, uid)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint32
		for _, m := range msgs {
			out = append(out, m.UID)
		}
		return out
	}
	if got := from(uids[2]); !slices.Equal(got, uids[2:]) {
		t.Errorf("from UID %d: %v, want %v", uids[2], got, uids[2:])
	}
	if got := from(uids[2] + 1); !slices.Equal(got, uids[3:]) {
		t.Errorf("from UID %d: %v, want %v", uids[2]+1, got, uids[3:])
	}
	// "n:*" on the wire also matches the last message when n is past it;
	// the sink must not report it.
	if got := from(uids[4] + 1); len(got) != 0 {
		t.Errorf("from past the last UID %d: %v, want none", uids[4], got)
	}
	if got := from(0); !slices.Equal(got, uids) {
		t.Errorf("from 0: %v, want %v", got, uids)
	}
}

func fetchSubset(t *testing.T, s sinks.Sink) {
	defer s.Close()
	ctx := context.Background()
	f := mustPrepare(t, s, folderName(s, "fetch"))
	msgs := Sample("fetch", 3)
	uids := store(t, Options{}, s, f, msgs)
	got := map[uint32][]byte{}
	calls := 0
	err := s.Fetch(ctx, f.Name, []uint32{uids[0], uids[2] + 100, uids[2]}, func(uid uint32, r io.Reader) error {
		calls++
		b, err := io.ReadAll(r)
		got[uid] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || !bytes.Equal(got[uids[0]], msgs[0].Body) || !bytes.Equal(got[uids[2]], msgs[2].Body) {
		t.Fatalf("subset fetch: %d calls, bodies of UIDs %v", calls, keys(got))
	}
	if err := s.Fetch(ctx, f.Name, nil, func(uint32, io.Reader) error { return errors.New("called for nothing") }); err != nil {
		t.Fatalf("fetch of no UIDs: %v", err)
	}
	stop := errors.New("stop here")
	if err := s.Fetch(ctx, f.Name, uids, func(uint32, io.Reader) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("the callback's error was not returned: %v", err)
	}
	// The session is still usable after the callback gave up.
	if msgs, err := s.Messages(ctx, f.Name, 0); err != nil || len(msgs) != 3 {
		t.Fatalf("after a stopped fetch: %d messages, %v", len(msgs), err)
	}
}

func keys(m map[uint32][]byte) []uint32 {
	var out []uint32
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func pipeliner(t *testing.T, o Options, s sinks.Sink) {
	defer s.Close()
	p, ok := s.(sinks.Pipeliner)
	if !ok {
		t.Skip("the sink does not pipeline")
	}
	ctx := context.Background()
	f := mustPrepare(t, s, folderName(s, "pipeline"))
	msgs := Sample("pipeline", 40)
	type answer struct {
		i   int
		res sinks.Appended
		err error
	}
	var answers []answer
	for i, m := range msgs {
		err := p.Send(ctx, f, bytes.NewReader(m.Body), int64(len(m.Body)), m.Flags, m.Date, func(a sinks.Appended, err error) error {
			answers = append(answers, answer{i, a, err})
			return nil
		})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(answers) != len(msgs) {
		t.Fatalf("%d answers for %d messages", len(answers), len(msgs))
	}
	for k, a := range answers {
		if a.i != k {
			t.Fatalf("answer %d is for message %d: not in the order sent", k, a.i)
		}
		if a.err != nil {
			t.Fatalf("message %d: %v", k, a.err)
		}
		if o.UIDPlus && (a.res.UID == 0 || a.res.Validity != f.Validity) {
			t.Fatalf("message %d: UID %d validity %d", k, a.res.UID, a.res.Validity)
		}
	}
	listed, err := s.Messages(ctx, f.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(msgs) {
		t.Fatalf("%d messages stored, %d sent", len(listed), len(msgs))
	}
	byUID := map[uint32]sinks.Message{}
	var uids []uint32
	for _, m := range listed {
		byUID[m.UID] = m
		uids = append(uids, m.UID)
	}
	bodies := map[uint32][]byte{}
	if err := s.Fetch(ctx, f.Name, uids, func(uid uint32, r io.Reader) error {
		b, err := io.ReadAll(r)
		bodies[uid] = b
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for k, a := range answers {
		uid := a.res.UID
		if !o.UIDPlus {
			uid = uids[k]
		}
		m := msgs[k]
		if !bytes.Equal(bodies[uid], o.stored(m.Body)) {
			t.Errorf("message %d: UID %d holds other bytes", k, uid)
		}
		if got := byUID[uid]; !got.Date.Equal(m.Date) || !sameFlags(got.Flags, kept(f, m.Flags)) {
			t.Errorf("message %d (UID %d): date %v flags %q, want %v %q", k, uid, got.Date, got.Flags, m.Date, kept(f, m.Flags))
		}
	}
	// Another method waits for the answers owed before it runs.
	var late []int
	for i, m := range Sample("pipeline-late", 3) {
		if err := p.Send(ctx, f, bytes.NewReader(m.Body), int64(len(m.Body)), m.Flags, m.Date, func(_ sinks.Appended, err error) error {
			if err != nil {
				t.Errorf("late message %d: %v", i, err)
			}
			late = append(late, i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Messages(ctx, f.Name, 0); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(late, []int{0, 1, 2}) {
		t.Fatalf("answers run before Messages returned: %v, want all three in order", late)
	}
}

func expunger(t *testing.T, o Options, s sinks.Sink) {
	defer s.Close()
	e, ok := s.(sinks.Expunger)
	if !ok {
		t.Skip("the sink does not expunge")
	}
	ctx := context.Background()
	f := mustPrepare(t, s, folderName(s, "expunge"))
	uids := store(t, o, s, f, Sample("expunge", 4))
	err := e.Expunge(ctx, f.Name, []uint32{uids[1], uids[3]})
	if !o.UIDPlus {
		// Without UID EXPUNGE other messages marked \Deleted would go too.
		if err == nil {
			t.Fatal("expunged without UIDPLUS")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, f.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	var left []uint32
	for _, m := range msgs {
		left = append(left, m.UID)
	}
	if want := []uint32{uids[0], uids[2]}; !slices.Equal(left, want) {
		t.Fatalf("after expunging %d and %d: %v, want %v", uids[1], uids[3], left, want)
	}
}

func flagSetter(t *testing.T, s sinks.Sink) {
	defer s.Close()
	fs, ok := s.(sinks.FlagSetter)
	if !ok {
		t.Skip("the sink does not set flags")
	}
	ctx := context.Background()
	f := mustPrepare(t, s, folderName(s, "flags"))
	msgs := Sample("flags", 2)
	uids := store(t, Options{}, s, f, msgs)
	want := []string{`\Answered`, `\Flagged`}
	if err := fs.SetFlags(ctx, f.Name, uids[1], want); err != nil {
		t.Fatal(err)
	}
	listed, err := s.Messages(ctx, f.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 {
		t.Fatalf("%d messages", len(listed))
	}
	if !sameFlags(listed[1].Flags, want) {
		t.Errorf("UID %d: flags %q after setting %q", uids[1], listed[1].Flags, want)
	}
	if !sameFlags(listed[0].Flags, kept(f, msgs[0].Flags)) {
		t.Errorf("UID %d: flags %q changed, were %q", uids[0], listed[0].Flags, kept(f, msgs[0].Flags))
	}
	if err := fs.SetFlags(ctx, f.Name, uids[1], nil); err != nil {
		t.Fatal(err)
	}
	if listed, err = s.Messages(ctx, f.Name, uids[1]); err != nil || len(listed) != 1 || len(listed[0].Flags) != 0 {
		t.Errorf("after clearing the flags: %+v %v", listed, err)
	}
}

func subscribe(t *testing.T, o Options, s sinks.Sink) {
	defer s.Close()
	ctx := context.Background()
	on, off := folderName(s, "subscribed"), folderName(s, "not subscribed")
	mustPrepare(t, s, on)
	mustPrepare(t, s, off)
	if err := s.Subscribe(ctx, on); err != nil {
		t.Fatal(err)
	}
	list, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]bool{}
	for _, l := range list {
		state[l.Name] = !l.Unsubscribed
	}
	if sub, ok := state[on]; !ok || !sub {
		t.Errorf("%q listed %v, subscribed %v", on, ok, sub)
	}
	if o.Subscriptions {
		if sub, ok := state[off]; !ok || sub {
			t.Errorf("%q listed %v, subscribed %v; never subscribed", off, ok, sub)
		}
	}
}

func namespace(t *testing.T, s sinks.Sink) {
	defer s.Close()
	ns := s.Namespace()
	if ns.Delim == 0 {
		t.Fatal("no hierarchy delimiter")
	}
	name := folderName(s, "namespace")
	mustPrepare(t, s, name)
	list, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.Name == name {
			if l.Delim != ns.Delim {
				t.Errorf("%q listed with delimiter %q, the namespace's is %q", name, l.Delim, ns.Delim)
			}
			if ns.Rel(name) != "sinktest 搬家"+string(ns.Delim)+"namespace" {
				t.Errorf("%q relative to the namespace is %q", name, ns.Rel(name))
			}
			return
		}
	}
	t.Fatalf("%q not listed", name)
}

func keywordsRefused(t *testing.T, o Options, s sinks.Sink) {
	defer s.Close()
	if o.KeywordLimit == 0 {
		t.Skip("no keyword limit known for this server")
	}
	ctx := context.Background()
	f := mustPrepare(t, s, folderName(s, "keywords"))
	if !f.Keywords {
		t.Fatalf("%q keeps no keywords (PERMANENTFLAGS without \\*): the limit cannot be reached", f.Name)
	}
	var kws []string
	for i := 0; i <= o.KeywordLimit; i++ {
		kws = append(kws, fmt.Sprintf("kw%03d", i))
	}
	m := Sample("keywords", 1)[0]
	_, err := s.Append(ctx, f, bytes.NewReader(m.Body), int64(len(m.Body)), append([]string{`\Seen`}, kws...), m.Date)
	if !errors.Is(err, sinks.ErrKeywordsRefused) {
		t.Fatalf("%d keywords: %v, want sinks.ErrKeywordsRefused", len(kws), err)
	}
	if c := fault.Classify(err); c != fault.Retry {
		t.Errorf("refused keywords classed %v: the message is to be sent again without them", c)
	}
	// Without them it is stored.
	if _, err := s.Append(ctx, f, bytes.NewReader(m.Body), int64(len(m.Body)), []string{`\Seen`}, m.Date); err != nil {
		t.Fatalf("the same message without keywords: %v", err)
	}
	if msgs, err := s.Messages(ctx, f.Name, 0); err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1 (%v)", len(msgs), err)
	}
}

func badFolder(t *testing.T, o Options, s sinks.Sink) {
	defer s.Close()
	if o.BadFolder == "" {
		t.Skip("no folder name known that this server refuses")
	}
	name := s.Namespace().Prefix + o.BadFolder
	_, err := s.Prepare(context.Background(), name)
	if err == nil {
		t.Fatalf("prepare %q succeeded; the server was expected to refuse it", name)
	}
	if c := fault.Classify(err); c != fault.Message {
		t.Fatalf("prepare %q: %v classed %v, want %v", name, err, c, fault.Message)
	}
	// The session goes on.
	mustPrepare(t, s, folderName(s, "after bad"))
}
