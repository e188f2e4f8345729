package imapsink

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestWireTakesOutOnlyOurReplies: our tagged replies are taken out of the
// stream, everything else (including a literal whose text looks like one
// of our replies) reaches go-imap byte for byte.
func TestWireTakesOutOnlyOurReplies(t *testing.T) {
	server, client := net.Pipe()
	w := newWire(client, time.Minute, 8)
	stream := "* OK ready\r\n" +
		"* 1 FETCH (UID 7 BODY[] {14}\r\nbj1 OK faked\r\n)\r\n" +
		"bj2 OK [APPENDUID 38505 3955] APPEND completed\r\n" +
		"* 3 EXISTS\r\n" +
		"bj3 NO [LIMIT] Mail too big\r\n" +
		"T1 OK done\r\n"
	want := "* OK ready\r\n" +
		"* 1 FETCH (UID 7 BODY[] {14}\r\nbj1 OK faked\r\n)\r\n" +
		"* 3 EXISTS\r\n" +
		"T1 OK done\r\n"
	go func() {
		// Dribble it, so framing must work across reads.
		for i := 0; i < len(stream); i += 5 {
			server.Write([]byte(stream[i:min(i+5, len(stream))]))
		}
		server.Close()
	}()
	got, err := io.ReadAll(w)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("go-imap saw\n%q\nwant\n%q", got, want)
	}
	r := <-w.replies
	if v, u := r.appendUID(); r.tag != "bj2" || r.status != "OK" || v != 38505 || u != 3955 {
		t.Fatalf("reply %+v", r)
	}
	r = <-w.replies
	if e := r.imapError(); r.tag != "bj3" || e.Code != "LIMIT" || e.Text != "Mail too big" {
		t.Fatalf("reply %+v", r)
	}
	select {
	case <-w.dead:
	default:
		t.Fatal("end of stream not noticed")
	}
}

func TestMailboxArg(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":       "INBOX",
		"inbox":       "INBOX",
		"Sent":        `"Sent"`,
		"客户/北京":       `"&W6JiNw-/&UxdOrA-"`,
		"Tom & Jerry": `"Tom &- Jerry"`,
		`a"b\c`:       `"a\"b\\c"`,
		"Entwürfe":    `"Entw&APw-rfe"`,
	} {
		if got := mailboxArg(in); got != want {
			t.Errorf("mailboxArg(%q) = %s; want %s", in, got, want)
		}
	}
	if got := mailboxArg("a\r\nb"); strings.ContainsAny(got, "\r\n") {
		t.Errorf("control characters sent as they are: %q", got)
	}
}

func TestValidFlag(t *testing.T) {
	for f, ok := range map[string]bool{`\Seen`: true, "$Forwarded": true, "work": true, "": false, `\`: false,
		"a b": false, "a(b": false, `a\b`: false, "é": false, "x]": false} {
		if validFlag(f) != ok {
			t.Errorf("validFlag(%q) = %v", f, !ok)
		}
	}
}
