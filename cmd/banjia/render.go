package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// words holds the CLI's wording in English and Simplified Chinese; the
// state names and the counts line come from state.Word.
var words = state.Words{
	"en": {
		"h.job": "JOB", "h.state": "STATE", "h.phase": "PHASE", "h.all": "ALL", "h.account": "ACCOUNT", "h.progress": "PROGRESS", "h.note": "NOTE",
		"eta": "about %s left", "outside": "outside its window %s: waits until it opens", "done": "done",
		"result.ok": "ok", "result.failed": "failed", "result.partial": "partial", "result.warning": "warning", "result.info": "info",
		"report.none":  "job %s: every selected message is on the target",
		"report.head":  "ACCOUNT\tFOLDER\tUID\tDATE\tSIZE\tREASON",
		"report.total": "%d not copied; `banjia job retry %s` tries them again once the cause is fixed",
		"report.left":  "%d system folders left behind by the job's options (not failures)",
	},
	"zh": {
		"h.job": "搬家任务", "h.state": "任务状态", "h.phase": "阶段", "h.all": "所有的", "h.account": "邮箱账号", "h.progress": "进展情况", "h.note": "说明",
		"eta": "预计还需 %s", "outside": "不在搬家时段 %s 内：等待时段开始", "done": "已结束",
		"result.ok": "成功", "result.failed": "失败", "result.partial": "部分失败", "result.warning": "警告", "result.info": "信息",
		"report.none":  "搬家任务 %s: 所选邮件都已在新邮箱中",
		"report.head":  "邮箱账号\t文件夹\tUID\t日期\t大小\t原因",
		"report.total": "%d 封没有搬过来; 排除原因后, 用 `banjia job retry %s` 重试",
		"report.left":  "%d 个系统文件夹按任务设置留在旧邮箱 (不算失败)",
	},
}

func langOf(flag string) string {
	l := strings.ToLower(flag)
	if l == "" {
		for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
			if l = strings.ToLower(os.Getenv(v)); l != "" {
				break
			}
		}
	}
	return state.Lang(l)
}

func word(lang, key string) string { return words.Get(lang, key) }

// jobTable prints the job table (docs/requirements.md R9): all / not started / in progress /
// succeeded / failed / abandoned.
func jobTable(w io.Writer, lang string, rows []*migrate.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", word(lang, "h.job"), word(lang, "h.state"), word(lang, "h.phase"), word(lang, "h.all"),
		word(lang, "not_started"), word(lang, "in_progress"), word(lang, "succeeded"), word(lang, "partial"), word(lang, "failed"), word(lang, "abandoned"))
	for _, st := range rows {
		n := tally(st.Accounts)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", st.Job.ID, word(lang, string(st.Job.State)), st.Job.PhaseText(lang), len(st.Accounts),
			n[state.AccountNotStarted], n[state.AccountPreparing]+n[state.AccountRunning], n[state.AccountSucceeded],
			n[state.AccountPartial], n[state.AccountFailed], n[state.AccountAbandoned])
	}
	tw.Flush()
}

func tally(accts []state.Account) map[state.AccountState]int {
	n := map[state.AccountState]int{}
	for _, a := range accts {
		n[a.State]++
	}
	return n
}

// accountTable prints one line per account with the counts line (R8).
func accountTable(w io.Writer, lang string, st *migrate.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\t%s\n", word(lang, "h.account"), word(lang, "h.progress"), word(lang, "h.note"))
	for _, a := range st.Accounts {
		note := a.Counts.Line(lang)
		if a.State == state.AccountFailed || a.State == state.AccountAbandoned || a.State == state.AccountPaused {
			note = a.ReasonIn(lang) + " (" + note + ")"
		} else if a.State == state.AccountPartial {
			note = a.ReasonIn(lang)
		} else if a.State == state.AccountNotStarted {
			note = "-"
		} else if eta, ok := st.AccountETA[a.ID]; ok {
			note += "; " + fmt.Sprintf(word(lang, "eta"), eta)
		}
		name := a.ID
		if a.Target != "" && a.Target != a.ID {
			name = a.ID + " -> " + a.Target
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, word(lang, string(a.State)), note)
	}
	tw.Flush()
}

// progressLine is one plain line of progress for logs and non-terminals.
func progressLine(lang string, st *migrate.Status, elapsed time.Duration, prevImported int64, dt time.Duration) string {
	n := tally(st.Accounts)
	var c state.Counts
	for _, a := range st.Accounts {
		c.Add(a.Counts)
	}
	rate := 0.0
	if dt > 0 {
		rate = float64(c.Imported-prevImported) / dt.Seconds()
	}
	line := fmt.Sprintf("[%s] %s: %d/%d %s, %d %s, %d %s; %s; %.1f MB, %.0f msg/s",
		elapsed.Truncate(time.Second), word(lang, string(st.Job.State)),
		n[state.AccountSucceeded]+n[state.AccountPartial]+n[state.AccountFailed]+n[state.AccountAbandoned], len(st.Accounts), word(lang, "done"),
		n[state.AccountPreparing]+n[state.AccountRunning], word(lang, "in_progress"), n[state.AccountFailed]+n[state.AccountPartial], word(lang, "failed"),
		c.Line(lang), float64(c.Bytes)/1e6, rate)
	if p := n[state.AccountPaused]; p > 0 {
		// They hold the job until resumed (banjia job account JOB resume).
		line += fmt.Sprintf("; %d %s", p, word(lang, "paused"))
	}
	switch {
	case st.Outside:
		line += "; " + fmt.Sprintf(word(lang, "outside"), st.Job.Options.Window)
	case st.ETA > 0:
		line += "; " + fmt.Sprintf(word(lang, "eta"), st.ETA)
	}
	return line
}
