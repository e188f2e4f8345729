package migrate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/state"
)

// System folders are the folders a source takes for its server's own
// rather than mail (mail.Folder.System: Exchange's Outbox, Scheduled and
// Sync Issues with everything below it, from the Graph source and from the
// IMAP source reading an Exchange mailbox). A job leaves them behind unless
// its options keep them (state.Options.KeepSystemFolders, the CLI's
// --system-folders), and never silently: each account records what it
// left and why (state.Account.LeftBehind), the event log says it once, and
// `banjia job report` lists it.

func systemFolderLeft(f mail.Folder, o state.Options) bool {
	return f.System != "" && !o.KeepSystemFolders
}

// noteLeftBehind records the system folders this run leaves behind; the
// event is written when that list changes (the first run, a folder gone or
// new), not on every re-run.
func (a *accountRun) noteLeftBehind(folders []mail.Folder) {
	var left []state.LeftFolder
	for _, f := range folders {
		if systemFolderLeft(f, a.job.Options) {
			left = append(left, state.LeftFolder{Folder: slashed(f), Reason: f.System})
		}
	}
	a.mu.Lock()
	same := slices.Equal(left, a.acct.LeftBehind)
	if !same {
		a.acct.LeftBehind = left
		a.acctDirty = true
	}
	a.mu.Unlock()
	if same || len(left) == 0 {
		return
	}
	names := make([]string, len(left))
	for i, l := range left {
		names[i] = fmt.Sprintf("%q", l.Folder)
	}
	a.r.event(a.job.ID, a.acct.ID, "account.folders-left", fmt.Sprintf("%s: %d system %s not copied (%s): %s; the job's --system-folders option copies them",
		a.acct.ID, len(left), plural(int64(len(left)), "folder", "folders"), strings.Join(names, ", "), leftReasons(left)))
}

// leftReasons is each distinct reason once.
func leftReasons(left []state.LeftFolder) string {
	var out []string
	for _, l := range left {
		if !slices.Contains(out, l.Reason) {
			out = append(out, l.Reason)
		}
	}
	return strings.Join(out, "; ")
}

// leftRows are an account's left-behind folders as report rows.
func leftRows(a *state.Account) []NotCopied {
	var out []NotCopied
	for _, l := range a.LeftBehind {
		out = append(out, NotCopied{Account: a.ID, Folder: l.Folder, LeftBehind: true,
			Reason: "system folder left behind: " + l.Reason + " (the job's --system-folders option copies it)"})
	}
	return out
}
