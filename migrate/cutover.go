package migrate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// Cutover (docs/cutover.md): after the first pass the admin switches MX,
// then syncs the job as often as wanted (each sync copies only what arrived
// in the old mailboxes since), then closes it. The credentials every sync
// needs stay sealed in the state file until the close, or until the
// retention chosen at create (--keep-credentials) passes, whichever comes
// first. Sync and Close are the one front door for the CLI, the control
// socket, the dashboard and the API (through Control).

// ParseKeep reads a credential retention as an admin types it: "14d",
// "36h", "90m"; "" is the default. It refuses 0, negatives and anything
// past state.MaxKeepCredentials.
func ParseKeep(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return state.DefaultKeepCredentials, nil
	}
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		if err == nil && days > int(state.MaxKeepCredentials/(24*time.Hour)) {
			days = int(state.MaxKeepCredentials/(24*time.Hour)) + 1
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil {
		return 0, fmt.Errorf("keep credentials %q: want a duration such as 14d, 36h or 90m", s)
	}
	return d, CheckKeep(d)
}

// CheckKeep says why a credential retention is refused, or nil.
func CheckKeep(d time.Duration) error {
	switch {
	case d <= 0:
		return fmt.Errorf("keep credentials %s: want more than 0 (the syncs after the MX switch need them)", FormatKeep(d))
	case d > state.MaxKeepCredentials:
		return fmt.Errorf("keep credentials: more than %d days; want at most %dd (close the job to wipe them sooner)",
			state.MaxKeepCredentials/(24*time.Hour), state.MaxKeepCredentials/(24*time.Hour))
	}
	return nil
}

