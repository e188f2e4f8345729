package migrate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// The application layer: every change a person makes to a job (from the
// CLI, the dashboard, the API or the control socket) goes through these
// Manager methods, so that the checks, the events and the clean-up on
// failure are the same whichever door it came in by. The doors only read
// their own inputs (flags, forms, JSON) into the requests below and word
// the answers for their users.

// JobRequest is a new job as an admin asks for it.
type JobRequest struct {
	ID   string
	Mode string // passwords (""), delegated or member
	// Domain and NewDomain are a member-triggered job's old and new mail
	// domains. A delegated job over Microsoft Graph given no accounts
	// takes Domain's users from the directory, each to the same name at
	// NewDomain.
	Domain, NewDomain string
	// Source and Target are the servers. The accounts (and the admin
	// fields below) say who logs in: a user or password in them is not
	// kept, except a Graph source's user, which names the app.
	Source, Target mail.Endpoint
	// TargetAdmin logs in to the target for every account without a new
	// password of its own (a master user).
	TargetAdmin, TargetAdminPassword string
	// Delegation is how a delegated job's migration admin logs in as each
	// member; SourceAdminPassword is that admin's password, or the app's
	// client secret.
	Delegation          mail.DelegationRequest
	SourceAdminPassword string
	Options             state.Options
	// EnrollDays is how long after its creation the job takes new
	// accounts (members enroll); 0: only those given now.
	EnrollDays int
	// KeepCredentials is how long the passwords stay sealed for the
	// syncs after the MX switch, unless the job is closed sooner; 0: the
	// default (state.DefaultKeepCredentials).
	KeepCredentials time.Duration
	Accounts        []AccountRow
	// Directory lists a Microsoft Graph directory's users as accounts (src
	// carries the client secret as its password); nil when this door
	// cannot read a directory.
	Directory func(ctx context.Context, src mail.Endpoint, domain, newDomain string) ([]AccountRow, error)
}

// A job's name is typed in commands and shown in URLs: nothing that needs
// quoting in either.
var jobName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckJobName says why a job name is refused, or nil.
func CheckJobName(id string) error {
	if !jobName.MatchString(id) {
		return fmt.Errorf("job name %q: use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)", id)
	}
	return nil
}

// MaxEnrollDays bounds a job's enrollment window: ten years, far past any
// move, and far from the dates a larger number would overflow to.
const MaxEnrollDays = 3650

// MaxMessageSizeMB bounds the largest-message option: no mail server
// takes a message of 10 GB, and a larger number would overflow.
const MaxMessageSizeMB = 10 << 10

// MessageSizeBytes turns a largest-message option in megabytes into bytes,
// past MaxMessageSizeMB as one more MB than the bound rather than an
// overflow into "no limit": Create refuses it with the bound.
func MessageSizeBytes(mb int) int64 {
	if mb > MaxMessageSizeMB {
		return (MaxMessageSizeMB + 1) << 20
	}
	return int64(mb) << 20
}

// CheckMessageSize says why a largest-message option (bytes) is refused.
func CheckMessageSize(bytes int64) error {
	switch {
	case bytes < 0:
		return fmt.Errorf("largest message %d MB: want 0 (no limit) or more", bytes>>20)
	case bytes > MaxMessageSizeMB<<20:
		return fmt.Errorf("largest message: more than %d MB; want 0 (no limit) up to %d MB", MaxMessageSizeMB, MaxMessageSizeMB)
	}
	return nil
}

// A domain's labels: letters (any script: 中文.example is a domain),
// digits and inner hyphens, at most 63 each.
var domainLabel = regexp.MustCompile(`^[\p{L}\p{N}]([\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?$`)

