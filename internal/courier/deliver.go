package courier

import (
	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/imapfill"
)

// MailboxName translates a folder given with "/" between levels, relative
// to the personal namespace ("Archive/2024", "INBOX", "INBOX/Sub"), into the
// instance's UTF-8 name for it ("INBOX.Archive.2024"; "INBOX/Sub" is
// "INBOX.Sub", as is "Sub"). It also returns the names of the folder's
// levels, outermost first, that Deliver and CreateFolder create.
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
// first, as real folders (Courier would otherwise list parents as
// \Noselect). Courier has no LITERAL+ and drops commands pipelined behind
// LOGIN: the client waits for each answer. Courier keeps what it is given
// but not always byte for byte: a zero-length message reads back as CRLF,
// bare LFs as CRLF, NUL bytes as spaces; keywords are case-insensitive
// (the first spelling in a folder stays); INTERNALDATE reads back in UTC.
// Deliver calls for different users run in parallel.
func (s *Server) Deliver(user, folder string, msgs []dovecot.Message) error {
	return s.fill.Deliver(user, folder, msgs)
}
