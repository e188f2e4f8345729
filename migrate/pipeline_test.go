package migrate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/delayproxy"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestPipelinedLanesOverDelay copies through 20 ms round-trip proxies on
// both sides, where the lanes pipeline their APPENDs and prefetch their
// next batch, into a target that refuses every message over 150 KB: those
// fail alone with the server's reason, everything else arrives exactly.
func TestPipelinedLanesOverDelay(t *testing.T) {
	migratetest.NeedsRealServers(t, "the target's quota refuses the large messages")
	const limit = 150 << 10
	w := newWorld(t, migratetest.Options{Accounts: 2, Messages: 300, MaxAttachment: 400 << 10, BadPassword: -1,
		TargetConfig: "mail_plugins = $mail_plugins quota\nplugin {\n  quota = count:User quota\n  quota_vsizes = yes\n  quota_max_mail_size = 150k\n}\n"})
	before := w.Sources()
	sp, err := delayproxy.Start(w.Src.IMAPAddr, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	dp, err := delayproxy.Start(w.Dst.IMAPAddr, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	job, err := w.Store.Job(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	job.Source, job.Target = migratetest.Endpoint(sp.Addr), migratetest.Endpoint(dp.Addr)
	if err := w.Store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	// Small batches: many batch boundaries, so prefetching is exercised.
	r := runner(w, migrate.Config{Accounts: 2, Lanes: 2, BatchMessages: 16})
	start := time.Now()
	if err := r.Run(context.Background(), w.Job); err != nil {
		t.Fatal(err)
	}
	t.Logf("600 messages at 20 ms round trip: %v", time.Since(start))
	for _, u := range w.Users {
		want := migratetest.Mailbox{}
		big := 0
		for name, msgs := range before[u.Old] {
			for _, m := range msgs {
				if len(m.Body) > limit {
					big++
					continue
				}
				want[name] = append(want[name], m)
			}
		}
		if big == 0 {
			t.Fatalf("%s: no message over the limit; the test proves nothing", u.Old)
		}
		got := w.Target(u)
		for name, msgs := range got {
			if len(msgs) == 0 && len(want[name]) == 0 {
				delete(got, name)
			}
		}
		migratetest.SameMail(t, u.Old, want, got)
		a := accounts(t, w)[u.Old]
		if a.State != state.AccountPartial || a.Counts.Failed != int64(big) || a.Counts.Imported != a.Counts.ToImport-int64(big) {
			t.Fatalf("%s: %s %+v, want %d failed", u.Old, a.State, a.Counts, big)
		}
		if !strings.Contains(a.Reason, "too large") {
			t.Fatalf("%s: reason %q does not say why", u.Old, a.Reason)
		}
	}
}