// CheckDomain says why a mail domain is refused, or nil; what names it in
// the message ("old domain").
func CheckDomain(what, d string) error {
	bad := len(d) > 253 || d == ""
	for _, l := range strings.Split(d, ".") {
		if !domainLabel.MatchString(l) || utf8.RuneCountInString(l) > 63 {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("%s %q: want a mail domain such as old.example.com (letters, digits, '-' and '.')", what, d)
	}
	return nil
}

// directoryTimeout bounds the listing of a Graph directory's users.
const directoryTimeout = time.Minute

// Create checks a request and stores the job with its accounts, admin
// secrets sealed. It returns the job and how many accounts it holds. When
// anything fails nothing of the job stays behind. who is recorded in the
// event log as the one who created it. The job is not started.
func (m *Manager) Create(ctx context.Context, req JobRequest, who string) (*state.Job, int, error) {
	id := strings.TrimSpace(req.ID)
	if err := CheckJobName(id); err != nil {
		return nil, 0, err
	}
	if _, err := m.store.Job(id); err == nil {
		return nil, 0, fmt.Errorf("job %q already exists: choose another name, or add the accounts to that job", id)
	} else if !errors.Is(err, state.ErrNotFound) {
		return nil, 0, err
	}
	mode := req.Mode
	if mode == "" {
		mode = state.ModePasswords
	}
	if mode != state.ModeMember && mode != state.ModePasswords && mode != state.ModeDelegated {
		return nil, 0, fmt.Errorf("mode %q: want passwords, delegated or member", mode)
	}
	src, dst := req.Source, req.Target
	if src.Scheme != "graph" {
		src.User = ""
	}
	src.Password = ""
	dst.User, dst.Password = "", ""
	var delegation *mail.Delegation
	if mode == state.ModeDelegated {
		var err error
		if delegation, err = mail.Delegate(&src, req.Delegation); err != nil {
			return nil, 0, err
		}
		if req.SourceAdminPassword == "" {
			return nil, 0, fmt.Errorf("give the %s password", delegation.SecretName(src))
		}
	}
	domain := strings.ToLower(strings.TrimSpace(req.Domain))
	newDomain := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(req.NewDomain), "@"))
	if mode == state.ModeMember && (domain == "" || newDomain == "") {
		return nil, 0, errors.New("a member-triggered job needs the old domain and the new domain: members of the new domain enroll in the portal")
	}
	if domain != "" {
		if err := CheckDomain("old domain", domain); err != nil {
			return nil, 0, err
		}
	}
	if newDomain != "" {
		if err := CheckDomain("new domain", newDomain); err != nil {
			return nil, 0, err
		}
	}
	if err := CheckSchedule(req.Options); err != nil {
		return nil, 0, err
	}
	if err := CheckMessageSize(req.Options.MaxMessageSize); err != nil {
		return nil, 0, err
	}
	if err := CheckFolderChoices(req.Options); err != nil {
		return nil, 0, err
	}
	if req.EnrollDays < 0 || req.EnrollDays > MaxEnrollDays {
		return nil, 0, fmt.Errorf("enrollment window %d days: want 0 (only the accounts given now) up to %d", req.EnrollDays, MaxEnrollDays)
	}
	keep := req.KeepCredentials
	if keep == 0 {
		keep = state.DefaultKeepCredentials
	}
	if err := CheckKeep(keep); err != nil {
		return nil, 0, err
	}
	if req.TargetAdmin != "" && req.TargetAdminPassword == "" {
		return nil, 0, fmt.Errorf("give the password of the target admin %s", req.TargetAdmin)
	}
	rows := req.Accounts
	if len(rows) == 0 && mode == state.ModeDelegated && src.Scheme == "graph" && domain != "" {
		if req.Directory == nil {
			return nil, 0, errors.New("a Microsoft Graph directory cannot be read here: give the accounts as CSV")
		}
		if newDomain == "" {
			return nil, 0, errors.New("give the new domain: where each user's mail goes (alice@old -> alice@NEW-DOMAIN)")
		}
		e := src
		e.Password = req.SourceAdminPassword
		dctx, cancel := context.WithTimeout(ctx, directoryTimeout)
		var err error
		rows, err = req.Directory(dctx, e, domain, newDomain)
		cancel()
		if err != nil {
			return nil, 0, err
		}
	}
	switch {
	case len(rows) > 0 || mode == state.ModeMember:
	case mode == state.ModeDelegated:
		return nil, 0, errors.New("give the accounts (CSV: old address, new address; no passwords), or for a Microsoft Graph source the old and new domains")
	default:
		return nil, 0, errors.New("give the accounts (CSV: old address, new address, old password), or make the job member-triggered")
	}

	now := time.Now().UTC()
	job := &state.Job{ID: id, Name: id, Mode: mode, Domain: domain, NewDomain: newDomain,
		Source: src, Target: dst, Options: req.Options, State: state.JobCreated, Created: now,
		Cutover: state.Cutover{KeepCredentials: keep, CredentialsUntil: now.Add(keep)}}
	if req.EnrollDays > 0 {
		job.EnrollUntil = now.Add(time.Duration(req.EnrollDays) * 24 * time.Hour)
	}
	var err error
	if delegation != nil {
		job.Delegation = delegation
		if job.SourceAdminSecret, err = m.store.Seal(req.SourceAdminPassword); err != nil {
			return nil, 0, err
		}
	}
	if req.TargetAdmin != "" {
		job.Target.User = req.TargetAdmin
		if job.TargetAdminSecret, err = m.store.Seal(req.TargetAdminPassword); err != nil {
			return nil, 0, err
		}
	}
	if err := m.store.PutJob(job); err != nil {
		return nil, 0, err
	}
	n, err := AddAccounts(m.store, job, rows, now)
	if err != nil {
		// Nothing half-made stays behind: the job goes with its accounts,
		// and the same name can be used again once the input is fixed.
		if derr := m.store.DeleteJob(job.ID); derr != nil {
			m.cfg.Log.Error("job left half-made", "job", job.ID, "err", derr)
		}
		return nil, 0, fmt.Errorf("accounts CSV %w", err)
	}
	m.EventOf(who, job.ID, "", "job.created", wording.New("ev.job.created", "job", job.ID, "who", who,
		"mode", job.ModeOf(), "n", strconv.Itoa(n), "from", src.String(), "to", dst.String()))
	return job, n, nil
}

