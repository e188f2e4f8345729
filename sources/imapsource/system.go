package imapsource

import (
	"strings"

	"github.com/banjia-mail/banjia/mail"
)

// Exchange (on-premises and Online) shows its system folders over IMAP as
// if they were mail folders: the Outbox, where Outlook leaves what it has
// not sent yet, and Sync Issues with Conflicts, Local Failures and Server
// Failures, Outlook's synchronisation logs and the losing copies of
// conflicting edits. They are named in the mailbox's language ("Sync
// Issues/Conflicts", "同步问题/冲突"). The source marks them
// (mail.Folder.System) as the Graph source marks the same folders, so a job
// leaves them behind, and says so, unless it keeps system folders.
//
// Any other server may have a folder called Outbox that is the member's own:
// the names count only in a mailbox laid out as Exchange's (a top-level
// Sync Issues holding one of its three folders) or read from one of
// Exchange Online's IMAP hosts.

var (
	exchangeOutbox     = []string{"Outbox", "发件箱"}
	exchangeSyncIssues = []string{"Sync Issues", "同步问题"}
	exchangeSyncKids   = []string{"Conflicts", "Local Failures", "Server Failures", "冲突", "本地故障", "服务器故障"}
	// Exchange Online's IMAP hosts, in Microsoft's clouds (see
	// sources/exchange.Clouds; not imported here, as it brings OAuth).
	exchangeOnlineHosts = []string{"outlook.office365.com", "outlook.office.com", "partner.outlook.cn", "outlook.office365.us", "webmail.apps.mil"}
)

const (
	outboxReason     = "Exchange's Outbox: messages Outlook has not sent yet, which the new server's mail clients would not send"
	syncIssuesReason = "Exchange's Sync Issues: Outlook's synchronisation logs and losing copies of conflicting edits, not the member's mail"
)

// levels is a folder's name, relative to its namespace prefix, cut at its delimiter.
func levels(f mail.Folder) []string {
	name := strings.TrimPrefix(f.Name, f.Prefix)
	if f.Delim == 0 {
		return []string{name}
	}
	return strings.Split(name, string(f.Delim))
}

func oneOf(name string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// exchangeLayout says the folders are an Exchange mailbox's.
func exchangeLayout(folders []mail.Folder, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range exchangeOnlineHosts {
		if host == h {
			return true
		}
	}
	for _, f := range folders {
		if l := levels(f); len(l) == 2 && oneOf(l[0], exchangeSyncIssues) && oneOf(l[1], exchangeSyncKids) {
			return true
		}
	}
	return false
}

// markSystem marks Exchange's system folders, when the mailbox is Exchange's.
func markSystem(folders []mail.Folder, host string) {
	if !exchangeLayout(folders, host) {
		return
	}
	for i, f := range folders {
		l := levels(f)
		switch {
		case len(l) == 1 && oneOf(l[0], exchangeOutbox):
			folders[i].System = outboxReason
		case oneOf(l[0], exchangeSyncIssues):
			folders[i].System = syncIssuesReason
		}
	}
}
