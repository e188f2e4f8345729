package migrate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestDelegatedJob moves 10 mailboxes with only the migration admin's
// password (无感搬家), in both login forms a Dovecot master user accepts: SASL
// PLAIN with the member as authorization identity, and LOGIN with a
// "{user}*{admin}" template. One member the admin may not open fails with a
// reason the admin can act on; the others arrive exactly.
func TestDelegatedJob(t *testing.T) {
	migratetest.NeedsRealServers(t, "a source master user and a refused login")
	for _, d := range []mail.Delegation{
		{Method: mail.DelegateAuthzID},
		{Method: mail.DelegateTemplate, Template: "{user}*{admin}"},
	} {
		t.Run(d.Method, func(t *testing.T) {
			const admin, adminPW = "migration-admin", "admin-secret-4711"
			w := newWorld(t, migratetest.Options{Accounts: 10, Messages: 40, BadPassword: -1, SourceAdmin: admin, SourceAdminPW: adminPW})
			// The admin may not open this one: its account is locked.
			locked := "locked@old.test"
			if err := w.Src.AddRefusedUser(locked, "unused", "account-locked-by-admin"); err != nil {
				t.Fatal(err)
			}
			before := w.Sources()

			j, err := w.Store.Job(w.Job)
			if err != nil {
				t.Fatal(err)
			}
			j.Source.User = admin
			j.Delegation = &d
			if j.SourceAdminSecret, err = w.Store.Seal(adminPW); err != nil {
				t.Fatal(err)
			}
			if err := w.Store.PutJob(j); err != nil {
				t.Fatal(err)
			}
			// No member password anywhere: the accounts carry none.
			accts, _ := w.Store.Accounts(w.Job)
			for _, a := range accts {
				a.SourceSecret = nil
			}
			lockedAcct := &state.Account{ID: locked, Source: locked, Target: w.Users[0].New, State: state.AccountNotStarted}
			lockedAcct.TargetSecret, _ = w.Store.Seal(w.Users[0].NewPW)
			accts = append(accts, lockedAcct)
			if err := w.Store.PutAccounts(w.Job, accts...); err != nil {
				t.Fatal(err)
			}

			if err := runner(w, migrate.Config{Accounts: 4, Lanes: 2}).Run(context.Background(), w.Job); err != nil {
				t.Fatal(err)
			}
			got := accounts(t, w)
			for _, u := range w.Users {
				a := got[u.Old]
				if a.State != state.AccountSucceeded {
					t.Fatalf("%s: %s %q", u.Old, a.State, a.Reason)
				}
				migratetest.SameMail(t, u.Old, before[u.Old], w.Target(u))
			}
			l := got[locked]
			if l.State != state.AccountFailed || !strings.Contains(l.Reason, "the migration admin could not open "+locked) ||
				!strings.Contains(l.Reason, "FullAccess") || !strings.Contains(l.Reason, "account-locked-by-admin") {
				t.Fatalf("locked account: %s %q", l.State, l.Reason)
			}
			if strings.Contains(l.Reason, adminPW) {
				t.Fatal("the admin password is in the reason")
			}
			migratetest.Unchanged(t, before, w.Sources())
		})
	}
}