// AddAccounts adds accounts to a job, or gives existing ones new
// passwords. A job that runs or ran takes them now; a created job waits
// for its start.
func (m *Manager) AddAccounts(jobID string, rows []AccountRow, who string) (int, error) {
	job, err := m.store.Job(jobID)
	if err != nil {
		return 0, fmt.Errorf("job %q: %w", jobID, err)
	}
	if !job.Closed.IsZero() {
		return 0, closedError(job)
	}
	n, err := AddAccounts(m.store, job, rows, time.Now())
	if err != nil {
		return 0, fmt.Errorf("accounts CSV %w", err)
	}
	m.EventOf(who, jobID, "", "job.accounts", wording.New("ev.job.accounts", "who", who, "n", strconv.Itoa(n)))
	if job.State != state.JobCreated {
		if err := m.Wake(jobID); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Enrollment is a member starting their own move in the portal, once the
// old server accepted the old password.
type Enrollment struct {
	Member   string // the new address, signed in
	Old      string // the old address
	Password string // the old password
	// TargetSecret is the member's sealed new password: how the move logs
	// in to the target when the job has no target admin.
	TargetSecret []byte
	Lang         string
}

// ErrOldTaken says another member already moves that old address.
var ErrOldTaken = errors.New("another member already moves this old address")

// ErrEnrollClosed says the job no longer takes new members.
var ErrEnrollClosed = errors.New("the job no longer takes new members")

// CheckEnroll says whether member may move the old address in the job:
// ErrOldTaken, ErrEnrollClosed, ErrNewTaken (another job moves into the
// member's new address), or nil. The portal asks before it tries
// the old password on the old server (a stranger's address is not tried
// there at all); Enroll asks again.
func (m *Manager) CheckEnroll(jobID, member, old string) error {
	job, err := m.store.Job(jobID)
	if err != nil {
		return fmt.Errorf("job %q: %w", jobID, err)
	}
	if !job.Closed.IsZero() {
		return ErrEnrollClosed
	}
	if err := job.CheckShard(old); err != nil {
		return err
	}
	if taken, err := newTaken(m.store, jobID, member); err != nil || taken != nil {
		if taken != nil {
			return taken
		}
		return err
	}
	a, err := m.store.Account(jobID, old)
	switch {
	case err == nil && !strings.EqualFold(a.Target, member):
		return ErrOldTaken
	case errors.Is(err, state.ErrNotFound):
		if !job.Enrolling(time.Now()) {
			return ErrEnrollClosed
		}
	case err != nil:
		return err
	}
	return nil
}

// Enroll stores the member's account with the old password sealed and
// wakes the job: the move starts.
func (m *Manager) Enroll(jobID string, e Enrollment) error {
	if err := m.CheckEnroll(jobID, e.Member, e.Old); err != nil {
		return err
	}
	job, err := m.store.Job(jobID)
	if err != nil {
		return err
	}
	a, err := m.store.Account(jobID, e.Old)
	if errors.Is(err, state.ErrNotFound) {
		a = &state.Account{ID: e.Old, Source: e.Old, Target: e.Member, State: state.AccountNotStarted}
	} else if err != nil {
		return err
	}
	if a.SourceSecret, err = m.store.Seal(e.Password); err != nil {
		return err
	}
	if len(job.TargetAdminSecret) == 0 {
		a.TargetSecret = e.TargetSecret
	}
	a.SecretsUntil = time.Now().UTC().Add(job.Keep())
	if a.State == state.AccountFailed || a.State == state.AccountPartial {
		a.State, a.Reason = state.AccountNotStarted, ""
	}
	a.Lang = e.Lang
	if err := m.store.PutAccounts(jobID, a); err != nil {
		return err
	}
	m.EventOf(state.MemberActor(e.Member), jobID, a.ID, "account.enrolled", wording.New("ev.account.enrolled", "member", e.Member, "old", e.Old))
	if err := m.Wake(jobID); err != nil {
		// The account is stored: the job's next start takes it.
		m.cfg.Log.Error("job not woken", "job", jobID, "err", err)
	}
	return nil
}

// Control carries out an admin's pause, resume, end or start of a job,
// running or not, and records who asked.
func (m *Manager) Control(jobID, op, who string) error {
	switch op {
	case "sync":
		return m.Sync(jobID, who)
	case "close":
		return m.Close(jobID, who)
	case "pause", "resume", "end", "start":
	default:
		return fmt.Errorf("unknown operation %q: want pause, resume, end, start, sync or close", op)
	}
	if j, err := m.store.Job(jobID); err != nil {
		return fmt.Errorf("job %q: %w", jobID, err)
	} else if !j.Closed.IsZero() {
		return closedError(j)
	}
	m.EventOf(who, jobID, "", "admin."+op, wording.New("ev.admin."+op, "who", who, "job", jobID))
	return m.control(jobID, op)
}

// ErrNothingToRetry says no account of the job failed or finished with
// failures.
var ErrNothingToRetry = errors.New("no account failed or finished with failures; nothing to retry")

// Retry runs again, once the admin has fixed the cause, the job's accounts
// that failed or finished with failures, or those named in accounts
// (whatever their state: an abandoned account is retried only when named): their failed messages and
// refused folders are tried once more; what is already on the target is
// not copied again. who is recorded in the event log as the one who asked.
// A job that is not running is started for these accounts only; a running
// one (a member-triggered job waits for its members for weeks) takes the
// accounts back as not started, as when a member types the old password
// again. It returns the accounts retried.
func (m *Manager) Retry(jobID, who string, accounts []string) ([]string, error) {
	j, err := m.store.Job(jobID)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", jobID, err)
	}
	switch j.State {
	case state.JobEnded:
		return nil, fmt.Errorf("job %s was ended; create a new job to move its remaining accounts", jobID)
	case state.JobPaused:
		return nil, fmt.Errorf("job %s is paused: resume it, then retry", jobID)
	}
	accts, err := m.store.Accounts(jobID)
	if err != nil {
		return nil, err
	}
	asked := map[string]bool{}
	for _, a := range accounts {
		asked[a] = true
	}
	var ids []string
	var again []*state.Account
	waiting := 0
	for _, a := range accts {
		if len(asked) > 0 {
			if !asked[a.ID] {
				continue
			}
			delete(asked, a.ID)
		} else if a.State != state.AccountFailed && a.State != state.AccountPartial {
			continue
		}
		if j.ModeOf() == state.ModeMember && len(a.SourceSecret) == 0 {
			// Only the member can give the old password again (the portal).
			waiting++
			continue
		}
		ids = append(ids, a.ID)
		again = append(again, a)
	}
	for a := range asked {
		return nil, fmt.Errorf("job %s has no account %s", jobID, a)
	}
	if len(ids) == 0 {
		if waiting > 0 {
			return nil, fmt.Errorf("job %s: the %d failed accounts have no old password stored; their members type it again in the portal", jobID, waiting)
		}
		return nil, fmt.Errorf("job %s: %w", jobID, ErrNothingToRetry)
	}
	if m.isStopping() {
		return nil, errors.New("banjia is stopping: retry after the next start")
	}
	if err := m.mayRun(jobID); err != nil {
		return nil, err
	}
	names := strings.Join(ids, ", ")
	if len(ids) > 10 {
		names = strings.Join(ids[:10], ", ") + fmt.Sprintf(" and %d more", len(ids)-10)
	}
	m.EventOf(who, jobID, "", "admin.retry", wording.New(one("ev.admin.retry", len(ids)), "who", who, "job", jobID, "n", strconv.Itoa(len(ids)), "names", names))
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return nil, errors.New("banjia is stopping: retry after the next start")
	}
	if ru := m.runs[jobID]; ru != nil {
		// The running job has finished with these accounts for this run:
		// as not started, it takes them again (now, or as this round
		// ends). Under m.mu, so that a run ending now sees the Wake and
		// starts again.
		for _, a := range again {
			a.State, a.Reason = state.AccountNotStarted, ""
		}
		err := m.store.PutAccounts(jobID, again...)
		if err == nil {
			ru.r.Wake()
		}
		m.mu.Unlock()
		m.changes.notify()
		return ids, err
	}
	m.mu.Unlock()
	only := map[string]bool{}
	var revived []*state.Account
	for _, a := range again {
		only[a.ID] = true
		if a.State == state.AccountAbandoned || a.State == state.AccountPaused {
			// Given up or paused by the admin, asked for again by name: a
			// run takes it only once it is neither.
			a.State, a.Reason = state.AccountNotStarted, ""
			revived = append(revived, a)
		}
	}
	if err := m.store.PutAccounts(jobID, revived...); err != nil {
		return nil, err
	}
	return ids, m.start(jobID, runOptions{only: only})
}
