package ews

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
)

// StreamAbove is the size from which a message is fetched alone and its
// MIME decoded as it arrives, not held whole (with its base64) in memory.
var StreamAbove int64 = 1 << 20

// maxHead bounds what is kept of an answer before its MimeContent.
const maxHead = 1 << 20

// fetchStreaming fetches one large message and streams its MIME into fn.
func (s *Source) fetchStreaming(ctx context.Context, m mail.Message, fn func(*mail.Body) error) error {
	called := false
	err := s.c.exchange(ctx, "GetItem", getItemBody([]string{m.Key}), func(r io.Reader) error {
		found, err := streamMIME(r, func(mime io.Reader) error {
			called = true
			return fn(&mail.Body{Message: m, Reader: &exactly{r: mime, want: m.Size}})
		}, func(head []byte) error {
			var resp findResponse
			if err := decodeEnvelope(bytes.NewReader(head), &resp); err != nil {
				return err
			}
			if len(resp.Messages.List) != 1 {
				return fmt.Errorf("EWS GetItem: %d answers for 1 item", len(resp.Messages.List))
			}
			if err := resp.Messages.List[0].err(); err != nil {
				return err
			}
			return errors.New("EWS GetItem: no MIME content in the answer")
		})
		if !found && err == nil {
			return errors.New("EWS GetItem: no MIME content in the answer")
		}
		return err
	})
	if err == nil || called {
		return err
	}
	if vanished(err) {
		return nil
	}
	if c := codeOf(err); c != "" && c != "ErrorServerBusy" {
		return &mail.MessageError{Message: m, Err: fault.New(fault.Message, fmt.Sprintf("Exchange cannot give this item as MIME (%s)", c), err)}
	}
	return s.c.classify("GetItem", err)
}

// streamMIME reads a GetItem answer up to its MimeContent element and
// hands the decoded content to fn; an answer without one (an error, a
// fault) goes whole to other.
func streamMIME(r io.Reader, fn func(io.Reader) error, other func(head []byte) error) (bool, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var head bytes.Buffer
	for {
		chunk, err := br.ReadBytes('<')
		head.Write(chunk)
		if err == io.EOF {
			return false, other(head.Bytes())
		}
		if err != nil {
			return false, err
		}
		if head.Len() > maxHead {
			return false, errors.New("EWS GetItem: no MIME content near the start of the answer")
		}
		name, err := br.Peek(min(br.Buffered(), 64))
		if err != nil && len(name) == 0 {
			name, _ = br.Peek(1)
		}
		if !isMimeContentTag(name) {
			continue
		}
		if _, err := br.ReadBytes('>'); err != nil {
			return false, err
		}
		return true, fn(base64.NewDecoder(base64.StdEncoding, &untilTag{br: br}))
	}
}

// isMimeContentTag says whether a start tag's name (after "<") is
// MimeContent in any prefix.
func isMimeContentTag(b []byte) bool {
	end := bytes.IndexAny(b, " >/\t\r\n")
	if end < 0 {
		return false
	}
	name := b[:end]
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	return string(name) == "MimeContent"
}

// untilTag reads character data up to the next "<".
type untilTag struct {
	br   *bufio.Reader
	done bool
}

func (u *untilTag) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !u.done {
		c, err := u.br.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if c == '<' {
			u.done = true
			break
		}
		p[n] = c
		n++
	}
	if n == 0 && u.done {
		return 0, io.EOF
	}
	return n, nil
}

// exactly passes a body through and fails it if its length is not the one
// listed: the APPEND announced that size.
type exactly struct {
	r         io.Reader
	want, got int64
}

func (e *exactly) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.got += int64(n)
	if e.got > e.want || (err == io.EOF && e.got != e.want) {
		return n, fault.New(fault.Retry, fmt.Sprintf("the item's MIME is %d bytes now, %d when it was listed", e.got, e.want), nil)
	}
	return n, err
}
