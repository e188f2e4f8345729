package dovecot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/internal/imapfill"
	"github.com/banjia-mail/banjia/mail"
)

// Message is one message to deliver: imapfill's, so that every test
// server's Deliver takes the same messages.
type Message = imapfill.Message

// Deliver fills a folder of user, in the order given (UIDs ascend with it).
// folder is UTF-8 with "/" between levels; "INBOX" is the inbox.
//
// Maildir instances get the files written directly, with flags in the
// ":2," suffix, keywords as dovecot-keywords letters and the mtime as
// INTERNALDATE, then one `doveadm index` of the folder assigns the UIDs:
// about ten times faster than APPEND. sdbox instances APPEND over IMAP,
// which needs the user's password from AddUser; it is meant for small cases.
// Deliver calls for different users run in parallel.
func (s *Server) Deliver(user, folder string, msgs []Message) error {
	parts, err := s.folderParts(folder)
	if err != nil {
		return fmt.Errorf("deliver to %s %q: %w", user, folder, err)
	}
	unlock := s.lockUser(user)
	defer unlock()
	if s.opts.Format == "maildir" {
		err = s.writeMaildir(user, parts, msgs)
	} else {
		err = s.appendIMAP(user, strings.Join(parts, s.Delimiter()), msgs)
	}
	if err != nil {
		return fmt.Errorf("deliver to %s %q: %w", user, folder, err)
	}
	return nil
}

// folderParts splits a "/"-separated UTF-8 folder name into its levels,
// refusing what the instance's layout cannot hold.
func (s *Server) folderParts(folder string) ([]string, error) {
	if strings.EqualFold(folder, "INBOX") {
		return []string{"INBOX"}, nil
	}
	parts := strings.Split(folder, "/")
	for _, p := range parts {
		if p == "" {
			return nil, errors.New("empty level in folder name")
		}
		if strings.Contains(p, s.Delimiter()) {
			return nil, fmt.Errorf("level %q holds the instance's hierarchy separator %q", p, s.Delimiter())
		}
	}
	if strings.EqualFold(parts[0], "INBOX") {
		parts[0] = "INBOX"
	}
	return parts, nil
}

func (s *Server) lockUser(user string) func() {
	s.deliverMu.Lock()
	m := s.userLocks[user]
	if m == nil {
		m = &sync.Mutex{}
		s.userLocks[user] = m
	}
	s.deliverMu.Unlock()
	m.Lock()
	return m.Unlock
}

// nextSeq reserves n file-name sequence numbers.
func (s *Server) nextSeq(n int) uint64 {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	first := s.deliverSeq
	s.deliverSeq += uint64(n)
	return first
}

