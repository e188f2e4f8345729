package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
)

func init() {
	words["en"]["subj.remind"] = "[banjia] %d days left to move your old mailbox %s"
	words["en"]["intro.remind"] = "Your old mailbox %s has not been moved into this mailbox (%s) yet. The move can be started until %s."
	words["en"]["sms.remind"] = "banjia: your old mailbox %s has not been moved yet. Start the move at %s before %s."
	words["zh"]["subj.remind"] = "【邮箱搬家】还剩%d天: 请把旧邮箱 %s 搬到这里"
	words["zh"]["intro.remind"] = "旧邮箱 %s 还没有搬到这个新邮箱 (%s)。请在 %s 之前启动搬家。"
	words["zh"]["sms.remind"] = "【邮箱搬家】旧邮箱%s还未搬家, 请在%s前登录%s启动搬家。"
}

// Schedule sends the notices that come from the clock rather than from the
// engine: reminders to the members of a member-triggered job who have not
// started, RemindDays before its enrollment window closes (mail, and a text
// through the SMS hook), and the admins' daily digest of a running job.
// What went out is marked in the state file: a restart sends nothing twice.
type Schedule struct {
	Store    *state.Store
	Notifier *Notifier // nil: texts only
	SMS      *SMSHook  // nil: mail only
	// Portal is the portal's address for the links; reminders wait until
	// it is known.
	Portal string
	Lang   string
	// Accounts is the live view of a job's accounts; nil: the state file's.
	Accounts func(job string) ([]*state.Account, error)
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	Log *slog.Logger
}

const day = 24 * time.Hour

func (s *Schedule) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Schedule) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Schedule) accounts(job string) ([]*state.Account, error) {
	if s.Accounts != nil {
		return s.Accounts(job)
	}
	return s.Store.Accounts(job)
}

// Run calls Tick every interval until ctx ends.
func (s *Schedule) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil {
			s.log().Error("notices", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick sends what is due now: it reports how many reminders and digests
// it queued.
func (s *Schedule) Tick(ctx context.Context) error {
	jobs, err := s.Store.Jobs()
	if err != nil {
		return err
	}
	now := s.now()
	for _, job := range jobs {
		ns, err := s.Store.NoticeSettingsOf(job.ID)
		if err != nil {
			return err
		}
		if err := s.remind(ctx, job, ns, now); err != nil {
			return err
		}
		if err := s.daily(job, ns, now); err != nil {
			return err
		}
	}
	return nil
}

// due is the reminder due at now: the fewest days left among RemindDays
// whose moment has come (0: none). Reminders whose moment passed unsent
// (banjia was not running) are covered by the later one, not sent in a row.
func due(job *state.Job, ns state.NoticeSettings, now time.Time) (days int, passed []int) {
	if job.ModeOf() != state.ModeMember || !job.Enrolling(now) {
		return 0, nil
	}
	for _, d := range ns.RemindDays {
		if d > 0 && !now.Before(job.EnrollUntil.Add(-time.Duration(d)*day)) {
			passed = append(passed, d)
		}
	}
	if len(passed) == 0 {
		return 0, nil
	}
	return slices.Min(passed), passed
}

func remindKey(kind string, d int, account string) string {
	return fmt.Sprintf("%s/%d/%s", kind, d, strings.ToLower(account))
}

func (s *Schedule) remind(ctx context.Context, job *state.Job, ns state.NoticeSettings, now time.Time) error {
	d, passed := due(job, ns, now)
	if d == 0 || s.Portal == "" {
		return nil
	}
	accts, err := s.accounts(job.ID)
	if err != nil {
		return err
	}
	left := max(int(job.EnrollUntil.Sub(now).Hours()/24+0.999), 1)
	until := job.EnrollUntil.Local().Format("2006-01-02 15:04")
	for _, a := range accts {
		if !job.AwaitingMember(a) {
			continue
		}
		lang := a.Lang
		if lang == "" {
			lang = s.Lang
		}
		l := state.Lang(lang)
		if s.Notifier != nil {
			if _, done := s.Store.Noticed(job.ID, remindKey("remind", d, a.ID)); !done {
				if s.Notifier.Remind(job, a, s.Portal, l, left) {
					for _, p := range passed {
						if err := s.Store.MarkNoticed(job.ID, remindKey("remind", p, a.ID), now); err != nil {
							return err
						}
					}
				}
			}
		}
		if s.SMS != nil {
			if _, done := s.Store.Noticed(job.ID, remindKey("sms", d, a.ID)); !done {
				to := a.Target
				if p := phoneOf(a); p != "" {
					to = p
				}
				text := fmt.Sprintf(word(l, "sms.remind"), a.ID, until, s.Portal)
				if l == "en" {
					text = fmt.Sprintf(word(l, "sms.remind"), a.ID, s.Portal, until)
				}
				if err := s.SMS.Send(ctx, SMS{To: to, Text: text, Job: job.ID, Account: a.ID}); err != nil {
					// Tried again at the next tick.
					s.log().Warn("reminder text not sent", "job", job.ID, "account", a.ID, "err", err)
					continue
				}
				for _, p := range passed {
					if err := s.Store.MarkNoticed(job.ID, remindKey("sms", p, a.ID), now); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (s *Schedule) daily(job *state.Job, ns state.NoticeSettings, now time.Time) error {
	if !ns.Daily || s.Notifier == nil || job.State != state.JobRunning {
		return nil
	}
	if last, ok := s.Store.Noticed(job.ID, "progress"); ok && now.Sub(last) < day {
		return nil
	}
	accts, err := s.accounts(job.ID)
	if err != nil {
		return err
	}
	s.Notifier.Progress(job, accts, s.Lang)
	return s.Store.MarkNoticed(job.ID, "progress", now)
}

// Remind queues a reminder for a member who has not started: days left
// until the window closes. It reports whether the mail was queued.
func (n *Notifier) Remind(job *state.Job, a *state.Account, portal, lang string, days int) bool {
	addr, err := mail.ParseAddress(a.Target)
	if err != nil || job == nil {
		return false
	}
	l := state.Lang(lang)
	var b strings.Builder
	fmt.Fprintf(&b, word(l, "intro.remind")+"\n\n", a.ID, a.Target, job.EnrollUntil.Local().Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, word(l, "how.invite")+"\n\n", portal, a.Target)
	fmt.Fprintf(&b, "%s\n", word(l, "outro"))
	m := n.compose([]string{addr.Address}, fmt.Sprintf(word(l, "subj.remind"), days, a.ID), b.String(), l)
	return n.enqueue(m.about(job, KindReminder))
}
