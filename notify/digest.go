package notify

import (
	"fmt"
	"strings"

	"github.com/banjia-mail/banjia/state"
)

// Digests: the admins get one mail per job, not one per account. A job of
// 500 accounts mails each admin once at its end (JobFinished), and, when
// the job asks for it (state.NoticeSettings.Daily), once a day while it
// runs (Progress); every member gets their own mail (AccountFinished).

func init() {
	words["en"]["subj.progress"] = "[banjia] Migration %s, %s: %d of %d accounts done, %d failed"
	words["en"]["intro.progress"] = "Progress of the migration %s at %s (%s)."
	words["zh"]["subj.progress"] = "【邮箱搬家】搬家任务 %s %s 进展: 已完成%d/%d个, 搬家失败%d个"
	words["zh"]["intro.progress"] = "搬家任务 %s 截至 %s 的进展 (%s)。"
}

// tally counts accounts per state, sums their counts and lists those that
// did not succeed.
func tally(accts []*state.Account) (byState map[state.AccountState]int, total state.Counts, problems []*state.Account) {
	byState = map[state.AccountState]int{}
	for _, a := range accts {
		if a == nil {
			continue
		}
		byState[a.State]++
		total.Add(a.Counts)
		if a.State == state.AccountFailed || a.State == state.AccountPartial || a.State == state.AccountAbandoned {
			problems = append(problems, a)
		}
	}
	return byState, total, problems
}

// Progress queues a running job's digest for the admins: accounts per
// state, the totals so far and the accounts that did not succeed.
func (n *Notifier) Progress(job *state.Job, accts []*state.Account, lang string) {
	if len(n.cfg.Admins) == 0 || job == nil {
		return
	}
	l := state.Lang(lang)
	byState, total, problems := tally(accts)
	day := n.now().Local().Format("2006-01-02")
	var b strings.Builder
	fmt.Fprintf(&b, word(l, "intro.progress")+"\n\n", jobName(job), stamp(n.now()), word(l, string(job.State)))
	summary(&b, l, job.ID, len(accts), byState, total, problems)
	fmt.Fprintf(&b, "\n%s\n", word(l, "outro"))
	done := 0
	for s, c := range byState {
		if s.Finished() {
			done += c
		}
	}
	subject := fmt.Sprintf(word(l, "subj.progress"), jobName(job), day, done, len(accts), byState[state.AccountFailed])
	n.enqueue(n.compose(n.cfg.Admins, subject, b.String(), l).about(job, KindProgress))
}

// Admins are the addresses the digests go to.
func (n *Notifier) Admins() []string { return append([]string(nil), n.cfg.Admins...) }
