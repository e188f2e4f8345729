package imapsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/delayproxy"
	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
)

// The pipelined APPEND path against a real Dovecot (which offers LITERAL+).

const (
	testUser = "p@new.test"
	testPW   = "pw"
)

// quotaConfig makes Dovecot refuse (NO [LIMIT]) any message over 100 KB,
// after reading its literal: how a real server refuses one message.
const quotaConfig = `
mail_plugins = $mail_plugins quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_max_mail_size = 100k
}
`

func target(t *testing.T, o dovecot.Options) *dovecot.Server {
	t.Helper()
	o.Format = "sdbox"
	s := dovecot.StartT(t, o)
	if err := s.AddUser(testUser, testPW); err != nil {
		t.Fatal(err)
	}
	return s
}

func endpoint(addr string) mail.Endpoint {
	e := migratetest.Endpoint(addr)
	e.User, e.Password = testUser, testPW
	return e
}

func open(t *testing.T, e mail.Endpoint) *Sink {
	t.Helper()
	s, err := Open(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*Sink)
}

func message(i, size int) []byte {
	head := fmt.Sprintf("From: a@old.test\r\nTo: p@new.test\r\nSubject: message %d\r\nMessage-ID: <%d@old.test>\r\n\r\n", i, i)
	body := bytes.Repeat([]byte(fmt.Sprintf("line %d of a message body\r\n", i)), max(1, (size-len(head))/26))
	return append([]byte(head), body...)
}

// result is what one done received.
type result struct {
	res sinks.Appended
	err error
}

type results struct {
	mu  sync.Mutex
	got map[int]result
}

func (r *results) done(i int) func(sinks.Appended, error) error {
	return func(a sinks.Appended, err error) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.got == nil {
			r.got = map[int]result{}
		}
		if _, dup := r.got[i]; dup {
			panic(fmt.Sprintf("done called twice for message %d", i))
		}
		r.got[i] = result{a, err}
		return nil
	}
}

