package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// message is one composed mail. Its Message-ID is fixed when composed, so a
// retry after a lost reply to DATA (which may have delivered it) carries
// the same id and a receiving system can tell the copies apart.
type message struct {
	to      []string
	subject string
	data    []byte
	// job and kind say what the mail is about, for the outbox's listing.
	job, kind string
}

// Kinds of mail, as the outbox lists them.
const (
	KindMember   = "member"   // an account's end, to its member
	KindDigest   = "digest"   // a job's end, to the admins
	KindProgress = "progress" // a running job's daily digest, to the admins
	KindInvite   = "invite"
	KindReminder = "reminder" // the window closes soon, to a member who has not started
)

func (m *message) about(job *state.Job, kind string) *message {
	if job != nil {
		m.job = job.ID
	}
	m.kind = kind
	return m
}

// words is the mails' wording; the state names and the counts line are
// the product's (R6-R8), from state.Word, as the CLI and the pages say them.
var words = state.Words{
	"en": {
		"skipped":    "%d skipped (outside the chosen date range or size, or gone from the old mailbox)",
		"subj.acct":  "[banjia] Mailbox move %s -> %s: %s",
		"intro.acct": "The move of the mailbox %s to %s has finished: %s.",
		"account":    "Account", "state": "State", "messages": "Messages", "reason": "Reason",
		"job": "Job", "started": "Started", "finished": "Finished",
		"subj.job":  "[banjia] Migration %s finished: %d succeeded, %d with failures, %d failed, %d abandoned",
		"intro.job": "The migration %s has finished (%s).",
		"accounts":  "Accounts", "all": "all", "total": "Total",
		"problems":     "Accounts that did not succeed:",
		"more":         "... and %d more (banjia job accounts %s lists them all)",
		"outro":        "This mail was sent by banjia, the mailbox migration tool; do not reply to it.",
		"subj.invite":  "[banjia] Move your old mailbox %s here",
		"intro.invite": "Your mail from %s can be moved into this mailbox (%s). Nothing is deleted from the old mailbox.",
		"how.invite":   "Open %s, sign in with this mailbox's address (%s) and password, then type the old mailbox's password (or authorization code). The move starts at once and you can watch it there.",
		"until.invite": "You can start the move until %s.",
	},
	"zh": {
		"skipped":    "跳过%d封 (不在所选的时间范围或大小内, 或已从原邮箱删除)",
		"subj.acct":  "【邮箱搬家】%s -> %s: %s",
		"intro.acct": "邮箱 %s 搬到 %s 已结束: %s。",
		"account":    "邮箱账号", "state": "进展情况", "messages": "说明", "reason": "失败原因",
		"job": "搬家任务", "started": "开始时间", "finished": "结束时间",
		"subj.job":  "【邮箱搬家】搬家任务 %s 已结束: 搬家成功%d个, 部分失败%d个, 搬家失败%d个, 放弃%d个",
		"intro.job": "搬家任务 %s 已结束 (%s)。",
		"accounts":  "账号", "all": "所有的", "total": "合计",
		"problems":     "未成功的账号:",
		"more":         "... 另有%d个 (用 banjia job accounts %s 查看全部)",
		"outro":        "此邮件由邮箱搬家工具 banjia 自动发送, 请勿回复。",
		"subj.invite":  "【邮箱搬家】请把旧邮箱 %s 搬到这里",
		"intro.invite": "旧邮箱 %s 的邮件可以搬到这个新邮箱 (%s), 原邮箱内邮件不会删除。",
		"how.invite":   "请打开 %s, 用新邮箱帐号 (%s) 和密码登录, 然后输入旧邮箱的密码 (或客户端授权码), 即可启动搬家并查看进度。",
		"until.invite": "请在 %s 之前启动搬家。",
	},
}

// maxListed bounds the accounts listed in a job summary: a domain of
// thousands of failures would make a mail no one reads.
const maxListed = 200

func word(lang, key string) string { return words.Get(lang, key) }

func accountName(a *state.Account) string {
	if a.Target != "" && a.Target != a.ID {
		return a.ID + " -> " + a.Target
	}
	return a.ID
}

func jobName(job *state.Job) string {
	if job == nil {
		return ""
	}
	if job.Name != "" && job.Name != job.ID {
		return job.Name + " (" + job.ID + ")"
	}
	return job.ID
}

func stamp(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05 -0700")
}

// accountMail is the mail about one finished account; forMember words a
// move that did not succeed as the portal does, without the reason.
func (n *Notifier) accountMail(job *state.Job, a *state.Account, lang string, to []string, forMember bool) *message {
	l := state.Lang(lang)
	st := word(l, string(a.State))
	target := a.Target
	if target == "" {
		target = a.ID
	}
	var b strings.Builder
	fmt.Fprintf(&b, word(l, "intro.acct")+"\n\n", a.ID, target, st)
	fmt.Fprintf(&b, "%s: %s\n", word(l, "account"), accountName(a))
	fmt.Fprintf(&b, "%s: %s\n", word(l, "state"), st)
	fmt.Fprintf(&b, "%s: %s\n", word(l, "messages"), a.Counts.Line(l))
	if a.Counts.Skipped > 0 {
		fmt.Fprintf(&b, "    "+word(l, "skipped")+"\n", a.Counts.Skipped)
	}
	switch {
	case forMember:
		fmt.Fprintf(&b, "%s\n", word(l, "member."+string(a.State)))
	case a.Reason != "" && a.State != state.AccountSucceeded:
		fmt.Fprintf(&b, "%s: %s\n", word(l, "reason"), a.ReasonIn(l))
	}
	if job != nil {
		fmt.Fprintf(&b, "%s: %s\n", word(l, "job"), jobName(job))
	}
	if !a.Started.IsZero() {
		fmt.Fprintf(&b, "%s: %s\n", word(l, "started"), stamp(a.Started))
	}
	if !a.Finished.IsZero() {
		fmt.Fprintf(&b, "%s: %s\n", word(l, "finished"), stamp(a.Finished))
	}
	fmt.Fprintf(&b, "\n%s\n", word(l, "outro"))
	subject := fmt.Sprintf(word(l, "subj.acct"), a.ID, target, st)
	return n.compose(to, subject, b.String(), l)
}

