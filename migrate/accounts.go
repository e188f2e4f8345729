package migrate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/state"
)

// AccountRow is one line of an accounts CSV.
type AccountRow struct {
	Line        int
	Old, New    string
	OldPassword string
	NewPassword string
	// Server is the old server of this account (host or host:port) when it
	// is not the job's.
	Server string
	// Phone is the member's mobile number, for reminder texts.
	Phone string
}

// ReadAccounts reads an accounts file (see ImportAccounts) with its
// encoding detected, refusing it while any row is bad.
func ReadAccounts(r io.Reader) ([]AccountRow, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	rows, _, err := ImportAccounts(data, ImportOptions{})
	return rows, err
}

// checkServer accepts host or host:port: the scheme (and so TLS) is the
// job's, so that one job never mixes a TLS and a plain-text login.
func checkServer(s string) error {
	host, port := s, ""
	if strings.ContainsAny(s, "/@?# \t") {
		host = ""
	} else if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if host == "" || strings.ContainsAny(host, "/@:?# \t") || len(host) > 253 {
		return fmt.Errorf("%q: want a host name or host:port, such as mail2.old.example or mail2.old.example:993", s)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: the port must be a number from 1 to 65535", s)
		}
	}
	return nil
}

// OnServer is e on an account's own old server (host or host:port, as
// checkServer accepts it; "" leaves e as it is).
func OnServer(e mail.Endpoint, server string) mail.Endpoint {
	if server == "" {
		return e
	}
	host, port := server, ""
	if h, p, err := net.SplitHostPort(server); err == nil {
		host, port = h, p
	}
	e.Host = host
	if n, err := strconv.Atoi(port); err == nil {
		e.Port = n
	}
	return e
}

func checkAddress(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > 320 {
		return errors.New("is too long")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%q contains a space or control character", s)
		}
	}
	if strings.Count(s, "@") > 1 {
		return fmt.Errorf("%q has more than one @", s)
	}
	return nil
}

// AddAccounts adds accounts to a job, or gives existing ones new passwords.
// New accounts are taken only within the job's enrollment window; an
// account that failed is given another try. Errors name the CSV line and
// never echo a password.
func AddAccounts(store *state.Store, job *state.Job, rows []AccountRow, now time.Time) (int, error) {
	if job.State == state.JobEnded {
		return 0, fmt.Errorf("job %s was ended: create a new job for these accounts", job.ID)
	}
	mode := job.ModeOf()
	var accts []*state.Account
	for _, row := range rows {
		if err := job.CheckShard(row.Old); err != nil {
			return 0, fmt.Errorf("line %d: %w", row.Line, err)
		}
		a, err := store.Account(job.ID, row.Old)
		if errors.Is(err, state.ErrNotFound) {
			if !job.EnrollUntil.IsZero() && !now.Before(job.EnrollUntil) {
				return 0, fmt.Errorf("line %d: job %s took new accounts until %s; create a new job for %s",
					row.Line, job.ID, job.EnrollUntil.Format("2006-01-02 15:04 MST"), row.Old)
			}
			a = &state.Account{ID: row.Old, Source: row.Old, Target: row.New, State: state.AccountNotStarted}
		} else if err != nil {
			return 0, err
		}
		a.Target = row.New
		if row.Server != "" {
			if !strings.HasPrefix(job.Source.Scheme, "imap") && !strings.HasPrefix(job.Source.Scheme, "pop3") {
				return 0, fmt.Errorf("line %d: an old server per account is for IMAP and POP3 sources; job %s reads %s", row.Line, job.ID, job.Source.Scheme)
			}
			a.Server = row.Server
		}
		if row.Phone != "" {
			a.Phone = row.Phone
		}
		if taken, err := newTaken(store, job.ID, row.New); err != nil {
			return 0, err
		} else if taken != nil {
			return 0, fmt.Errorf("line %d: %w", row.Line, taken)
		}
		if row.OldPassword == "" && len(job.SourceAdminSecret) == 0 && mode != state.ModeMember {
			return 0, fmt.Errorf("line %d: no old password for %s (or create the job with --mode delegated or --mode member)", row.Line, row.Old)
		}
		if row.NewPassword == "" && len(job.TargetAdminSecret) == 0 && mode != state.ModeMember {
			return 0, fmt.Errorf("line %d: no new password for %s (or create the job with --to-admin)", row.Line, row.New)
		}
		if row.OldPassword != "" || mode != state.ModeMember {
			if a.SourceSecret, err = store.Seal(row.OldPassword); err != nil {
				return 0, err
			}
		}
		if row.NewPassword != "" || mode != state.ModeMember {
			if a.TargetSecret, err = store.Seal(row.NewPassword); err != nil {
				return 0, err
			}
		}
		if a.HasSecrets() {
			// Kept for the syncs, from now: never past the job's retention.
			a.SecretsUntil = now.UTC().Add(job.Keep())
		}
		if a.State == state.AccountFailed || a.State == state.AccountPartial {
			a.State, a.Reason = state.AccountNotStarted, ""
		}
		if job.AwaitingMember(a) {
			a.Reason = ""
		}
		accts = append(accts, a)
	}
	return len(accts), store.PutAccounts(job.ID, accts...)
}
