package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
)

// JobRequest creates a job, from the dashboard's form or the API.
type JobRequest struct {
	ID        string `json:"id"`
	Mode      string `json:"mode"` // member, passwords or delegated
	Domain    string `json:"domain"`
	NewDomain string `json:"new_domain"`
	Provider  string `json:"provider,omitempty"`
	Protocol  string `json:"protocol,omitempty"` // imap or pop3, with a provider
	Source    string `json:"source"`             // URL, or with a provider its host override
	Target    string `json:"target"`
	// TargetAdmin logs in to the target for every member (a master user).
	TargetAdmin         string `json:"target_admin,omitempty"`
	TargetAdminPassword string `json:"target_admin_password,omitempty"`
	// Delegated jobs (无感搬家): the migration admin logs in as each member.
	SourceAdmin         string `json:"source_admin,omitempty"`
	SourceAdminPassword string `json:"source_admin_password,omitempty"` // or the app's client secret
	AdminLogin          string `json:"admin_login,omitempty"`           // authzid (default), template, xoauth2
	LoginTemplate       string `json:"login_template,omitempty"`
	Tenant              string `json:"tenant,omitempty"`    // xoauth2
	ClientID            string `json:"client_id,omitempty"` // xoauth2
	Period              string `json:"period,omitempty"`    // all, 2y, 1y, 3m, 30d
	SkipJunkTrash       bool   `json:"skip_junk_trash,omitempty"`
	SkipCustomFolders   bool   `json:"skip_custom_folders,omitempty"`
	MaxSizeMB           int    `json:"max_size_mb,omitempty"`
	EnrollDays          *int   `json:"enroll_days,omitempty"` // default 30
	Accounts            string `json:"accounts,omitempty"`    // CSV, as for banjia job create
	Start               bool   `json:"start"`
	// Invite mails the listed members of a member-triggered job (needs --smtp).
	Invite bool `json:"invite,omitempty"`
}

var jobID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// endpoint reads a source or target as the CLI does: a URL, or a preset.
func endpoint(raw, provider, protocol string) (sources.Endpoint, error) {
	raw = strings.TrimSpace(raw)
	if provider != "" && provider != "other" {
		if protocol == "" {
			protocol = "imap"
		}
		if raw != "" && !strings.Contains(raw, "://") {
			raw = protocol + "s://" + raw
		}
		return sources.ResolveEndpoint(raw, provider, protocol)
	}
	if raw == "" {
		return sources.Endpoint{}, errors.New("give the server, e.g. imaps://imap.old.example:993")
	}
	return sources.ParseEndpoint(raw)
}