func (n *Notifier) inviteMail(job *state.Job, a *state.Account, portal, lang string, to []string) *message {
	l := state.Lang(lang)
	var b strings.Builder
	fmt.Fprintf(&b, word(l, "intro.invite")+"\n\n", a.ID, a.Target)
	fmt.Fprintf(&b, word(l, "how.invite")+"\n\n", portal, a.Target)
	if job != nil && !job.EnrollUntil.IsZero() {
		fmt.Fprintf(&b, word(l, "until.invite")+"\n\n", job.EnrollUntil.Local().Format("2006-01-02"))
	}
	fmt.Fprintf(&b, "%s\n", word(l, "outro"))
	return n.compose(to, fmt.Sprintf(word(l, "subj.invite"), a.ID), b.String(), l)
}

func (n *Notifier) jobMail(job *state.Job, accts []*state.Account, lang string, to []string) *message {
	l := state.Lang(lang)
	byState, total, problems := tally(accts)
	name, id, jobState := "", "", ""
	if job != nil {
		name, id, jobState = jobName(job), job.ID, word(l, string(job.State))
	}
	var b strings.Builder
	fmt.Fprintf(&b, word(l, "intro.job")+"\n\n", name, jobState)
	summary(&b, l, id, len(accts), byState, total, problems)
	fmt.Fprintf(&b, "\n%s\n", word(l, "outro"))
	subject := fmt.Sprintf(word(l, "subj.job"), name, byState[state.AccountSucceeded], byState[state.AccountPartial], byState[state.AccountFailed], byState[state.AccountAbandoned])
	return n.compose(to, subject, b.String(), l)
}

// compose renders a UTF-8 text/plain mail: the subject as RFC 2047 encoded
// words, the body quoted-printable (addresses, counts and English reasons
// stay readable in a raw dump, and lines stay short whatever the language).
func (n *Notifier) compose(to []string, subject, body, lang string) *message {
	subject = oneLine(subject)
	var h bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&h, "%s: %s\r\n", k, v) }
	header("From", (&mail.Address{Name: "banjia", Address: n.cfg.From}).String())
	header("To", addressList(to))
	// One encoded word per line: a long Chinese subject would otherwise make
	// a header line of hundreds of characters, which some servers refuse.
	header("Subject", strings.ReplaceAll(mime.BEncoding.Encode("utf-8", subject), "?= =?", "?=\r\n =?"))
	header("Date", time.Now().Format(time.RFC1123Z))
	header("Message-ID", messageID(n.cfg.From))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Content-Language", map[string]string{"zh": "zh-CN", "en": "en"}[lang])
	// RFC 3834: out-of-office replies and vacation robots must not answer.
	header("Auto-Submitted", "auto-generated")
	h.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&h)
	qp.Write([]byte(body))
	qp.Close()
	return &message{to: to, subject: subject, data: h.Bytes()}
}

func addressList(to []string) string {
	parts := make([]string, len(to))
	for i, a := range to {
		parts[i] = (&mail.Address{Address: a}).String()
	}
	return strings.Join(parts, ", ")
}

// oneLine keeps header values on one line: addresses and reasons come from
// CSV files and servers, and a newline in them would forge headers.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

func messageID(from string) string {
	var b [12]byte
	rand.Read(b[:])
	domain := "banjia.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = from[i+1:]
	}
	return fmt.Sprintf("<%d.%s@%s>", time.Now().UnixNano(), hex.EncodeToString(b[:]), domain)
}

// summary writes a digest's counts: accounts per state, the totals, and the
// accounts that did not succeed, each with its reason.
func summary(b *strings.Builder, l, id string, all int, byState map[state.AccountState]int, total state.Counts, problems []*state.Account) {
	fmt.Fprintf(b, "%s: %s %d", word(l, "accounts"), word(l, "all"), all)
	for _, s := range []state.AccountState{state.AccountSucceeded, state.AccountPartial, state.AccountFailed, state.AccountAbandoned,
		state.AccountNotStarted, state.AccountPreparing, state.AccountRunning} {
		if c := byState[s]; c > 0 || s.Finished() {
			fmt.Fprintf(b, ", %s %d", word(l, string(s)), c)
		}
	}
	fmt.Fprintf(b, "\n%s: %s\n", word(l, "total"), total.Line(l))
	if total.Skipped > 0 {
		fmt.Fprintf(b, "    "+word(l, "skipped")+"\n", total.Skipped)
	}
	if len(problems) > 0 {
		fmt.Fprintf(b, "\n%s\n", word(l, "problems"))
		for i, a := range problems {
			if i == maxListed {
				fmt.Fprintf(b, word(l, "more")+"\n", len(problems)-maxListed, id)
				break
			}
			fmt.Fprintf(b, "- %s  %s  %s", accountName(a), word(l, string(a.State)), a.Counts.Line(l))
			if a.Reason != "" {
				fmt.Fprintf(b, "\n  %s: %s", word(l, "reason"), a.ReasonIn(l))
			}
			b.WriteString("\n")
		}
	}
}
