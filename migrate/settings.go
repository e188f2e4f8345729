package migrate

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/banjia-mail/banjia/wording"
)

// Settings are a job's settings as the admin chose them (查看设置): what
// `banjia job show`, the dashboard and the API show. Never a secret: the
// endpoints are shown as URLs without passwords, the admin logins by
// name only.
type Settings struct {
	ID        string `json:"id"`
	Mode      string `json:"mode"`
	State     string `json:"state"`
	Domain    string `json:"domain,omitempty"`
	NewDomain string `json:"new_domain,omitempty"`
	Source    string `json:"source"`
	Target    string `json:"target"`
	// SourceAdmin is a delegated job's migration admin (or app) and how
	// it logs in as each member; TargetAdmin the target's master user.
	SourceAdmin string `json:"source_admin,omitempty"`
	AdminLogin  string `json:"admin_login,omitempty"`
	TargetAdmin string `json:"target_admin,omitempty"`
	// Insecure: TLS certificates are not verified (source, target).
	SourceInsecure bool `json:"source_insecure,omitempty"`
	TargetInsecure bool `json:"target_insecure,omitempty"`

	Since               *time.Time        `json:"since,omitempty"`
	SkipJunkTrash       bool              `json:"skip_junk_trash"`
	SkipCustomFolders   bool              `json:"skip_custom_folders"`
	DedupeAcrossFolders bool              `json:"dedupe_across_folders"`
	KeepSystemFolders   bool              `json:"system_folders"`
	MaxMessageSize      int64             `json:"max_message_size"` // bytes, 0: no limit
	Renames             map[string]string `json:"renames,omitempty"`
	Excludes            []string          `json:"excludes,omitempty"`
	// Window ("22:00-07:00", in TimeZone: "" is the machine's) is when the
	// job copies; MaxRate and MaxRatePerHost cap what it reads (bytes/s,
	// 0: no cap).
	Window         string `json:"window,omitempty"`
	TimeZone       string `json:"time_zone,omitempty"`
	MaxRate        int64  `json:"max_rate"`
	MaxRatePerHost int64  `json:"max_rate_per_host"`

	// Parallel, Lanes and PerHost are the limits of the process that
	// answers (banjia serve's, or banjia job start's): accounts copied at
	// once, connections per account, connections per source host.
	Parallel int `json:"parallel"`
	Lanes    int `json:"connections_per_account"`
	PerHost  int `json:"connections_per_host"`

	Created     time.Time  `json:"created"`
	Updated     time.Time  `json:"updated"`
	EnrollUntil *time.Time `json:"enroll_until,omitempty"`
	Accounts    int        `json:"accounts"`
}

// RenameList is the renames in a stable order, as "OLD=NEW".
func (s *Settings) RenameList() []string {
	var out []string
	for k, v := range s.Renames {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Settings is the job's settings.
func (m *Manager) Settings(jobID string) (*Settings, error) {
	j, err := m.store.Job(jobID)
	if err != nil {
		return nil, err
	}
	accts, err := m.store.Accounts(jobID)
	if err != nil {
		return nil, err
	}
	o := j.Options
	s := &Settings{ID: j.ID, Mode: j.ModeOf(), State: string(j.State), Domain: j.Domain, NewDomain: j.NewDomain,
		Source: j.Source.String(), Target: j.Target.String(), SourceInsecure: j.Source.Insecure, TargetInsecure: j.Target.Insecure,
		SkipJunkTrash: o.SkipJunkTrash, SkipCustomFolders: o.SkipCustomFolders, DedupeAcrossFolders: o.DedupeAcrossFolders,
		KeepSystemFolders: o.KeepSystemFolders, MaxMessageSize: o.MaxMessageSize, Renames: o.Renames, Excludes: o.Excludes,
		Window: o.Window, TimeZone: o.TimeZone, MaxRate: o.MaxRate, MaxRatePerHost: o.MaxRatePerHost,
		Parallel: m.cfg.Accounts, Lanes: m.cfg.Lanes, PerHost: m.cfg.PerHost,
		Created: j.Created, Updated: j.Updated, Accounts: len(accts)}
	if j.Delegation != nil {
		// The source URL's user is the migration admin (or the app).
		s.SourceAdmin, s.AdminLogin = j.Source.User, j.Delegation.Method
	}
	if len(j.TargetAdminSecret) > 0 {
		s.TargetAdmin = j.Target.User
	}
	if !o.Since.IsZero() {
		t := o.Since
		s.Since = &t
	}
	if !j.EnrollUntil.IsZero() {
		t := j.EnrollUntil
		s.EnrollUntil = &t
	}
	return s, nil
}

// Delete removes a job that no run holds: its record, accounts,
// checkpoints and events, and with them every sealed secret, and rewrites
// the state file so that no free page keeps one (state/scrub.go). who is
// recorded in the log (under no job: the job's own events go with it).
func (m *Manager) Delete(jobID, who string) error {
	j, err := m.store.Job(jobID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if m.runs[jobID] != nil {
		m.mu.Unlock()
		return fmt.Errorf("job %s is running: pause or end it (or stop its banjia process), then delete it", jobID)
	}
	// Held under m.mu: no run of the job starts while its records go.
	err = m.store.RemoveJob(jobID)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if err := m.store.Scrub(); err != nil {
		return fmt.Errorf("job %s deleted, but %w", jobID, err)
	}
	m.EventOf(who, "", "", "job.deleted", wording.New("ev.job.deleted", "job", jobID, "mode", j.ModeOf(), "from", j.Source.String(), "to", j.Target.String(), "who", who))
	m.changes.notify()
	return nil
}

// handleMore answers the control socket's account, delete and settings.
func (m *Manager) handleMore(req ControlRequest, who string) ControlReply {
	if req.Job == "" {
		return replyOf(fmt.Errorf("which job? (%s needs a job name)", req.Op))
	}
	switch req.Op {
	case "account":
		if req.Account == nil {
			return replyOf(errors.New("account: no request"))
		}
		ids, err := m.AccountControl(req.Job, *req.Account, who)
		rep := replyOf(err)
		rep.Changed = ids
		return rep
	case "delete":
		return replyOf(m.Delete(req.Job, who))
	}
	s, err := m.Settings(req.Job)
	rep := replyOf(err)
	rep.Settings = s
	return rep
}
