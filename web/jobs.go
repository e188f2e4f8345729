package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sources/check"
	"github.com/banjia-mail/banjia/sources/presets"
	"github.com/banjia-mail/banjia/state"
)

// JobRequest creates a job, from the dashboard's form or the API.
type JobRequest struct {
	ID        string `json:"id"`
	Mode      string `json:"mode"` // member, passwords or delegated
	Domain    string `json:"domain"`
	NewDomain string `json:"new_domain"`
	Provider  string `json:"provider,omitempty"`
	Protocol  string `json:"protocol,omitempty"` // imap, pop3 or ews, with a provider
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
	Authority           string `json:"authority,omitempty"` // xoauth2, other than login.microsoftonline.com
	Period              string `json:"period,omitempty"`    // all, 2y, 1y, 3m, 30d
	SkipJunkTrash       bool   `json:"skip_junk_trash,omitempty"`
	SkipCustomFolders   bool   `json:"skip_custom_folders,omitempty"`
	SystemFolders       bool   `json:"system_folders,omitempty"`
	MaxSizeMB           int    `json:"max_size_mb,omitempty"`
	EnrollDays          *int   `json:"enroll_days,omitempty"` // default 30
	Accounts            string `json:"accounts,omitempty"`    // CSV, as for banjia job create
	Start               bool   `json:"start"`
	// Invite mails the listed members of a member-triggered job (needs --smtp).
	Invite bool `json:"invite,omitempty"`
	// KeepCredentials: how long passwords are kept for the syncs ("14d").
	KeepCredentials string `json:"keep_credentials,omitempty"`

	// Renames ("OLD=NEW", '/' between levels) and Excludes (patterns of
	// source folder names) are the job's folder choices.
	Renames  []string `json:"renames,omitempty"`
	Excludes []string `json:"excludes,omitempty"`

	// An EWS source's settings (ewsform.go): the Exchange version asked
	// for, the Windows domain of bare logins, ntlm or basic.
	EWSVersion string `json:"ews_version,omitempty"`
	EWSDomain  string `json:"ews_domain,omitempty"`
	EWSAuth    string `json:"ews_auth,omitempty"`

	// uploaded are the accounts of the form's file (upload.go), in place
	// of Accounts.
	uploaded []migrate.AccountRow
}

// endpoint reads a source or target as the CLI does: a URL, or a preset.
func endpoint(raw, provider, protocol string) (mail.Endpoint, error) {
	raw = strings.TrimSpace(raw)
	if provider != "" && provider != "other" {
		if protocol == "" {
			protocol = "imap"
		}
		if raw != "" && !strings.Contains(raw, "://") {
			if protocol == "ews" {
				raw = "ews://" + raw
			} else {
				raw = protocol + "s://" + raw
			}
		}
		return presets.ResolveEndpoint(raw, provider, protocol)
	}
	if raw == "" {
		return mail.Endpoint{}, errors.New("give the server, e.g. imaps://imap.old.example:993")
	}
	return mail.ParseEndpoint(raw)
}

// createJob reads a request from the form or the API and creates the job
// (migrate.Manager.Create checks and stores it); then starts it and
// invites its members when asked.
func (s *Server) createJob(r *http.Request, req *JobRequest, who string) (*state.Job, int, error) {
	if req.Mode == "" {
		// The dashboard's own kind of job: members start their moves.
		req.Mode = state.ModeMember
	}
	if req.Invite && s.cfg.Notifier == nil {
		return nil, 0, errors.New("no mail is configured: start banjia serve with --smtp to invite members")
	}
	if req.Invite && s.portalLink == "" {
		// Refused before the job is made: an error after it would leave a
		// job the answer says was not created.
		return nil, 0, errNoPortal
	}
	src, err := endpoint(req.Source, req.Provider, req.Protocol)
	if err != nil {
		return nil, 0, fmt.Errorf("old server: %w", err)
	}
	if err := req.applyEWS(&src); err != nil {
		return nil, 0, fmt.Errorf("old server: %w", err)
	}
	dst, err := endpoint(req.Target, "", "")
	if err != nil {
		return nil, 0, fmt.Errorf("new server: %w", err)
	}
	var opts state.Options
	if opts.Since, err = state.PeriodStart(req.Period, time.Now()); err != nil {
		return nil, 0, err
	}
	opts.SkipJunkTrash, opts.SkipCustomFolders, opts.KeepSystemFolders = req.SkipJunkTrash, req.SkipCustomFolders, req.SystemFolders
	opts.MaxMessageSize = migrate.MessageSizeBytes(req.MaxSizeMB)
	if err := folderChoices(req.Renames, req.Excludes, &opts); err != nil {
		return nil, 0, err
	}
	rows := req.uploaded
	if rows == nil && strings.TrimSpace(req.Accounts) != "" {
		if rows, err = migrate.ReadAccounts(strings.NewReader(req.Accounts)); err != nil {
			return nil, 0, err
		}
	}
	days := 30
	if req.EnrollDays != nil {
		days = *req.EnrollDays
	}
	keep, err := migrate.ParseKeep(req.KeepCredentials)
	if err != nil {
		return nil, 0, err
	}
	creq := migrate.JobRequest{ID: req.ID, Mode: req.Mode, Domain: req.Domain, NewDomain: req.NewDomain,
		Source: src, Target: dst, TargetAdmin: strings.TrimSpace(req.TargetAdmin), TargetAdminPassword: req.TargetAdminPassword,
		Delegation: mail.DelegationRequest{Admin: req.SourceAdmin, Method: req.AdminLogin, Template: req.LoginTemplate,
			Tenant: strings.TrimSpace(req.Tenant), ClientID: strings.TrimSpace(req.ClientID), Authority: strings.TrimSpace(req.Authority)},
		SourceAdminPassword: req.SourceAdminPassword, Options: opts, EnrollDays: days, KeepCredentials: keep, Accounts: rows, Directory: s.cfg.Directory}
	job, n, err := s.m.Create(r.Context(), creq, who)
	if err != nil {
		return nil, 0, err
	}
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

	// An EWS source's settings, as in JobRequest.
	EWSVersion string `json:"ews_version,omitempty"`
	EWSDomain  string `json:"ews_domain,omitempty"`
	EWSAuth    string `json:"ews_auth,omitempty"`
}

func (s *Server) check(ctx context.Context, req *CheckRequest) (*check.Report, error) {
	e, err := endpoint(req.Source, req.Provider, req.Protocol)
	if err != nil {
		return nil, err
	}
	settings := JobRequest{EWSVersion: req.EWSVersion, EWSDomain: req.EWSDomain, EWSAuth: req.EWSAuth}
	if err := settings.applyEWS(&e); err != nil {
		return nil, err
	}
	e.User, e.Password = req.User, req.Password
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return check.Check(ctx, e), nil
}