func (s *Server) writeMaildir(user string, parts []string, msgs []Message) error {
	home := filepath.Join(s.Dir, "mail", user)
	root := filepath.Join(home, "Maildir")
	dir := root
	if !(len(parts) == 1 && parts[0] == "INBOX") {
		enc := make([]string, len(parts))
		for i, p := range parts {
			enc[i] = mail.EncodeMailbox(p)
		}
		// maildir++: one folder per mailbox, ".a.b" for a/b, names in modified UTF-7.
		dir = filepath.Join(root, "."+strings.Join(enc, "."))
	}
	dirs := []string{home, root, filepath.Join(root, "cur"), filepath.Join(root, "new"), filepath.Join(root, "tmp")}
	if dir != root {
		dirs = append(dirs, dir, filepath.Join(dir, "cur"), filepath.Join(dir, "new"), filepath.Join(dir, "tmp"))
	}
	for _, d := range dirs {
		if err := s.mkdirOwned(d); err != nil {
			return err
		}
	}
	if dir != root {
		if err := s.writeOwned(filepath.Join(dir, "maildirfolder"), nil, time.Time{}); err != nil {
			return err
		}
	}
	kw, err := readKeywords(dir)
	if err != nil {
		return err
	}
	kwBefore := len(kw)
	// Dovecot gives new files UIDs sorted by the time and then the
	// microseconds (".M") in their names: one fixed time and a sequence
	// shared by all Deliver calls keeps UIDs in delivery order, even for
	// files no one has indexed yet.
	seq := s.nextSeq(len(msgs))
	const stamp = 1000000000
	for i, m := range msgs {
		suffix, err := maildirFlags(m.Flags, kw)
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		// S= and W= (sizes on disk and with CRLF) spare Dovecot a read;
		// they are equal because the body is kept as given.
		name := fmt.Sprintf("%d.M%dP0.banjia,S=%d,W=%d:2,%s", stamp, seq+uint64(i), len(m.Body), len(m.Body), suffix)
		if err := s.writeOwned(filepath.Join(dir, "cur", name), m.Body, m.Date); err != nil {
			return err
		}
	}
	if len(kw) > kwBefore {
		if err := s.writeKeywords(dir, kw); err != nil {
			return err
		}
	}
	// Index now, so UIDs are fixed before any client looks.
	vname := strings.Join(parts, s.Delimiter())
	out, err := exec.Command(doveadmBin, "-c", s.conf, "index", "-u", user, vname).CombinedOutput()
	if err != nil {
		return fmt.Errorf("doveadm index -u %s %q: %v: %s", user, vname, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// maildirFlags returns the letters after ":2," for flags, adding new
// keywords to kw (keyword name -> letter index).
func maildirFlags(flags []string, kw map[string]int) (string, error) {
	var letters []byte
	for _, f := range flags {
		switch strings.ToLower(f) {
		case `\seen`:
			letters = append(letters, 'S')
		case `\answered`:
			letters = append(letters, 'R')
		case `\flagged`:
			letters = append(letters, 'F')
		case `\draft`:
			letters = append(letters, 'D')
		case `\deleted`:
			letters = append(letters, 'T')
		case `\recent`:
			// Session state, not stored.
		default:
			if strings.HasPrefix(f, `\`) {
				return "", fmt.Errorf("unknown system flag %q", f)
			}
			if f == "" || strings.ContainsFunc(f, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`(){%*"\]`, r) }) {
				return "", fmt.Errorf("keyword %q is not an IMAP atom", f)
			}
			idx, ok := kw[f]
			if !ok {
				idx = len(kw)
				// Maildir has the 26 letters a-z for keywords, per folder.
				if idx >= 26 {
					return "", fmt.Errorf("more than 26 keywords in one maildir folder (at %q)", f)
				}
				kw[f] = idx
			}
			letters = append(letters, byte('a'+idx))
		}
	}
	slices.Sort(letters)
	return string(slices.Compact(letters)), nil
}

func (s *Server) mkdirOwned(d string) error {
	if err := os.Mkdir(d, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	return os.Chown(d, s.uid, s.gid)
}

// writeOwned writes a file as the mail user would have; a non-zero mtime is
// the message's INTERNALDATE in maildir.
func (s *Server) writeOwned(path string, data []byte, mtime time.Time) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	if err := os.Chown(path, s.uid, s.gid); err != nil {
		return err
	}
	if !mtime.IsZero() {
		return os.Chtimes(path, mtime, mtime)
	}
	return nil
}

// readKeywords reads a maildir folder's dovecot-keywords ("<index> <name>"
// lines); Dovecot may have written it when a client set a keyword.
func readKeywords(dir string) (map[string]int, error) {
	kw := map[string]int{}
	b, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if errors.Is(err, os.ErrNotExist) {
		return kw, nil
	}
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		var idx int
		var name string
		if _, err := fmt.Sscanf(line, "%d %s", &idx, &name); err == nil {
			kw[name] = idx
		}
	}
	return kw, nil
}

func (s *Server) writeKeywords(dir string, kw map[string]int) error {
	var b strings.Builder
	for name, idx := range kw {
		fmt.Fprintf(&b, "%d %s\n", idx, name)
	}
	lines := strings.SplitAfter(b.String(), "\n")
	slices.Sort(lines) // stable file contents; Dovecot reads the indexes, not the order
	return s.writeOwned(filepath.Join(dir, "dovecot-keywords"), []byte(strings.Join(lines, "")), time.Time{})
}

// appendIMAP delivers over IMAP, creating the folder and its parents.
func (s *Server) appendIMAP(user, name string, msgs []Message) error {
	pw, err := s.password(user)
	if err != nil {
		return err
	}
	c, err := imapfill.Login(s.IMAPAddr, user, pw)
	if err != nil {
		return err
	}
	defer c.Close()
	if name != "INBOX" {
		parts := strings.Split(name, s.Delimiter())
		for i := 1; i <= len(parts); i++ {
			mbox := strings.Join(parts[:i], s.Delimiter())
			if err := c.Create(mbox, nil).Wait(); err != nil {
				var ierr *imap.Error
				if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeAlreadyExists {
					return fmt.Errorf("create %q: %w", mbox, err)
				}
			}
		}
	}
	if err := imapfill.Append(c, name, msgs); err != nil {
		return err
	}
	return c.Logout().Wait()
}
