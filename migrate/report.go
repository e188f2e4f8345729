package migrate

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// FailureGroup is one reason messages were not copied, and how many.
type FailureGroup struct {
	Reason   string
	Messages int64
}

// noReason stands for a failed message whose reason was not kept (a folder
// keeps at most maxReasons of them).
const noReason = "reason not recorded"

// FailureGroups groups an account's messages that were not copied by
// reason, the largest group first. A folder refused as a whole is one group
// even when it held no message (an empty folder that could not be created
// is still not on the target).
func FailureGroups(cps map[string]*state.Checkpoint) []FailureGroup {
	n := map[string]int64{}
	for _, cp := range cps {
		if cp.FolderReason != "" {
			n[fmt.Sprintf("folder %q not copied: %s", cp.Folder, cp.FolderReason)] += cp.Failed.Count()
			continue
		}
		for _, r := range cp.Failed {
			for u := r.Lo; ; u++ {
				why := cp.Reasons[u]
				if why == "" {
					why = noReason
				}
				n[why]++
				if u == r.Hi {
					break
				}
			}
		}
	}
	out := make([]FailureGroup, 0, len(n))
	for r, c := range n {
		out = append(out, FailureGroup{Reason: r, Messages: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Messages != out[j].Messages {
			return out[i].Messages > out[j].Messages
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// GroupsLine says the first few groups in one line: `298 messages: folder
// "Archive" not copied: ...; 2 messages: ...`.
func GroupsLine(groups []FailureGroup, most int) string {
	var parts []string
	for i, g := range groups {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more reasons", len(groups)-most))
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s: %s", g.Messages, plural(g.Messages, "message", "messages"), g.Reason))
	}
	return strings.Join(parts, "; ")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// NotCopied is one message a job did not copy, as `banjia job report`
// lists it. Date and Size are zero when not recorded (a folder keeps them
// for at most maxReasons messages).
type NotCopied struct {
	Account string    `json:"account"`
	Folder  string    `json:"folder"`
	UID     uint32    `json:"uid"`
	Date    time.Time `json:"date,omitzero"`
	Size    int64     `json:"size,omitempty"`
	Reason  string    `json:"reason"`
	// LeftBehind marks a whole folder the job's options left behind (a
	// system folder), not a failure: retrying does not copy it.
	LeftBehind bool `json:"left_behind,omitempty"`
}

// Report lists every message of a job that is not on the target because it
// failed, account by account, folder by folder, in UID order; an account
// that failed as a whole (it never listed its folders) is one row with UID
// 0, and so is each system folder an account left behind (LeftBehind).
func Report(store *state.Store, jobID string) ([]NotCopied, error) {
	accts, err := store.Accounts(jobID)
	if err != nil {
		return nil, err
	}
	var out []NotCopied
	for _, a := range accts {
		cps, err := store.Checkpoints(jobID, a.ID)
		if err != nil {
			return nil, err
		}
		if a.State == state.AccountFailed {
			out = append(out, NotCopied{Account: a.ID, Reason: "the account failed: " + a.Reason})
		}
		out = append(out, leftRows(a)...)
		names := make([]string, 0, len(cps))
		for n := range cps {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cp := cps[n]
			if cp.FolderReason != "" && cp.Failed.Count() == 0 {
				out = append(out, NotCopied{Account: a.ID, Folder: n, Reason: "folder not created: " + cp.FolderReason})
			}
			for _, r := range cp.Failed {
				for u := r.Lo; ; u++ {
					why := cp.Reasons[u]
					if cp.FolderReason != "" {
						why = "folder not created: " + cp.FolderReason
					} else if why == "" {
						why = noReason
					}
					out = append(out, NotCopied{Account: a.ID, Folder: n, UID: u, Date: cp.Dates[u], Size: cp.Sizes[u], Reason: why})
					if u == r.Hi {
						break
					}
				}
			}
		}
	}
	return out, nil
}