func TestPipelineStoresExactly(t *testing.T) {
	s := target(t, dovecot.Options{})
	sink := open(t, endpoint(s.IMAPAddr))
	if sink.pipe == nil {
		t.Fatal("Dovecot offers LITERAL+ but the sink did not pipeline")
	}
	ctx := context.Background()
	date := time.Date(2019, 7, 1, 12, 30, 5, 0, time.FixedZone("CST", 8*3600))
	type sent struct {
		folder string
		body   []byte
		flags  []string
		date   time.Time
	}
	var want []sent
	var r results
	folders := map[string]sinks.Folder{}
	for _, name := range []string{"INBOX", "客户/北京 & Co"} {
		f, err := sink.Prepare(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		folders[name] = f
	}
	// More messages than the window, big and small, so the window fills
	// and drains many times.
	for i := 0; i < 3*maxInFlight; i++ {
		name := "INBOX"
		if i%3 == 1 {
			name = "客户/北京 & Co"
		}
		size := 300 + (i%7)*3000
		if i%50 == 7 {
			size = 2 << 20
		}
		m := sent{folder: name, body: message(i, size), flags: []string{`\Seen`}, date: date.Add(time.Duration(i) * time.Hour)}
		if i%4 == 0 {
			m.flags = append(m.flags, `\Flagged`, "$Forwarded", "work")
		}
		want = append(want, m)
		if err := sink.Send(ctx, folders[name], bytes.NewReader(m.body), int64(len(m.body)), m.flags, m.date, r.done(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(r.got) != len(want) {
		t.Fatalf("%d answers for %d messages", len(r.got), len(want))
	}
	uids := map[string]map[uint32]int{}
	for i, g := range r.got {
		if g.err != nil {
			t.Fatalf("message %d: %v", i, g.err)
		}
		f := folders[want[i].folder]
		if g.res.UID == 0 || g.res.Validity != f.Validity {
			t.Fatalf("message %d: APPENDUID %d/%d, folder validity %d", i, g.res.Validity, g.res.UID, f.Validity)
		}
		if uids[want[i].folder] == nil {
			uids[want[i].folder] = map[uint32]int{}
		}
		uids[want[i].folder][g.res.UID] = i
	}
	snap, _, err := dovecot.Snapshot(s.IMAPAddr, testUser, testPW)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, msgs := range snap {
		folder := name
		if strings.Contains(name, "北京") {
			folder = "客户/北京 & Co"
		}
		for _, m := range msgs {
			i, ok := uids[folder][m.UID]
			if !ok {
				t.Fatalf("%s UID %d was not reported by APPENDUID", name, m.UID)
			}
			w := want[i]
			flags := append([]string(nil), w.flags...)
			sort.Strings(flags)
			if !bytes.Equal(m.Body, w.body) || strings.Join(m.Flags, " ") != strings.Join(flags, " ") || !m.Date.Equal(w.date) {
				t.Fatalf("message %d stored differently: flags %v, date %v, same body %v", i, m.Flags, m.Date, bytes.Equal(m.Body, w.body))
			}
			n++
		}
	}
	if n != len(want) {
		t.Fatalf("target holds %d messages, sent %d", n, len(want))
	}
}

// TestPipelineNoRoundTripPerMessage: at 20 ms round trip, 100 messages
// would take at least 2 s with a round trip each; pipelined they take a
// few round trips.
func TestPipelineNoRoundTripPerMessage(t *testing.T) {
	s := target(t, dovecot.Options{})
	p, err := delayproxy.Start(s.IMAPAddr, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sink := open(t, endpoint(p.Addr))
	ctx := context.Background()
	f, err := sink.Prepare(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var r results
	start := time.Now()
	for i := 0; i < 100; i++ {
		body := message(i, 8000)
		if err := sink.Send(ctx, f, bytes.NewReader(body), int64(len(body)), nil, time.Time{}, r.done(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("100 APPENDs at 20 ms round trip: %v", elapsed)
	if elapsed > 1500*time.Millisecond {
		t.Fatalf("100 APPENDs took %v: a round trip per message", elapsed)
	}
	for i, g := range r.got {
		if g.err != nil || g.res.UID == 0 {
			t.Fatalf("message %d: %+v %v", i, g.res, g.err)
		}
	}
}

// TestPipelineRefusalFailsOnlyThatMessage: a message the server refuses
// (too large; a folder that is gone) fails alone, the session goes on.
func TestPipelineRefusalFailsOnlyThatMessage(t *testing.T) {
	s := target(t, dovecot.Options{ExtraConfig: quotaConfig})
	sink := open(t, endpoint(s.IMAPAddr))
	ctx := context.Background()
	f, err := sink.Prepare(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	gone := f
	gone.Name = "Gone"
	var r results
	for i := 0; i < 20; i++ {
		body, folder := message(i, 2000), f
		switch i {
		case 5:
			body = message(i, 300<<10)
		case 11:
			folder = gone
		}
		if err := sink.Send(ctx, folder, bytes.NewReader(body), int64(len(body)), nil, time.Time{}, r.done(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		g := r.got[i]
		switch i {
		case 5:
			if fault.Classify(g.err) != fault.Message || !strings.Contains(fault.Reason(g.err), "too large") {
				t.Fatalf("oversized message: %v (%v)", g.err, fault.Classify(g.err))
			}
		case 11:
			if fault.Classify(g.err) != fault.Retry || !strings.Contains(fault.Reason(g.err), "disappeared") {
				t.Fatalf("missing folder: %v", g.err)
			}
		default:
			if g.err != nil || g.res.UID == 0 {
				t.Fatalf("message %d: %+v %v", i, g.res, g.err)
			}
		}
	}
	// The session is still good for plain commands.
	if _, err := sink.Messages(ctx, "INBOX", 1); err != nil {
		t.Fatal(err)
	}
	if n := migratetest.Count(t, s, testUser, testPW); n != 18 {
		t.Fatalf("target holds %d messages, want 18", n)
	}
}

// muteProxy forwards one connection; Mute stops passing the server's
// bytes on (they are read and dropped), Cut closes both sides.
type muteProxy struct {
	addr   string
	ln     net.Listener
	muted  atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	closed chan struct{}
}

func startMuteProxy(t *testing.T, upstream string) *muteProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &muteProxy{addr: ln.Addr().String(), ln: ln, closed: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go io.Copy(up, c)
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if n > 0 && !p.muted.Load() {
						c.Write(buf[:n])
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(p.Cut)
	return p
}

func (p *muteProxy) Cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestPipelineLostAnswersAreInDoubt: messages sent in full whose answers
// never come (the connection drops) are reported in doubt, not as failed:
// the target did store them.
func TestPipelineLostAnswersAreInDoubt(t *testing.T) {
	s := target(t, dovecot.Options{})
	p := startMuteProxy(t, s.IMAPAddr)
	sink := open(t, endpoint(p.addr))
	ctx := context.Background()
	f, err := sink.Prepare(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	p.muted.Store(true)
	var r results
	for i := 0; i < 5; i++ {
		body := message(i, 5000)
		if err := sink.Send(ctx, f, bytes.NewReader(body), int64(len(body)), nil, time.Time{}, r.done(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for migratetest.Count(t, s, testUser, testPW) < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the server never stored the messages")
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Cut()
	err = sink.Flush(ctx)
	if err != nil {
		t.Fatalf("Flush: %v (the dones took the errors and returned nil)", err)
	}
	if len(r.got) != 5 {
		t.Fatalf("%d answers", len(r.got))
	}
	for i, g := range r.got {
		if !errors.Is(g.err, sinks.ErrInDoubt) || fault.Classify(g.err) != fault.Retry {
			t.Fatalf("message %d: %v, want in doubt", i, g.err)
		}
	}
	body := message(9, 100)
	err = sink.Send(ctx, f, bytes.NewReader(body), int64(len(body)), nil, time.Time{}, r.done(9))
	if err == nil || fault.Classify(err) != fault.Retry {
		t.Fatalf("send on a lost connection: %v", err)
	}
}

// failingReader gives n bytes, then fails, like a source connection lost
// in the middle of a message.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("source connection reset")
	}
	if len(b) > f.n {
		b = b[:f.n]
	}
	n, err := f.r.Read(b)
	f.n -= n
	return n, err
}

// TestPipelineSourceFailsMidMessage: the half-sent message is not stored,
// the ones before it are answered normally (not in doubt).
func TestPipelineSourceFailsMidMessage(t *testing.T) {
	s := target(t, dovecot.Options{})
	sink := open(t, endpoint(s.IMAPAddr))
	ctx := context.Background()
	f, err := sink.Prepare(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var r results
	for i := 0; i < 3; i++ {
		body := message(i, 50000)
		if err := sink.Send(ctx, f, bytes.NewReader(body), int64(len(body)), nil, time.Time{}, r.done(i)); err != nil {
			t.Fatal(err)
		}
	}
	body := message(3, 200000)
	err = sink.Send(ctx, f, &failingReader{r: bytes.NewReader(body), n: 100000}, int64(len(body)), nil, time.Time{}, r.done(3))
	if err == nil || fault.Classify(err) != fault.Retry || !strings.Contains(fault.Reason(err), "interrupted") {
		t.Fatalf("send with a failing source: %v", err)
	}
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if g, ok := r.got[i]; !ok || g.err != nil || g.res.UID == 0 {
			t.Fatalf("message %d before the failure: %+v", i, g)
		}
	}
	if _, ok := r.got[3]; ok {
		t.Fatal("done called for a message Send failed")
	}
	if n := migratetest.Count(t, s, testUser, testPW); n != 3 {
		t.Fatalf("target holds %d messages, want 3", n)
	}
}

// TestPipelineOverTLS: STARTTLS (done by the sink itself, so its wire sits
// above TLS) and implicit TLS both pipeline.
func TestPipelineOverTLS(t *testing.T) {
	s := target(t, dovecot.Options{TLS: true})
	for _, scheme := range []string{"imap", "imaps"} {
		addr := s.IMAPAddr
		if scheme == "imaps" {
			addr = s.IMAPSAddr
		}
		e := endpoint(addr)
		e.Scheme, e.RootCAs = scheme, s.CertPEM
		sink := open(t, e)
		if sink.pipe == nil {
			t.Fatalf("%s: no pipelining", scheme)
		}
		ctx := context.Background()
		f, err := sink.Prepare(ctx, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		body := message(1, 70000)
		res, err := sink.Append(ctx, f, bytes.NewReader(body), int64(len(body)), []string{`\Seen`}, time.Now())
		if err != nil || res.UID == 0 {
			t.Fatalf("%s: %+v %v", scheme, res, err)
		}
		if msgs, err := sink.Messages(ctx, "INBOX", res.UID); err != nil || len(msgs) != 1 || msgs[0].Size != int64(len(body)) {
			t.Fatalf("%s: %+v %v", scheme, msgs, err)
		}
	}
}
