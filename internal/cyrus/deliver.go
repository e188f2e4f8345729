package cyrus

import (
	"fmt"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/imapfill"
)

// createUserMailbox creates a user's INBOX as the admin.
func (s *Server) createUserMailbox(addr string) error {
	c, err := imapfill.Dial(s.IMAPAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(s.AdminUser, s.AdminPassword).Wait(); err != nil {
		return fmt.Errorf("login as admin %s: %w", s.AdminUser, err)
	}
	mbox := s.userMailbox(addr)
	if err := c.Create(mbox, nil).Wait(); err != nil {
		return fmt.Errorf("admin CREATE %q: %w", mbox, err)
	}
	return c.Logout().Wait()
}

// MailboxName translates a folder given with "/" between levels, relative
// to the personal namespace ("Archive/2024", "INBOX", "INBOX/Sub"), into the
// instance's UTF-8 name for it ("INBOX.Archive.2024", or "Archive/2024"
// with AltNamespace and UnixHierarchySep). It also returns the names of the
// folder's levels, outermost first, that Deliver and CreateFolder create.
// A folder starting with "INBOX/" keeps that first level as it is (so
// without AltNamespace "INBOX/Sub" and "Sub" are both "INBOX.Sub").
func (s *Server) MailboxName(folder string) (string, []string, error) {
	return imapfill.MailboxName(folder, s.Prefix(), s.Delimiter())
}

// CreateFolder creates an empty folder of user (and its parents, as real
// folders, where missing); folder as for Deliver. An existing folder is
// left as it is.
func (s *Server) CreateFolder(user, folder string) error {
	return s.fill.Deliver(user, folder, nil)
}

// Deliver fills a folder of user over IMAP (LOGIN as the user, APPEND), in
// the order given, so UIDs ascend with it; each message keeps its bytes,
// flags (system flags and keywords) and INTERNALDATE. folder is UTF-8 with
// "/" between levels, relative to the personal namespace ("INBOX",
// "Archive/2024"); the folder and each missing parent level are created
// first, as real folders (Cyrus would otherwise make parents intermediate
// names of its own). Cyrus refuses more than 100 keywords in one folder
// (and a refused APPEND still uses up the slots it named), a zero-length
// message, one without a header, bare LFs and NUL bytes; it replaces 8-bit
// bytes in headers with 'X'; keywords are case-insensitive (the first
// spelling in a folder stays); INTERNALDATE reads back in UTC. Deliver
// calls for different users run in parallel.
func (s *Server) Deliver(user, folder string, msgs []dovecot.Message) error {
	return s.fill.Deliver(user, folder, msgs)
}
