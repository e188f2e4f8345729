package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// rawMessage is one message held in memory for the raw ingest run.
type rawMessage struct {
	user   int // index into the corpus accounts
	folder int // index into the user's folders; 0 is INBOX
	body   []byte
	flags  []string
	date   time.Time
}

// rawWindow is how many APPENDs one raw connection keeps in flight.
const rawWindow = 64

// rawIngest measures what the target can take of the corpus: each account's
// messages go into its own mailbox and folders (users[i] for msgs with
// user i), as a migration puts them, over C connections at once: each
// connection logs in to one mailbox after another and APPENDs that
// mailbox's messages as fast as the server answers: LITERAL+ literals (no
// continuation round trip) and up to rawWindow commands in flight. It is
// written on the bare socket, independent of banjia's own IMAP code, so the
// limit does not depend on what is being measured.
func rawIngest(addr string, users []benchUser, folders int, msgs []rawMessage, C int) (time.Duration, error) {
	byUser := make([][]rawMessage, len(users))
	for _, m := range msgs {
		byUser[m.user] = append(byUser[m.user], m)
	}
	start := time.Now()
	queue := make(chan int, len(users))
	for i := range users {
		queue <- i
	}
	close(queue)
	var wg sync.WaitGroup
	errs := make([]error, C)
	for k := 0; k < C; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range queue {
				if err := rawConn(addr, users[u], folders, byUser[u]); err != nil {
					errs[k] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return elapsed, err
		}
	}
	return elapsed, nil
}

func rawFolder(i int) string {
	if i == 0 {
		return "INBOX"
	}
	return fmt.Sprintf("f%d", i)
}

// rawConn logs in, creates the folders and appends msgs, pipelined.
func rawConn(addr string, u benchUser, folders int, msgs []rawMessage) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 256<<10)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("greeting %q: %v", line, err)
	}
	// Login and folder creation, one command after the other.
	cmd := func(tag, text string) (string, error) {
		fmt.Fprintf(w, "%s %s\r\n", tag, text)
		if err := w.Flush(); err != nil {
			return "", err
		}
		var all strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return all.String(), err
			}
			all.WriteString(line)
			if strings.HasPrefix(line, tag+" ") {
				if !strings.HasPrefix(line, tag+" OK") {
					return all.String(), fmt.Errorf("%s: %s", text, strings.TrimSpace(line))
				}
				return all.String(), nil
			}
		}
	}
	reply, err := cmd("l", fmt.Sprintf("LOGIN %q %q", u.New, u.NewPW))
	if err != nil {
		return err
	}
	if !strings.Contains(strings.ToUpper(reply), "LITERAL+") {
		if reply, err = cmd("c", "CAPABILITY"); err != nil {
			return err
		}
		if !strings.Contains(strings.ToUpper(reply), "LITERAL+") {
			return fmt.Errorf("%s does not offer LITERAL+: the raw limit needs it", addr)
		}
	}
	for i := 1; i < folders; i++ {
		if _, err := cmd(fmt.Sprintf("m%d", i), fmt.Sprintf("CREATE %q", rawFolder(i))); err != nil && !strings.Contains(err.Error(), "exists") {
			return err
		}
	}

	slots := make(chan struct{}, rawWindow)
	readErr := make(chan error, 1)
	go func() {
		answered := 0
		for answered < len(msgs) {
			line, err := r.ReadString('\n')
			if err != nil {
				readErr <- err
				return
			}
			if strings.HasPrefix(line, "a") {
				if f := strings.Fields(line); len(f) < 2 || f[1] != "OK" {
					readErr <- fmt.Errorf("APPEND refused: %s", strings.TrimSpace(line))
					return
				}
				answered++
				<-slots
			}
		}
		readErr <- nil
	}()
	for i, m := range msgs {
		select {
		case slots <- struct{}{}:
		default:
			// Window full: send what is buffered, then wait for an answer.
			if err := w.Flush(); err != nil {
				return err
			}
			select {
			case slots <- struct{}{}:
			case err := <-readErr:
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		fmt.Fprintf(w, "a%d APPEND %s (%s) %q {%d+}\r\n", i, quoteFolder(rawFolder(m.folder)), strings.Join(m.flags, " "),
			m.date.Format("02-Jan-2006 15:04:05 -0700"), len(m.body))
		w.Write(m.body)
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := <-readErr; err != nil {
		return err
	}
	fmt.Fprintf(w, "z LOGOUT\r\n")
	w.Flush()
	return nil
}

func quoteFolder(name string) string {
	if name == "INBOX" {
		return name
	}
	return fmt.Sprintf("%q", name)
}
