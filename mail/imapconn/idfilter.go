package imapconn

import (
	"bytes"
	"net"
	"sync/atomic"
)

// idFilter stands between the connection and go-imap while an ID command
// is out: go-imap v2.0.0-beta.8 reads "* ID (...)" with an ExpectNIL that
// leaves a sticky decoder error behind whenever the answer is a list (that
// is, always), and the session then fails at some later answer, typically
// its LOGOUT ("cannot read tag: expected atom, got \"(\""). The server's
// identity is of no use to us, so its ID answer reaches go-imap as
// "* ID NIL", which it reads cleanly. Only whole lines that begin with
// "* ID " are changed, only while an ID is out.
type idFilter struct {
	net.Conn
	active  atomic.Bool
	pending []byte // bytes read from the connection, not yet passed on
	out     []byte // bytes ready for go-imap
}

func (f *idFilter) Read(b []byte) (int, error) {
	for len(f.out) == 0 {
		if !f.active.Load() && len(f.pending) == 0 {
			n, err := f.Conn.Read(b)
			if n == 0 || !f.active.Load() {
				return n, err
			}
			// The ID went out while this read waited: its answer may be
			// in what came.
			f.pending = append(f.pending, b[:n]...)
			if err != nil {
				f.out, f.pending = f.pending, nil
				break
			}
			continue
		}
		if !f.active.Load() {
			// Past the ID's tagged answer: the rest goes as it came.
			f.out, f.pending = f.pending, nil
			break
		}
		// Whole lines only while active: an ID answer split over two
		// reads must still be recognised.
		if i := bytes.Index(f.pending, []byte("\r\n")); i >= 0 {
			line := f.pending[:i+2]
			f.pending = f.pending[i+2:]
			if len(line) > 5 && bytes.EqualFold(line[:5], []byte("* ID ")) {
				line = []byte("* ID NIL\r\n")
			} else if line[0] != '*' && line[0] != '+' {
				// A tagged answer: the ID command is over.
				f.active.Store(false)
			}
			f.out = append(f.out, line...)
			continue
		}
		buf := make([]byte, 4096)
		n, err := f.Conn.Read(buf)
		f.pending = append(f.pending, buf[:n]...)
		if err != nil {
			if len(f.pending) > 0 {
				f.out, f.pending = f.pending, nil
				break
			}
			return 0, err
		}
	}
	n := copy(b, f.out)
	f.out = f.out[n:]
	return n, nil
}
