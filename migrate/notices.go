package migrate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// Notices is what tells people about a job's events by mail (the notify
// package's Notifier): each member about their own account, the admins
// once per job.
type Notices interface {
	AccountFinished(job *state.Job, a *state.Account, lang string)
	JobFinished(job *state.Job, accts []*state.Account, lang string)
}

// Notify passes the events that end an account or a job to n: the one
// place banjia serve and banjia job start turn events into mail. lang is
// the admins' language, and a member's when they chose none.
func (m *Manager) Notify(n Notices, e *state.Event, lang string) {
	switch e.Kind {
	case "account.succeeded", "account.partial", "account.failed", "account.abandoned":
		job, err := m.store.Job(e.Job)
		if err != nil {
			return
		}
		// The live view, not the file: the final counts reach the file at
		// the next flush, after this event.
		a, err := m.Account(e.Job, e.Account)
		if err != nil {
			return
		}
		c := *a
		c.SourceSecret, c.TargetSecret = nil, nil
		if c.Lang == "" {
			c.Lang = lang
		}
		n.AccountFinished(job, &c, c.Lang)
	case "job.completed", "job.ended":
		job, err := m.store.Job(e.Job)
		if err != nil {
			return
		}
		st, err := m.Status(e.Job)
		if err != nil {
			return
		}
		accts := make([]*state.Account, 0, len(st.Accounts))
		for i := range st.Accounts {
			st.Accounts[i].SourceSecret, st.Accounts[i].TargetSecret = nil, nil
			accts = append(accts, &st.Accounts[i])
		}
		n.JobFinished(job, accts, lang)
	}
}

// OutboxRequest looks at or changes the outbox (banjia outbox, the
// dashboard's outbox page): list, retry (a mail by Seq, or all with Seq
// 0) or drop (one mail).
type OutboxRequest struct {
	Action string
	Seq    uint64 `json:",omitempty"`
}

// Outbox carries out req and returns the mails still waiting, without
// their bodies.
func (m *Manager) Outbox(req OutboxRequest, who string) ([]*state.OutMail, error) {
	switch req.Action {
	case "", "list":
	case "retry":
		n, err := m.store.RetryMail(req.Seq)
		if err != nil {
			return nil, err
		}
		m.EventOf(who, "", "", "notify.retry", wording.New("ev.notify.retry", "who", who, "n", strconv.Itoa(n)))
	case "drop":
		if req.Seq == 0 {
			return nil, errors.New("which mail? drop takes the mail's number (banjia outbox lists them)")
		}
		if err := m.store.DropMail(req.Seq); err != nil {
			return nil, err
		}
		m.EventOf(who, "", "", "notify.dropped", wording.New("ev.notify.dropped", "who", who, "seq", strconv.FormatUint(req.Seq, 10)))
	default:
		return nil, fmt.Errorf("outbox: unknown action %q: list, retry or drop", req.Action)
	}
	mails, err := m.store.Outbox()
	for _, ml := range mails {
		ml.Data = nil
	}
	return mails, err
}

// maxRemindDays bounds a reminder's lead: longer than any window.
const maxRemindDays = 365

// SetNotices sets a job's reminders and daily digest.
func (m *Manager) SetNotices(id string, ns state.NoticeSettings, who string) error {
	job, err := m.store.Job(id)
	if err != nil {
		return err
	}
	for _, d := range ns.RemindDays {
		if d < 1 || d > maxRemindDays {
			return fmt.Errorf("reminder %d days before the window closes: want 1 to %d days", d, maxRemindDays)
		}
	}
	if len(ns.RemindDays) > 0 && (job.ModeOf() != state.ModeMember || job.EnrollUntil.IsZero()) {
		return fmt.Errorf("job %s has no enrollment window for members (mode %s): there is no one to remind", id, job.ModeOf())
	}
	slices.Sort(ns.RemindDays)
	ns.RemindDays = slices.Compact(ns.RemindDays)
	if err := m.store.PutNoticeSettings(id, ns); err != nil {
		return err
	}
	reminders := wording.New("notices.reminders.none")
	if len(ns.RemindDays) > 0 {
		var days []string
		for _, d := range ns.RemindDays {
			days = append(days, fmt.Sprint(d))
		}
		reminders = wording.New("notices.reminders", "days", strings.Join(days, ", "))
	}
	daily := wording.New("notices.daily.none")
	if ns.Daily {
		daily = wording.New("notices.daily")
	}
	m.EventOf(who, id, "", "job.notices", wording.New("ev.job.notices", "who", who).With("reminders", reminders).With("daily", daily))
	return nil
}

func (m *Manager) handleNotices(req ControlRequest, who string) ControlReply {
	if req.Op == "notices" {
		if req.Notices == nil {
			return replyOf(errors.New("notices: no settings given"))
		}
		return replyOf(m.SetNotices(req.Job, *req.Notices, who))
	}
	var oreq OutboxRequest
	if req.Outbox != nil {
		oreq = *req.Outbox
	}
	mails, err := m.Outbox(oreq, who)
	rep := replyOf(err)
	rep.Outbox = mails
	return rep
}
