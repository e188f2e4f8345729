package migrate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// FailureGroup is one reason messages were not copied, and how many.
type FailureGroup struct {
	Reason   string
	Why      wording.Reason // Reason as a catalogue code, where it has one
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
	whys := map[string]wording.Reason{}
	for _, cp := range cps {
		if cp.FolderReason != "" {
			why := wording.New("group.folder", "folder", cp.Folder).Because(cp.FolderWhyOf())
			n[why.String()] += cp.Failed.Count()
			whys[why.String()] = why
			continue
		}
		for _, r := range cp.Failed {
			for u := r.Lo; ; u++ {
				why := cp.Reasons[u]
				if why == "" {
					why = noReason
					whys[why] = wording.New("group.none")
				} else if _, ok := whys[why]; !ok {
					whys[why] = cp.WhyOf(why)
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
		out = append(out, FailureGroup{Reason: r, Why: whys[r], Messages: c})
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

// GroupsWhy is GroupsLine as a reason, worded in the reader's language.
func GroupsWhy(groups []FailureGroup, most int) wording.Reason {
	var list wording.Reason
	for i, g := range groups {
		if i == most {
			list.List = append(list.List, wording.New("group.more", "n", strconv.Itoa(len(groups)-most)))
			break
		}
		code := "group"
		if g.Messages == 1 {
			code = "group.1"
		}
		why := g.Why
		if why.IsZero() {
			why = wording.Plain(g.Reason)
		}
		list.List = append(list.List, wording.New(code, "n", n64(g.Messages)).Because(why))
	}
	return list
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
	// Why is Reason as a catalogue code (InLang words it).
	Why wording.Reason `json:"-"`
}

// InLang words the rows' reasons in lang.
func InLang(rows []NotCopied, lang string) {
	for i := range rows {
		if rows[i].Why.Coded() {
			rows[i].Reason = rows[i].Why.In(lang)
		}
	}
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
			why := wording.New("report.account").Because(accountWhy(a))
			out = append(out, NotCopied{Account: a.ID, Reason: why.String(), Why: why})
		}
		out = append(out, leftRows(a)...)
		names := make([]string, 0, len(cps))
		for n := range cps {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cp := cps[n]
			folder := wording.New("report.folder").Because(cp.FolderWhyOf())
			if cp.FolderReason != "" && cp.Failed.Count() == 0 {
				out = append(out, NotCopied{Account: a.ID, Folder: n, Reason: folder.String(), Why: folder})
			}
			for _, r := range cp.Failed {
				for u := r.Lo; ; u++ {
					var why wording.Reason
					switch text := cp.Reasons[u]; {
					case cp.FolderReason != "":
						why = folder
					case text == "":
						why = wording.New("group.none")
					default:
						why = cp.WhyOf(text)
					}
					out = append(out, NotCopied{Account: a.ID, Folder: n, UID: u, Date: cp.Dates[u], Size: cp.Sizes[u], Reason: why.String(), Why: why})
					if u == r.Hi {
						break
					}
				}
			}
		}
	}
	return out, nil
}
