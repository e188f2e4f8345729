package web

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// portalBase is the portal's address for invitation links: the public URL
// as given, or, without one, the listen address when only this machine can
// reach it anyway. "" means no address can be trusted: a request's Host
// header is anyone's to write, and a link built from it would send members
// wherever the caller liked.
func portalBase(public, listen string, tls bool) (string, error) {
	if public = strings.TrimSpace(public); public != "" {
		u, err := url.Parse(public)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("--public-url %q: want the portal's address as members reach it, e.g. https://mail-move.example.com/", public)
		}
		return strings.TrimSuffix(u.String(), "/") + "/", nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", nil
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + listen + "/", nil
}

// errNoPortal refuses invitations when no portal address can be trusted.
var errNoPortal = errors.New("the portal's address for the invitation links is not known: start banjia serve with --public-url https://ADDRESS-MEMBERS-REACH/")

// invite mails the members of a member-triggered job who have not started
// (the seed's 发送提醒邮件给所有搬家成员): those not invited yet, or with
// again=1 (a form field or the query) those invited before too. account=A
// (repeatable, in the query) limits it to those accounts.
func (s *Server) invite(r *http.Request, id, who string) (int, error) {
	again := r.FormValue("again") == "1" || r.FormValue("again") == "true"
	return s.Invite(migrate.Invitation{Job: id, Accounts: r.URL.Query()["account"], Again: again, Who: who})
}

// Invite sends a job's invitations (see migrate.Invitation); banjia job
// invite reaches it through the control socket.
func (s *Server) Invite(inv migrate.Invitation) (int, error) {
	id, who, again := inv.Job, inv.Who, inv.Again
	if id == "" {
		return 0, errors.New("which job? (invite needs a job name)")
	}
	job, err := s.store.Job(id)
	if err != nil {
		return 0, fmt.Errorf("job %q: %w", id, err)
	}
	if s.cfg.Notifier == nil {
		return 0, errors.New("no mail is configured: start banjia serve with --smtp to invite members")
	}
	if job.ModeOf() != state.ModeMember {
		return 0, fmt.Errorf("job %s does not wait for its members (mode %s): there is no one to invite", id, job.ModeOf())
	}
	if s.portalLink == "" {
		return 0, errNoPortal
	}
	only := map[string]bool{}
	for _, a := range inv.Accounts {
		only[strings.ToLower(strings.TrimSpace(a))] = true
	}
	accts, err := s.store.Accounts(id)
	if err != nil {
		return 0, err
	}
	var invited []*state.Account
	for _, a := range accts {
		if len(only) > 0 {
			if !only[strings.ToLower(a.ID)] {
				continue
			}
			delete(only, strings.ToLower(a.ID))
			if !job.AwaitingMember(a) {
				return 0, fmt.Errorf("account %s of job %s has started its move (%s): there is nothing to invite it to", a.ID, id, a.State)
			}
		}
		if !job.AwaitingMember(a) || (!a.Invited.IsZero() && !again) {
			continue
		}
		lang := a.Lang
		if lang == "" {
			lang = norm(s.cfg.Lang)
		}
		if s.cfg.Notifier.Invite(job, a, s.portalLink, lang) {
			a.Invited = timeNow().UTC()
			invited = append(invited, a)
		}
	}
	for a := range only {
		return 0, fmt.Errorf("job %s has no account %s", id, a)
	}
	if err := s.store.PutAccounts(id, invited...); err != nil {
		return 0, err
	}
	code := "ev.job.invited"
	if again {
		code = "ev.job.invited.again"
	}
	s.m.EventOf(who, id, "", "job.invited", wording.New(code, "who", who, "n", strconv.Itoa(len(invited)), "link", s.portalLink))
	return len(invited), nil
}
