package migrate_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// TestControlSocketActorAndAudit: a command reaching the process that
// holds the state file is recorded as this machine's user and host, or as
// whoever the request names; banjia logs' filters are answered through the
// same socket.
func TestControlSocketActorAndAudit(t *testing.T) {
	store := tempStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// No job runs here: the events are the requests' own.
	m := migrate.NewIdleManager(store, migrate.Config{})
	defer m.Stop()
	if _, _, err := m.Create(ctx, memberRequest("acme"), state.TokenActor("ops")); err != nil {
		t.Fatal(err)
	}
	if err := m.ServeControl(ctx, store.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Control(store.Path, migrate.ControlRequest{Op: "pause", Job: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Control(store.Path, migrate.ControlRequest{Op: "resume", Job: "acme", Who: state.AdminActor("bob")}); err != nil {
		t.Fatal(err)
	}
	user := os.Getenv("USER")
	host, _ := os.Hostname()
	if !strings.HasPrefix(migrate.CommandLine, "cli:") || !strings.HasSuffix(migrate.CommandLine, "@"+host) || user != "" && !strings.Contains(migrate.CommandLine, user+"@") {
		t.Fatalf("the command line is %q (user %q, host %q)", migrate.CommandLine, user, host)
	}
	for who, want := range map[string][]string{
		"cli":         {"admin.pause"},
		"admin:bob":   {"admin.resume"},
		"token":       {"job.created"},
		"banjia":      {"job.paused", "job.resumed"},
		"nobody-here": nil,
	} {
		rep, err := migrate.Control(store.Path, migrate.ControlRequest{Op: "audit", Query: &state.EventQuery{Job: "acme", Who: []string{who}, Oldest: true}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range rep.Page.Events {
			got = append(got, e.Kind)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("who %s: %v, want %v", who, got, want)
		}
	}
	if _, err := migrate.Control(store.Path, migrate.ControlRequest{Op: "audit"}); err == nil || !strings.Contains(err.Error(), "no query") {
		t.Fatalf("audit without a query: %v", err)
	}
}
