// Package imapfill fills a test server's folders over IMAP as the folder's
// user (LOGIN, CREATE of each missing level, APPEND with flags, keywords and
// INTERNALDATE), for the servers whose storage a test cannot write directly:
// Cyrus, Courier and Dovecot's sdbox instances.
package imapfill

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
)

// Message is one message to deliver.
type Message struct {
	Body  []byte   // kept byte for byte; use CRLF line ends, as IMAP does
	Flags []string // system flags (\Seen, \Answered, \Flagged, \Draft, \Deleted) and keywords
	Date  time.Time
}

// Folders fills the folders of one server's users.
type Folders struct {
	Addr string // plain IMAP
	// Prefix is the personal namespace's prefix ("INBOX." or ""), Delim its
	// hierarchy separator.
	Prefix, Delim string
	// Password returns the password of a user the server has.
	Password func(user string) (string, error)

	mu sync.Mutex
	// One user's Deliver calls run one at a time, so that UIDs ascend in
	// call order and two calls never race to create the same parent.
	userLocks map[string]*sync.Mutex
}

// Deliver logs in as user, creates the folder's missing levels as real
// folders, outermost first, and APPENDs msgs to it in the order given.
// folder is as for MailboxName.
func (f *Folders) Deliver(user, folder string, msgs []Message) error {
	name, levels, err := MailboxName(folder, f.Prefix, f.Delim)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", user, err)
	}
	pw, err := f.Password(user)
	if err != nil {
		return fmt.Errorf("deliver to %s %q: %w", user, folder, err)
	}
	unlock := f.lockUser(user)
	defer unlock()
	if err := fill(f.Addr, user, pw, name, levels, msgs); err != nil {
		return fmt.Errorf("deliver to %s %q (%q): %w", user, folder, name, err)
	}
	return nil
}

func (f *Folders) lockUser(user string) func() {
	f.mu.Lock()
	if f.userLocks == nil {
		f.userLocks = map[string]*sync.Mutex{}
	}
	m := f.userLocks[user]
	if m == nil {
		m = &sync.Mutex{}
		f.userLocks[user] = m
	}
	f.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// MailboxName translates a folder given with "/" between levels, relative
// to the personal namespace ("Archive/2024", "INBOX", "INBOX/Sub"), into
// the server's UTF-8 name for it (prefix and delim put together). It also
// returns the names of the folder's levels, outermost first, that Deliver
// creates. A folder starting with "INBOX/" keeps that first level as it is
// (so with prefix "INBOX." "INBOX/Sub" and "Sub" are both "INBOX.Sub").
func MailboxName(folder, prefix, delim string) (string, []string, error) {
	if strings.EqualFold(folder, "INBOX") {
		return "INBOX", nil, nil
	}
	parts := strings.Split(folder, "/")
	for _, p := range parts {
		if p == "" {
			return "", nil, fmt.Errorf("folder %q: empty level", folder)
		}
		if strings.Contains(p, delim) {
			return "", nil, fmt.Errorf("folder %q: level %q holds the hierarchy separator %q", folder, p, delim)
		}
	}
	first := 0
	if strings.EqualFold(parts[0], "INBOX") {
		parts[0], prefix, first = "INBOX", "", 1
	}
	var levels []string
	for i := first; i < len(parts); i++ {
		levels = append(levels, prefix+strings.Join(parts[:i+1], delim))
	}
	return levels[len(levels)-1], levels, nil
}

// fill creates each of levels that is missing and APPENDs msgs to name.
func fill(addr, user, pw, name string, levels []string, msgs []Message) error {
	c, err := Login(addr, user, pw)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, mbox := range levels {
		if err := c.Create(mbox, nil).Wait(); err != nil && !exists(c, mbox, err) {
			return fmt.Errorf("create %q: %w", mbox, err)
		}
	}
	if err := Append(c, name, msgs); err != nil {
		return err
	}
	return c.Logout().Wait()
}

// Append APPENDs msgs to name, in order, each with its flags and
// INTERNALDATE.
func Append(c *imapclient.Client, name string, msgs []Message) error {
	for i, m := range msgs {
		opts := &imap.AppendOptions{Time: m.Date}
		for _, f := range m.Flags {
			// Session state, which no client can set.
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
	return nil
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

// Login dials addr and logs in as user. It waits for LOGIN's answer before
// anything else: Courier drops commands pipelined behind LOGIN.
func Login(addr, user, password string) (*imapclient.Client, error) {
	c, err := Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return c, nil
}

// Dial connects to addr and waits for the server's greeting.
func Dial(addr string) (*imapclient.Client, error) {
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
