package imapconn

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestIDFilter: while an ID is out, the server's "* ID (...)" answer reaches
// go-imap as "* ID NIL" however the bytes are split, everything else passes
// unchanged, and the tagged answer ends the filtering.
func TestIDFilter(t *testing.T) {
	answer := "* ID (\"name\" \"Dovecot\" \"version\" \"2.3\")\r\na3 OK ID completed.\r\n* 4 EXISTS\r\n* ID (\"later\" \"x\")\r\n"
	want := "* ID NIL\r\na3 OK ID completed.\r\n* 4 EXISTS\r\n* ID (\"later\" \"x\")\r\n"
	for _, chunk := range []int{1, 3, 7, 64, len(answer)} {
		srv, cli := net.Pipe()
		f := &idFilter{Conn: cli}
		sent := make(chan struct{})
		go func() {
			<-sent // the server answers once the ID is out
			for i := 0; i < len(answer); i += chunk {
				srv.Write([]byte(answer[i:min(i+chunk, len(answer))]))
			}
			srv.Close()
		}()
		// A read already waiting when the ID goes out.
		got := make(chan string)
		go func() {
			b, _ := io.ReadAll(f)
			got <- string(b)
		}()
		time.Sleep(10 * time.Millisecond)
		f.active.Store(true)
		close(sent)
		select {
		case s := <-got:
			if s != want {
				t.Errorf("chunks of %d: got %q, want %q", chunk, s, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("chunks of %d: read hangs", chunk)
		}
		if f.active.Load() {
			t.Errorf("chunks of %d: still filtering after the tagged answer", chunk)
		}
	}
}