// createJob validates a request and stores the job; secrets are sealed.
func (s *Server) createJob(r *http.Request, req *JobRequest, who string) (*state.Job, int, error) {
	req.ID = strings.TrimSpace(req.ID)
	if !jobID.MatchString(req.ID) {
		return nil, 0, errors.New("job name: letters, digits, '.', '_' or '-', at most 64")
	}
	if _, err := s.store.Job(req.ID); err == nil {
		return nil, 0, fmt.Errorf("job %q already exists", req.ID)
	}
	if req.Mode == "" {
		req.Mode = state.ModeMember
	}
	if req.Invite && s.cfg.Notifier == nil {
		return nil, 0, errors.New("no mail is configured: start banjia serve with --smtp to invite members")
	}
	if req.Mode != state.ModeMember && req.Mode != state.ModePasswords && req.Mode != state.ModeDelegated {
		return nil, 0, fmt.Errorf("mode %q: want member, passwords or delegated", req.Mode)
	}
	src, err := endpoint(req.Source, req.Provider, req.Protocol)
	if err != nil {
		return nil, 0, fmt.Errorf("old server: %w", err)
	}
	src.User, src.Password = "", ""
	dst, err := endpoint(req.Target, "", "")
	if err != nil {
		return nil, 0, fmt.Errorf("new server: %w", err)
	}
	dst.User, dst.Password = "", ""
	var delegation *sources.Delegation
	if req.Mode == state.ModeDelegated {
		if delegation, err = sources.Delegate(&src, sources.DelegationRequest{Admin: req.SourceAdmin, Method: req.AdminLogin,
			Template: req.LoginTemplate, Tenant: strings.TrimSpace(req.Tenant), ClientID: strings.TrimSpace(req.ClientID)}); err != nil {
			return nil, 0, err
		}
		if req.SourceAdminPassword == "" {
			return nil, 0, fmt.Errorf("give the %s password", delegation.SecretName(src))
		}
	}
	req.Domain = strings.ToLower(strings.TrimSpace(req.Domain))
	req.NewDomain = strings.ToLower(strings.TrimSpace(req.NewDomain))
	if req.Mode == state.ModeMember && (req.Domain == "" || req.NewDomain == "") {
		return nil, 0, errors.New("a member-triggered job needs the old and the new domain")
	}
	var opts state.Options
	if opts.Since, err = state.PeriodStart(req.Period, time.Now()); err != nil {
		return nil, 0, err
	}
	opts.SkipJunkTrash, opts.SkipCustomFolders = req.SkipJunkTrash, req.SkipCustomFolders
	if req.MaxSizeMB < 0 {
		return nil, 0, fmt.Errorf("largest message %d MB: want 0 (no limit) or more", req.MaxSizeMB)
	}
	opts.MaxMessageSize = int64(req.MaxSizeMB) << 20
	var rows []migrate.AccountRow
	if strings.TrimSpace(req.Accounts) != "" {
		if rows, err = migrate.ReadAccounts(strings.NewReader(req.Accounts)); err != nil {
			return nil, 0, err
		}
	} else if req.Mode == state.ModeDelegated && src.Scheme == "graph" && req.Domain != "" {
		if s.cfg.Directory == nil {
			return nil, 0, errors.New("this server cannot read a Microsoft Graph directory: give the accounts as CSV")
		}
		if req.NewDomain == "" {
			return nil, 0, errors.New("give the new domain: where each user's mail goes (alice@old -> alice@NEW-DOMAIN)")
		}
		e := src
		e.Password = req.SourceAdminPassword
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		rows, err = s.cfg.Directory(ctx, e, req.Domain, req.NewDomain)
		cancel()
		if err != nil {
			return nil, 0, err
		}
	}
	if req.Mode == state.ModeDelegated && len(rows) == 0 {
		return nil, 0, errors.New("give the accounts (CSV: old address, new address; no passwords), or for a Microsoft Graph source the old and new domains")
	}
	if req.Mode == state.ModePasswords && len(rows) == 0 {
		return nil, 0, errors.New("give the accounts (CSV: old address, new address, old password), or choose the member-triggered mode")
	}
	now := time.Now().UTC()
	job := &state.Job{ID: req.ID, Name: req.ID, Mode: req.Mode, Domain: req.Domain, NewDomain: req.NewDomain,
		Source: src, Target: dst, Options: opts, State: state.JobCreated, Created: now}
	days := 30
	if req.EnrollDays != nil {
		days = *req.EnrollDays
	}
	if days > 0 {
		job.EnrollUntil = now.Add(time.Duration(days) * 24 * time.Hour)
	}
	if delegation != nil {
		job.Delegation = delegation
		if job.SourceAdminSecret, err = s.store.Seal(req.SourceAdminPassword); err != nil {
			return nil, 0, err
		}
	}
	if req.TargetAdmin != "" {
		job.Target.User = req.TargetAdmin
		if job.TargetAdminSecret, err = s.store.Seal(req.TargetAdminPassword); err != nil {
			return nil, 0, err
		}
	}
	if err := s.store.PutJob(job); err != nil {
		return nil, 0, err
	}
	n, err := migrate.AddAccounts(s.store, job, rows, now)
	if err != nil {
		// Nothing half-made stays behind: the job goes with its accounts.
		s.store.DeleteJob(job.ID)
		return nil, 0, fmt.Errorf("accounts CSV %w", err)
	}
	s.event(job.ID, "", "job.created", fmt.Sprintf("job %s created by %s: %s, %d accounts, %s -> %s", job.ID, who, job.ModeOf(), n, src, dst))
	if req.Start {
		if err := s.m.Start(job.ID); err != nil {
			return job, n, err
		}
	}
	if req.Invite && n > 0 {
		if _, err := s.invite(r, job.ID, who); err != nil {
			return job, n, err
		}
	}
	return job, n, nil
}

// CheckRequest checks a source with one account (the seed's 连接 step).
type CheckRequest struct {
	Provider string `json:"provider,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Source   string `json:"source"`
	User     string `json:"user"`
	Password string `json:"password"`
}

func (s *Server) check(ctx context.Context, req *CheckRequest) (*sources.Report, error) {
	e, err := endpoint(req.Source, req.Provider, req.Protocol)
	if err != nil {
		return nil, err
	}
	e.User, e.Password = req.User, req.Password
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return sources.Check(ctx, e), nil
}