// FormatKeep writes a retention the way ParseKeep reads it.
func FormatKeep(d time.Duration) string {
	switch {
	case d != 0 && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// ErrClosed says the job was closed: its credentials are wiped and nothing
// of it runs any more.
var ErrClosed = errors.New("job closed")

func closedError(j *state.Job) error {
	return fmt.Errorf("job %s was closed at %s: its stored credentials are wiped and it no longer starts or syncs; create a new job to move more mail: %w",
		j.ID, j.Closed.UTC().Format("2006-01-02 15:04 MST"), ErrClosed)
}

// Sync copies, in every account of the job, only what arrived since the
// last pass: the step after the MX switch, as often as wanted. It needs no
// password again: the delegated admin's, the CSV's or the members' stay
// sealed until Close or the retention. A sync of an account where nothing
// is new lists its folders and copies nothing. The sync runs in the
// background; Wait waits for it.
func (m *Manager) Sync(jobID, who string) error {
	j, err := m.store.Job(jobID)
	if err != nil {
		return fmt.Errorf("job %q: %w", jobID, err)
	}
	switch {
	case !j.Closed.IsZero():
		return closedError(j)
	case j.State == state.JobEnded:
		return fmt.Errorf("job %s was ended: its accounts are abandoned; create a new job to move more mail", jobID)
	case j.State == state.JobPaused:
		return fmt.Errorf("job %s is paused: resume it, then sync", jobID)
	case j.State == state.JobCreated:
		return fmt.Errorf("job %s has not started: start it (banjia job start %s) for the first pass, then sync after the MX switch", jobID, jobID)
	}
	if err := m.ExpireJobCredentials(jobID); err != nil {
		return err
	}
	if j, err = m.store.Job(jobID); err != nil {
		return err
	}
	if err := m.canSync(j); err != nil {
		return err
	}
	if err := m.mayRun(jobID); err != nil {
		return err
	}
	if m.Running(jobID) {
		if a := m.Copying(jobID, nil); a != "" {
			return fmt.Errorf("job %s is still copying (%s, among others): sync once this pass has finished", jobID, a)
		}
		// A member-triggered job waits for its members: the wait gives way
		// to the sync, and resumes after it (waitMembersAgain).
		m.stopWaiting(jobID)
	}
	m.EventOf(who, jobID, "", "admin.sync", wording.New("ev.admin.sync", "who", who, "job", jobID))
	return m.start(jobID, runOptions{sync: true})
}

// SyncWait is Sync, then waits until that sync has ended (or ctx has) and
// returns how it ended (ran), or why it was refused (err): `banjia job
// sync` handed to a running banjia serve must not say the sync is done
// before it is. A member-triggered job goes back to waiting for its
// members afterwards; that wait is not waited for.
func (m *Manager) SyncWait(ctx context.Context, jobID, who string) (ran, err error) {
	if err := m.Sync(jobID, who); err != nil {
		return nil, err
	}
	m.mu.Lock()
	ru := m.runs[jobID]
	last := m.last[jobID]
	m.mu.Unlock()
	if ru == nil || !ru.sync {
		// It ended already (Sync waits until the run holds the job).
		return last, nil
	}
	select {
	case <-ru.done:
		return ru.err, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitMembersAgain: a sync interrupted a member-triggered job's wait for
// its members (Sync); once it has ended, banjia serve waits for them
// again, as before the sync. m.mu is held.
func (m *Manager) waitMembersAgain(jobID string, ru *run, err error) {
	if !ru.sync || err != nil || m.only != "" || m.idle || m.ctx.Err() != nil {
		return
	}
	j, jerr := m.store.Job(jobID)
	if jerr != nil || j.ModeOf() != state.ModeMember || !j.Enrolling(time.Now()) {
		return
	}
	if _, jerr = m.startLocked(j, runOptions{}); jerr != nil {
		m.cfg.Log.Error("member-triggered job not waiting for its members again after a sync", "job", jobID, "err", jerr)
	}
}

// canSync says why the job has nothing to log in with, or nil.
func (m *Manager) canSync(j *state.Job) error {
	if len(j.SourceAdminSecret) > 0 {
		return nil
	}
	accts, err := m.store.Accounts(j.ID)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if len(a.SourceSecret) > 0 {
			return nil
		}
	}
	if !j.CredentialsWiped.IsZero() {
		return fmt.Errorf("job %s: its stored credentials were wiped at %s, when the retention of %s set at create (--keep-credentials) ran out; give the passwords again (banjia job add) to sync",
			j.ID, j.CredentialsWiped.UTC().Format("2006-01-02 15:04 MST"), FormatKeep(j.Keep()))
	}
	if j.ModeOf() == state.ModeMember {
		return fmt.Errorf("job %s: no member has typed an old password yet; nothing to sync", j.ID)
	}
	return fmt.Errorf("job %s: no old password is stored; give them again (banjia job add) to sync", j.ID)
}

// stopWaiting stops the job's runner, which copies nothing now (it waits
// for members), and waits until it has let go of the job.
func (m *Manager) stopWaiting(jobID string) {
	m.mu.Lock()
	ru := m.runs[jobID]
	m.mu.Unlock()
	if ru == nil {
		return
	}
	ru.r.Stop()
	<-ru.done
}

// Close ends the job's cutover: every stored credential (members' old and
// new passwords, the migration and target admins' passwords) is wiped and
// the state file is scrubbed at once, so that no copy of it taken from
// now on holds them; accounts not finished are abandoned. A closed job
// never starts or syncs again. Closing a closed job wipes again whatever
// a crash may have left.
func (m *Manager) Close(jobID, who string) error {
	j, err := m.store.Job(jobID)
	if err != nil {
		return fmt.Errorf("job %q: %w", jobID, err)
	}
	again := !j.Closed.IsZero()
	if m.Running(jobID) {
		if a := m.Copying(jobID, nil); a != "" {
			return fmt.Errorf("job %s is copying now (%s, among others): close it once this pass has finished, or pause it first", jobID, a)
		}
		m.stopWaiting(jobID)
	}
	abandoned, err := m.wipeClosed(jobID)
	if err != nil {
		return err
	}
	if again {
		m.EventOf(who, jobID, "", "job.closed", wording.New("ev.job.closed.again", "who", who, "job", jobID))
	} else {
		msg := wording.New("ev.job.closed", "who", who, "job", jobID)
		if abandoned > 0 {
			msg = wording.New(one("ev.job.closed.abandoned", abandoned), "who", who, "job", jobID, "n", strconv.Itoa(abandoned))
		}
		m.EventOf(who, jobID, "", "job.closed", msg)
	}
	m.changes.notify()
	return nil
}

// wipeClosed marks the job closed, wipes its credentials and scrubs the
// state file, with no run able to start meanwhile; it returns how many
// accounts it abandoned.
func (m *Manager) wipeClosed(jobID string) (abandoned int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.runs[jobID]; ok {
		return 0, fmt.Errorf("job %s started again while it was being closed: try again once this pass has finished", jobID)
	}
	now := time.Now().UTC()
	err = m.store.UpdateJob(jobID, func(j *state.Job) error {
		if j.Closed.IsZero() {
			j.Closed = now
		}
		j.WipeSecrets()
		return nil
	})
	if err != nil {
		return 0, err
	}
	accts, err := m.store.Accounts(jobID)
	if err != nil {
		return 0, err
	}
	var changed []*state.Account
	for _, a := range accts {
		if !a.State.Finished() {
			a.State, a.Reason, a.Finished = state.AccountAbandoned, "the job was closed before this account finished", now
			abandoned++
		} else if !a.HasSecrets() {
			continue
		}
		a.WipeSecrets()
		changed = append(changed, a)
	}
	if err := m.store.PutAccounts(jobID, changed...); err != nil {
		return 0, err
	}
	if abandoned > 0 {
		if err := m.store.SetJobState(jobID, state.JobEnded); err != nil {
			return 0, err
		}
	}
	// Now, not a few seconds later: the admin may copy the file next.
	return abandoned, m.store.Scrub()
}

// ExpireCredentials wipes the stored credentials whose retention has run
// out, in every job no runner of this process holds now (a runner does it
// for its job between rounds). banjia serve calls it every minute.
func (m *Manager) ExpireCredentials() error {
	jobs, err := m.store.Jobs()
	if err != nil {
		return err
	}
	var errs []error
	for _, j := range jobs {
		errs = append(errs, m.ExpireJobCredentials(j.ID))
	}
	return errors.Join(errs...)
}

// KeepRetention runs ExpireCredentials every period until ctx ends: a
// server that runs for weeks keeps no password past its retention.
func (m *Manager) KeepRetention(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := m.ExpireCredentials(); err != nil {
			m.cfg.Log.Error("stored credentials past their retention not wiped; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExpireJobCredentials is ExpireCredentials for one job.
func (m *Manager) ExpireJobCredentials(jobID string) error {
	m.mu.Lock()
	if _, ok := m.runs[jobID]; ok {
		m.mu.Unlock()
		return nil
	}
	_, why, err := expireCredentials(m.store, jobID, time.Now())
	m.mu.Unlock()
	if !why.IsZero() {
		// At once, and before the event says so: the retention is a
		// promise, not a few seconds more.
		err = errors.Join(err, m.store.Scrub())
		m.EventOf(string(state.Engine), jobID, "", "job.credentials_wiped", why)
	}
	return err
}

// expireCredentials wipes what the job keeps past its retention (every
// credential, if the job is closed) and returns the accounts wiped and
// the event to record, if any. No
// runner may hold the job's accounts meanwhile, or it must wipe its own
// copies of them (Runner.expire).
func expireCredentials(store *state.Store, jobID string, now time.Time) (wiped map[string]bool, event wording.Reason, err error) {
	j, err := store.Job(jobID)
	if err != nil {
		return nil, wording.Reason{}, err
	}
	closed := !j.Closed.IsZero()
	accts, err := store.Accounts(jobID)
	if err != nil {
		return nil, wording.Reason{}, err
	}
	wiped = map[string]bool{}
	var changed []*state.Account
	for _, a := range accts {
		if a.HasSecrets() && (closed || state.Expired(j.SecretsDeadline(a), now)) {
			a.WipeSecrets()
			wiped[a.ID] = true
			changed = append(changed, a)
		}
	}
	if len(changed) > 0 {
		// Only then: a write (and its fsync) between rounds would delay
		// every enrolled member's start.
		if err := store.PutAccounts(jobID, changed...); err != nil {
			return nil, wording.Reason{}, err
		}
	}
	admin := len(j.SourceAdminSecret)+len(j.TargetAdminSecret) > 0 && (closed || state.Expired(j.JobSecretsDeadline(), now))
	if admin || (len(changed) > 0 && !closed) {
		err := store.UpdateJob(jobID, func(j *state.Job) error {
			if admin {
				j.WipeSecrets()
			}
			if !closed {
				j.CredentialsWiped = now.UTC()
			}
			return nil
		})
		if err != nil {
			return nil, wording.Reason{}, err
		}
	}
	if (admin || len(changed) > 0) && !closed {
		code := "ev.job.credentials_wiped"
		if admin {
			code += ".admin"
		}
		if len(changed) == 1 {
			code += ".1"
		}
		event = wording.New(code, "n", strconv.Itoa(len(changed)), "keep", FormatKeep(j.Keep()))
	}
	return wiped, event, nil
}

// expire wipes, between rounds, what its job keeps past the retention,
// in the state file and in the runner's own copies of the accounts (which
// a later save would otherwise write back).
func (r *Runner) expire(jobID string) error {
	wiped, why, err := expireCredentials(r.store, jobID, time.Now())
	if err != nil {
		return err
	}
	r.mu.Lock()
	for id := range wiped {
		if ar, ok := r.live[id]; ok {
			ar.mu.Lock()
			ar.acct.WipeSecrets()
			ar.mu.Unlock()
		}
	}
	r.mu.Unlock()
	if why.IsZero() {
		return nil
	}
	// Before the event says so, as ExpireJobCredentials.
	err = r.store.Scrub()
	r.eventOf(jobID, "", "job.credentials_wiped", why)
	return err
}

// nextExpiry is the earliest retention deadline of a credential the job
// still holds; zero if none.
func nextExpiry(store *state.Store, j *state.Job) time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if len(j.SourceAdminSecret)+len(j.TargetAdminSecret) > 0 {
		earlier(j.JobSecretsDeadline())
	}
	accts, _ := store.Accounts(j.ID)
	for _, a := range accts {
		if a.HasSecrets() {
			earlier(j.SecretsDeadline(a))
		}
	}
	return next
}

// synced records a completed sync on the job.
func (r *Runner) synced(jobID string) error {
	now := time.Now().UTC()
	n := 0
	err := r.store.UpdateJob(jobID, func(j *state.Job) error {
		j.Synced = now
		j.Syncs++
		n = j.Syncs
		return nil
	})
	if err != nil {
		return err
	}
	summary := r.summary(jobID)
	summary.Code, summary.Args["sync"] = "ev.job.synced", strconv.Itoa(n)
	r.eventOf(jobID, "", "job.synced", summary)
	return nil
}
