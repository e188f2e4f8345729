package demo

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sources"
	_ "github.com/banjia-mail/banjia/sources/imapsource"
	"github.com/banjia-mail/banjia/state"
)

func start(t *testing.T, o Options) *Env {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	env, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return env
}

func TestDemoMigratesEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := start(t, Options{Accounts: 2, Messages: 40})

	job, err := env.Store.Job(env.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != state.JobCreated || job.Source.Scheme != "imap+plain" || job.Source.Addr() != env.Source || job.Target.Addr() != env.Target {
		t.Fatalf("job as created: %+v", job)
	}

	r := migrate.New(env.Store, migrate.Config{OpenSink: imapsink.Open, RetryBase: 10 * time.Millisecond})
	if err := r.Run(ctx, env.JobID); err != nil {
		t.Fatalf("run: %v", err)
	}
	rep, err := env.Verify(ctx)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if rep.Messages != 2*40 || rep.Folders == 0 || rep.Bytes == 0 {
		t.Errorf("report %+v: want 80 messages over some folders", rep)
	}
	accts, err := env.Store.Accounts(env.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 2 {
		t.Fatalf("%d accounts, want 2", len(accts))
	}
	for _, a := range accts {
		if a.State != state.AccountSucceeded || a.Counts.Imported != a.Counts.ToImport || a.Counts.ToImport != 40 {
			t.Errorf("%s: state %s (%s), counts %+v; want succeeded with 40 of 40 imported", a.ID, a.State, a.Reason, a.Counts)
		}
	}
	if j, _ := env.Store.Job(env.JobID); j.State != state.JobCompleted {
		t.Errorf("job state %s, want %s", j.State, state.JobCompleted)
	}

	// A changed flag is a difference too, not only a missing message.
	u := env.Users[0]
	c, err := imapclient.DialInsecure(env.Target, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(u.New, u.NewPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$Changed"}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Verify(ctx); err == nil || !strings.Contains(strings.ToLower(err.Error()), "$changed") {
		t.Errorf("verify after a flag changed on the target: %v", err)
	}
}

// The engine must meet the demo servers as it meets a real one: special
// folders marked, UTF-8 names, "/" between levels.
func TestSourceLooksReal(t *testing.T) {
	ctx := context.Background()
	env := start(t, Options{Accounts: 1, Messages: 60})
	job, err := env.Store.Job(env.JobID)
	if err != nil {
		t.Fatal(err)
	}
	e := job.Source
	e.User, e.Password = env.Users[0].Old, env.Users[0].OldPassword
	src, err := sources.Open(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	folders, err := src.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]mail.Folder{}
	for _, f := range folders {
		got[f.Name] = f
	}
	if f := got["Sent"]; f.SpecialUse != mail.SpecialSent || f.Messages == 0 || f.Validity == 0 {
		t.Errorf("Sent listed as %+v", f)
	}
	if f, ok := got["客户/北京"]; !ok || f.Delim != '/' || f.SpecialUse != "" {
		t.Errorf("客户/北京 listed as %+v (present %v)", f, ok)
	}

	dst, err := imapsink.Open(ctx, mail.Endpoint{Scheme: "imap+plain", Host: job.Target.Host, Port: job.Target.Port,
		User: env.Users[0].New, Password: env.Users[0].NewPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	list, err := dst.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	specials := sinks.Specials(list, dst.Namespace())
	if specials[mail.SpecialTrash] != "Trash" || specials[mail.SpecialSent] != "Sent" {
		t.Errorf("target specials %v", specials)
	}
}

// Verify must not pass when the target lacks mail, or the demo's "verified"
// line would prove nothing.
func TestVerifyCatchesMissingMail(t *testing.T) {
	ctx := context.Background()
	env := start(t, Options{Accounts: 1, Messages: 10})
	_, err := env.Verify(ctx)
	if err == nil {
		t.Fatal("verify passed with nothing migrated")
	}
	if !strings.Contains(err.Error(), env.Users[0].Old) {
		t.Errorf("error %q does not name the account", err)
	}
}

func TestStartDefaults(t *testing.T) {
	env, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	accts, err := env.Store.Accounts(env.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Users) != 3 || len(accts) != 3 {
		t.Errorf("%d users, %d accounts; want 3", len(env.Users), len(accts))
	}
	for _, a := range accts {
		if a.State != state.AccountNotStarted || len(a.SourceSecret) == 0 || len(a.TargetSecret) == 0 {
			t.Errorf("%s: state %s, secrets %d/%d bytes", a.ID, a.State, len(a.SourceSecret), len(a.TargetSecret))
		}
	}
	dir := env.tmp
	if dir == "" || !strings.HasPrefix(env.StatePath, dir) {
		t.Fatalf("state file %s not in a temporary folder of its own (%q)", env.StatePath, dir)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after Close: %v", dir, err)
	}
}
