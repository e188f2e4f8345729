package imapsink

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/mail"
)

// tagPrefix marks the commands the sink writes itself (go-imap's tags are
// T1, T2, ...): the tagged replies to them never reach go-imap.
const tagPrefix = "bj"

// reply is the server's tagged answer to one of our commands.
type reply struct {
	tag    string
	status string // OK, NO or BAD
	code   string // response code, upper case, without arguments
	args   string // the response code's arguments
	text   string
}

// wire sits between go-imap and the connection. Bytes go-imap writes pass
// straight through; the sink writes its own commands to the same
// connection between go-imap's. On the way in it frames the server's
// responses (lines and the literals inside them) and takes out the tagged
// replies to our own commands, so go-imap sees a conversation that is
// entirely its own while untagged data (EXISTS after an APPEND, say) still
// reaches it.
//
// Read runs on go-imap's reader goroutine, which reads all the time: our
// replies arrive without anyone else polling the socket.
type wire struct {
	net.Conn
	br *bufio.Reader
	// idle is how long the connection may stay silent while our commands
	// wait for answers.
	idle time.Duration

	// Read state, touched only by the reading goroutine.
	out     []byte // bytes of the current response still to hand to go-imap
	literal int64  // literal bytes still to pass through
	atStart bool   // the next byte starts a response

	replies chan reply
	dead    chan struct{} // closed when reading failed: no more replies
	once    sync.Once
	err     error
}

func newWire(c net.Conn, idle time.Duration, window int) *wire {
	return &wire{Conn: c, br: bufio.NewReaderSize(c, 64<<10), idle: idle, atStart: true,
		replies: make(chan reply, window+8), dead: make(chan struct{})}
}

func (w *wire) Read(p []byte) (int, error) {
	for {
		if len(w.out) > 0 {
			n := copy(p, w.out)
			w.out = w.out[n:]
			return n, nil
		}
		if w.literal > 0 {
			if int64(len(p)) > w.literal {
				p = p[:w.literal]
			}
			n, err := w.br.Read(p)
			w.literal -= int64(n)
			if err != nil {
				w.fail(err)
			}
			return n, err
		}
		line, err := w.br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			// A line longer than the buffer is never one of our short
			// replies: pass it on, and the rest of it after.
			w.atStart, w.out = false, line
			continue
		case err != nil:
			w.fail(err)
			if len(line) > 0 {
				w.atStart, w.out = false, line
				continue
			}
			return 0, err
		}
		if w.atStart && bytes.HasPrefix(line, []byte(tagPrefix)) {
			w.replies <- parseReply(line)
			// go-imap set its deadline for a reply of its own; ours keep
			// the connection busy, so they extend it.
			w.Conn.SetReadDeadline(time.Now().Add(w.idle))
			continue
		}
		w.atStart = true
		if n, ok := literalAtEnd(line); ok {
			w.literal, w.atStart = n, false
		}
		w.out = line
	}
}

func (w *wire) fail(err error) {
	w.once.Do(func() {
		w.err = err
		close(w.dead)
	})
}

// literalAtEnd reports the size of a literal announced at the end of a
// response line ("... {123}\r\n").
func literalAtEnd(line []byte) (int64, bool) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(line[open+1:len(line)-1]), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseReply reads "TAG STATUS [CODE args] text".
func parseReply(line []byte) reply {
	s := strings.TrimRight(string(line), "\r\n")
	var r reply
	r.tag, s, _ = strings.Cut(s, " ")
	r.status, s, _ = strings.Cut(s, " ")
	r.status = strings.ToUpper(r.status)
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 0 {
			code := s[1:end]
			r.code, r.args, _ = strings.Cut(code, " ")
			r.code = strings.ToUpper(r.code)
			s = strings.TrimPrefix(s[end+1:], " ")
		}
	}
	r.text = s
	return r
}

// imapError is the reply as go-imap would have returned it, so one
// classification serves both APPEND paths.
func (r reply) imapError() *imap.Error {
	typ := imap.StatusResponseTypeNo
	if r.status == "BAD" {
		typ = imap.StatusResponseTypeBad
	}
	return &imap.Error{Type: typ, Code: imap.ResponseCode(r.code), Text: r.text}
}

// appendUID reads APPENDUID's "uidvalidity uid".
func (r reply) appendUID() (validity, uid uint32) {
	if r.code != "APPENDUID" {
		return 0, 0
	}
	f := strings.Fields(r.args)
	if len(f) != 2 {
		return 0, 0
	}
	v, err1 := strconv.ParseUint(f[0], 10, 32)
	u, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return uint32(v), uint32(u)
}

// mailboxArg encodes a mailbox name as go-imap does without UTF8=ACCEPT:
// INBOX as an atom, anything else in modified UTF-7 (printable ASCII
// only, control characters included) as a quoted string.
func mailboxArg(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(mail.EncodeMailbox(name)) + `"`
}

// validFlag is IMAP's flag-keyword / flag-extension: an atom, with a
// leading backslash for system flags.
func validFlag(f string) bool {
	if f == "" || f == `\` {
		return false
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '\\' && i == 0 {
			continue
		}
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}
