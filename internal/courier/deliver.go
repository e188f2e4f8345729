package courier

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/internal/dovecot"
)

// MailboxName translates a folder given with "/" between levels, relative
// to the personal namespace ("Archive/2024", "INBOX", "INBOX/Sub"), into the
// instance's UTF-8 name for it ("INBOX.Archive.2024"; "INBOX/Sub" is
// "INBOX.Sub", as is "Sub"). It also returns the names of the folder's
// levels, outermost first, that Deliver and CreateFolder create.
func (s *Server) MailboxName(folder string) (string, []string, error) {
	if strings.EqualFold(folder, "INBOX") {
		return "INBOX", nil, nil
	}
	parts := strings.Split(folder, "/")
	for _, p := range parts {
		if p == "" {
			return "", nil, fmt.Errorf("folder %q: empty level", folder)
		}
		if strings.Contains(p, s.Delimiter()) {
			return "", nil, fmt.Errorf("folder %q: level %q holds the hierarchy separator %q", folder, p, s.Delimiter())
		}
	}
	prefix, first := s.Prefix(), 0
	if strings.EqualFold(parts[0], "INBOX") {
		parts[0], prefix, first = "INBOX", "", 1
	}
	var levels []string
	for i := first; i < len(parts); i++ {
		levels = append(levels, prefix+strings.Join(parts[:i+1], s.Delimiter()))
	}
	return levels[len(levels)-1], levels, nil
}

func (s *Server) lockUser(user string) func() {
	s.lockMu.Lock()
	m := s.userLocks[user]
	if m == nil {
		m = &sync.Mutex{}
		s.userLocks[user] = m
	}
	s.lockMu.Unlock()
	m.Lock()
	return m.Unlock
}

// CreateFolder creates an empty folder of user (and its parents, as real
// folders, where missing); folder as for Deliver. An existing folder is
// left as it is.
func (s *Server) CreateFolder(user, folder string) error {
	return s.deliver(user, folder, nil)
}

// Deliver fills a folder of user over IMAP (LOGIN as the user, APPEND), in
// the order given, so UIDs ascend with it; each message keeps its bytes,
// flags (system flags and keywords) and INTERNALDATE. folder is UTF-8 with
// "/" between levels, relative to the personal namespace ("INBOX",
// "Archive/2024"); the folder and each missing parent level are created
// first, as real folders (Courier would otherwise list parents as
// \Noselect). Courier has no LITERAL+ and drops commands pipelined behind
// LOGIN: the client waits for each answer. Courier keeps what it is given
// but not always byte for byte: a zero-length message reads back as CRLF,
// bare LFs as CRLF, NUL bytes as spaces; keywords are case-insensitive
// (the first spelling in a folder stays); INTERNALDATE reads back in UTC.
// Deliver calls for different users run in parallel.
func (s *Server) Deliver(user, folder string, msgs []dovecot.Message) error {
	return s.deliver(user, folder, msgs)
}

func (s *Server) deliver(user, folder string, msgs []dovecot.Message) error {
	name, levels, err := s.MailboxName(folder)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", user, err)
	}
	pw, err := s.password(user)
	if err != nil {
		return fmt.Errorf("deliver to %s %q: %w", user, folder, err)
	}
	unlock := s.lockUser(user)
	defer unlock()
	if err := appendIMAP(s.IMAPAddr, user, pw, name, levels, msgs); err != nil {
		return fmt.Errorf("deliver to %s %q (%q): %w", user, folder, name, err)
	}
	return nil
}

// appendIMAP logs in (waiting for LOGIN's answer before anything else),
// creates each of levels that is missing, and APPENDs msgs to name.
func appendIMAP(addr, user, pw, name string, levels []string, msgs []dovecot.Message) error {
	c, err := dialIMAP(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, pw).Wait(); err != nil {
		return fmt.Errorf("login %s: %w", user, err)
	}
	for _, mbox := range levels {
		if err := c.Create(mbox, nil).Wait(); err != nil && !exists(c, mbox, err) {
			return fmt.Errorf("create %q: %w", mbox, err)
		}
	}
	for i, m := range msgs {
		opts := &imap.AppendOptions{Time: m.Date}
		for _, f := range m.Flags {
			if !strings.EqualFold(f, `\Recent`) {
				opts.Flags = append(opts.Flags, imap.Flag(f))
			}
		}
		cmd := c.Append(name, int64(len(m.Body)), opts)
		if _, err := cmd.Write(m.Body); err != nil {
			return fmt.Errorf("append message %d: %w", i, err)
		}
		if err := cmd.Close(); err != nil {
			return fmt.Errorf("append message %d: %w", i, err)
		}
		if _, err := cmd.Wait(); err != nil {
			return fmt.Errorf("append message %d: %w", i, err)
		}
	}
	return c.Logout().Wait()
}

// exists says whether a CREATE of mbox failed only because the folder is
// there already: the answer's ALREADYEXISTS code (Cyrus), or else a LIST
// that shows it selectable (Courier answers "Cannot create this folder.").
func exists(c *imapclient.Client, mbox string, createErr error) bool {
	var ierr *imap.Error
	if errors.As(createErr, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists {
		return true
	}
	list, err := c.List("", mbox, nil).Collect()
	if err != nil {
		return false
	}
	for _, l := range list {
		// The name may hold % or *: only an exact match counts.
		if l.Mailbox == mbox && !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			return true
		}
	}
	return false
}

func dialIMAP(addr string) (*imapclient.Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := imapclient.New(conn, nil)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting from %s: %w", addr, err)
	}
	return c, nil
}
