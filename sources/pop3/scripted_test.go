package pop3_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources/pop3"
)

// scripted is a minimal POP3 peer for what Dovecot cannot be made to do:
// refuse UIDL and TOP. It records every command so a test can prove no DELE
// or QUIT was ever sent.
type scripted struct {
	ln       net.Listener
	msgs     []string
	commands chan string
}

func newScripted(t *testing.T, msgs ...string) *scripted {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{ln: ln, msgs: msgs, commands: make(chan string, 1000)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *scripted) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "+OK scripted\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.Fields(strings.TrimSpace(line))
		if len(cmd) == 0 {
			continue
		}
		s.commands <- strings.ToUpper(cmd[0])
		switch strings.ToUpper(cmd[0]) {
		case "USER", "PASS", "NOOP":
			fmt.Fprintf(c, "+OK\r\n")
		case "STAT":
			fmt.Fprintf(c, "+OK %d 0\r\n", len(s.msgs))
		case "LIST":
			fmt.Fprintf(c, "+OK\r\n")
			for i, m := range s.msgs {
				fmt.Fprintf(c, "%d %d\r\n", i+1, len(m))
			}
			fmt.Fprintf(c, ".\r\n")
		case "UIDL":
			fmt.Fprintf(c, "-ERR UIDL not supported\r\n")
		case "TOP":
			var n, lines int
			fmt.Sscanf(strings.Join(cmd[1:], " "), "%d %d", &n, &lines)
			if lines > 0 {
				fmt.Fprintf(c, "-ERR TOP with lines not supported\r\n")
				continue
			}
			head, _, _ := strings.Cut(s.msgs[n-1], "\r\n\r\n")
			fmt.Fprintf(c, "+OK\r\n%s\r\n\r\n.\r\n", head)
		case "RETR":
			var n int
			fmt.Sscanf(cmd[1], "%d", &n)
			fmt.Fprintf(c, "+OK\r\n%s.\r\n", s.msgs[n-1])
		default:
			fmt.Fprintf(c, "-ERR unknown\r\n")
		}
	}
}

func TestWithoutUIDLOrTopAndSizeCap(t *testing.T) {
	m1 := "Message-ID: <1@x>\r\nDate: Mon, 01 Jan 2018 09:00:00 +0000\r\n\r\nfirst\r\n"
	m2 := "Message-ID: <2@x>\r\nDate: Tue, 02 Jan 2018 09:00:00 +0000\r\n\r\nsecond, longer\r\n"
	s := newScripted(t, m1, m2)
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	var p int
	fmt.Sscanf(port, "%d", &p)
	e := mail.Endpoint{Scheme: "pop3+plain", Host: host, Port: p, User: "u", Password: "pw"}
	ctx := context.Background()
	list := func() []mail.Message {
		src, err := pop3.Open(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		f, _ := src.Folders(ctx)
		msgs, err := src.Messages(ctx, f[0])
		if err != nil {
			t.Fatal(err)
		}
		if !src.NoUIDL() {
			t.Fatal("UIDL refusal not noticed")
		}
		var got []string
		err = src.Fetch(ctx, f[0], msgs, func(b *mail.Body) error {
			data, err := io.ReadAll(b)
			got = append(got, string(data))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0] != m1 || got[1] != m2 {
			t.Fatalf("bodies %q", got)
		}
		return msgs
	}
	a, b := list(), list()
	if a[0].Key == "" || a[0].Key == a[1].Key || a[0].Key != b[0].Key || a[1].Key != b[1].Key {
		t.Fatalf("keys without UIDL are not stable and distinct: %q %q / %q %q", a[0].Key, a[1].Key, b[0].Key, b[1].Key)
	}

	// Above the cap one message fails alone, with a reason.
	old := pop3.MaxMessageSize
	pop3.MaxMessageSize = int64(len(m1))
	defer func() { pop3.MaxMessageSize = old }()
	src, err := pop3.Open(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, _ := src.Folders(ctx)
	err = src.Fetch(ctx, f[0], a[1:], func(*mail.Body) error { return nil })
	if fault.Classify(err) != fault.Message || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("size cap: %v", err)
	}
	var me *mail.MessageError
	if !errors.As(err, &me) || me.Message.Key != a[1].Key {
		t.Fatalf("size cap error does not name the message: %v", err)
	}
	for {
		select {
		case c := <-s.commands:
			if c == "DELE" || c == "QUIT" {
				t.Fatalf("sent %s", c)
			}
			continue
		default:
		}
		break
	}
}
