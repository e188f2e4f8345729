package migrate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/banjia-mail/banjia/state"
)

// AccountRow is one line of an accounts CSV.
type AccountRow struct {
	Line        int
	Old, New    string
	OldPassword string
	NewPassword string
}

// ReadAccounts reads an accounts CSV: old address, new address, old password,
// optional new password. A header line, blank lines and lines starting with
// '#' are skipped. Errors name the line and never echo a password.
func ReadAccounts(r io.Reader) ([]AccountRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	var out []AccountRow
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("accounts CSV line %d: %v", pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("accounts CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if len(out) == 0 && len(seen) == 0 && isHeader(rec) {
			continue
		}
		if len(rec) < 2 || len(rec) > 4 {
			return nil, fmt.Errorf("accounts CSV line %d: want old address, new address, old password[, new password]; got %d columns", line, len(rec))
		}
		row := AccountRow{Line: line, Old: rec[0], New: rec[1]}
		if len(rec) > 2 {
			row.OldPassword = rec[2]
		}
		if len(rec) > 3 {
			row.NewPassword = rec[3]
		}
		for _, a := range []struct{ name, v string }{{"old address", row.Old}, {"new address", row.New}} {
			if err := checkAddress(a.v); err != nil {
				return nil, fmt.Errorf("accounts CSV line %d: %s %v", line, a.name, err)
			}
		}
		key := strings.ToLower(row.Old)
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("accounts CSV line %d: %s is already listed on line %d", line, row.Old, prev)
		}
		seen[key] = line
		out = append(out, row)
	}
	if len(out) == 0 {
		return nil, errors.New("accounts CSV has no accounts")
	}
	return out, nil
}

func isHeader(rec []string) bool {
	if len(rec) < 2 {
		return false
	}
	h := strings.ToLower(rec[0] + " " + rec[1])
	return !strings.Contains(rec[0], "@") && (strings.Contains(h, "old") || strings.Contains(h, "address") ||
		strings.Contains(h, "旧") || strings.Contains(h, "source") || strings.Contains(h, "email"))
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
