package dovecot

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Message is one message to deliver.
type Message struct {
	Body  []byte
	Flags []string // system flags (\Seen ...) and keywords
	Date  time.Time
}

// Deliver fills a folder ("/"-separated UTF-8 name; "INBOX" is the inbox).
// Maildir instances get files written directly, with flags in the file
// names, keywords in dovecot-keywords and the mtime as INTERNALDATE, which
// is about ten times faster than APPEND; UIDs follow the order given.
func (s *Server) Deliver(user, folder string, msgs []Message) error {
	if s.opts.Format != "maildir" {
		return s.appendAll(user, folder, msgs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	home := filepath.Join(s.Dir, "mail", user)
	root := filepath.Join(home, "Maildir")
	dir := root
	if !strings.EqualFold(folder, "INBOX") {
		var parts []string
		for _, p := range strings.Split(folder, "/") {
			parts = append(parts, encodeUTF7(p))
		}
		dir = filepath.Join(root, "."+strings.Join(parts, "."))
	}
	for _, d := range []string{home, root, filepath.Join(root, "cur"), filepath.Join(root, "new"), filepath.Join(root, "tmp"),
		dir, filepath.Join(dir, "cur"), filepath.Join(dir, "new"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		os.Chown(d, s.uid, s.gid)
	}
	if dir != root {
		p := filepath.Join(dir, "maildirfolder")
		os.WriteFile(p, nil, 0o600)
		os.Chown(p, s.uid, s.gid)
	}
	kw, err := readKeywords(dir)
	if err != nil {
		return err
	}
	base := time.Now().UnixNano()
	for i, m := range msgs {
		var letters []byte
		for _, f := range m.Flags {
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
			default:
				if strings.HasPrefix(f, `\`) {
					continue
				}
				idx, ok := kw[f]
				if !ok {
					idx = len(kw)
					if idx >= 26 {
						return fmt.Errorf("more than 26 keywords in %q", folder)
					}
					kw[f] = idx
				}
				letters = append(letters, byte('a'+idx))
			}
		}
		sort.Slice(letters, func(a, b int) bool { return letters[a] < letters[b] })
		// Names sort in delivery order, which is the order Dovecot gives UIDs in.
		name := fmt.Sprintf("%d.M%06dP%d.banjia,S=%d:2,%s", base/1e9, i, base%1e9, len(m.Body), letters)
		p := filepath.Join(dir, "cur", name)
		if err := os.WriteFile(p, m.Body, 0o600); err != nil {
			return err
		}
		os.Chown(p, s.uid, s.gid)
		if !m.Date.IsZero() {
			os.Chtimes(p, m.Date, m.Date)
		}
	}
	if err := writeKeywords(dir, kw, s.uid, s.gid); err != nil {
		return err
	}
	// Index now so UIDs are assigned in file-name order before any client looks.
	out, err := exec.Command("/usr/bin/doveadm", "-c", s.conf, "index", "-u", user, "*").CombinedOutput()
	if err != nil {
		return fmt.Errorf("doveadm index: %v: %s", err, out)
	}
	return nil
}

func readKeywords(dir string) (map[string]int, error) {
	kw := map[string]int{}
	b, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if os.IsNotExist(err) {
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

func writeKeywords(dir string, kw map[string]int, uid, gid int) error {
	if len(kw) == 0 {
		return nil
	}
	names := make([]string, len(kw))
	for k, i := range kw {
		names[i] = k
	}
	var b strings.Builder
	for i, n := range names {
		fmt.Fprintf(&b, "%d %s\n", i, n)
	}
	p := filepath.Join(dir, "dovecot-keywords")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Chown(p, uid, gid)
}

// encodeUTF7 is IMAP's modified UTF-7 (RFC 3501 5.1.3), which maildir++
// folder names on disk use. Written here because go-imap keeps its encoder
// internal; it is only needed to lay out test fixtures.
func encodeUTF7(s string) string {
	var b strings.Builder
	var pending []rune
	flush := func() {
		if len(pending) == 0 {
			return
		}
		u := utf16.Encode(pending)
		raw := make([]byte, 0, len(u)*2)
		for _, c := range u {
			raw = append(raw, byte(c>>8), byte(c))
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		enc = strings.TrimRight(enc, "=")
		b.WriteString("&" + strings.ReplaceAll(enc, "/", ",") + "-")
		pending = nil
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			pending = append(pending, r)
		}
	}
	flush()
	return b.String()
}

// appendAll delivers over IMAP (formats other than maildir; small cases).
func (s *Server) appendAll(user, folder string, msgs []Message) error {
	c, err := s.login(user)
	if err != nil {
		return err
	}
	defer c.Close()
	name := folder
	if !strings.EqualFold(folder, "INBOX") {
		name = strings.ReplaceAll(folder, "/", s.Delimiter())
		parts := strings.Split(name, s.Delimiter())
		for i := 1; i <= len(parts); i++ {
			c.Create(strings.Join(parts[:i], s.Delimiter()), nil).Wait()
		}
	}
	for _, m := range msgs {
		opts := &imap.AppendOptions{Time: m.Date}
		for _, f := range m.Flags {
			opts.Flags = append(opts.Flags, imap.Flag(f))
		}
		cmd := c.Append(name, int64(len(m.Body)), opts)
		if _, err := cmd.Write(m.Body); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		if _, err := cmd.Wait(); err != nil {
			return fmt.Errorf("append to %q: %w", name, err)
		}
	}
	return c.Logout().Wait()
}

func (s *Server) login(user string) (*imapclient.Client, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "users"))
	if err != nil {
		return nil, err
	}
	pw := ""
	for _, line := range strings.Split(string(b), "\n") {
		if u, rest, ok := strings.Cut(line, ":"); ok && u == user {
			pw, _, _ = strings.Cut(strings.TrimPrefix(rest, "{PLAIN}"), ":")
		}
	}
	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// SnapMessage is one message as Snapshot reads it.
type SnapMessage struct {
	UID   uint32
	Body  []byte
	Flags []string // sorted, without \Recent
	Date  time.Time
}

// Snapshot reads every selectable folder of a mailbox over IMAP, read-only
// (EXAMINE, BODY.PEEK[]), in UID order.
func Snapshot(addr, user, password string) (map[string][]SnapMessage, string, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return nil, "", fmt.Errorf("login %s: %w", user, err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, "", err
	}
	out := map[string][]SnapMessage{}
	delim := ""
	for _, l := range list {
		if l.Delim != 0 {
			delim = string(l.Delim)
		}
		noselect := false
		for _, a := range l.Attrs {
			if a == imap.MailboxAttrNoSelect || a == imap.MailboxAttrNonExistent {
				noselect = true
			}
		}
		if noselect {
			continue
		}
		data, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return nil, "", fmt.Errorf("examine %q: %w", l.Mailbox, err)
		}
		var msgs []SnapMessage
		if data.NumMessages > 0 {
			bufs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
				UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
			}).Collect()
			if err != nil {
				return nil, "", fmt.Errorf("fetch %q: %w", l.Mailbox, err)
			}
			for _, b := range bufs {
				m := SnapMessage{UID: uint32(b.UID), Date: b.InternalDate}
				for _, f := range b.Flags {
					if !strings.EqualFold(string(f), `\Recent`) {
						m.Flags = append(m.Flags, string(f))
					}
				}
				sort.Strings(m.Flags)
				for _, sec := range b.BodySection {
					m.Body = bytes.Clone(sec.Bytes)
				}
				msgs = append(msgs, m)
			}
			sort.Slice(msgs, func(i, j int) bool { return msgs[i].UID < msgs[j].UID })
		}
		out[l.Mailbox] = msgs
	}
	c.Logout().Wait()
	return out, delim, nil
}
