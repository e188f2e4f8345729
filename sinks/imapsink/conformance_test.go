package imapsink_test

import (
	"context"
	"testing"

	imap "github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/internal/courier"
	"github.com/banjia-mail/banjia/internal/cyrus"
	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sinks/imapsink"
	"github.com/banjia-mail/banjia/sinks/sinktest"
)

// The IMAP sink against every kind of target it is meant for.

const (
	user     = "conformance@new.test"
	password = "conformance-pw"
)

func opener(addr string) func(t *testing.T) sinks.Sink {
	e := migratetest.Endpoint(addr)
	e.User, e.Password = user, password
	return func(t *testing.T) sinks.Sink {
		t.Helper()
		s, err := imapsink.Open(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func addUser(t *testing.T, add func(string, string) error) {
	t.Helper()
	if err := add(user, password); err != nil {
		t.Fatal(err)
	}
}

func TestConformanceMemory(t *testing.T) {
	s := migratetest.StartMem(t, nil)
	addUser(t, s.AddUser)
	sinktest.Run(t, sinktest.Options{UIDPlus: true, Subscriptions: true}, opener(s.Addr))
}

// The in-memory server without the optional extensions (no UIDPLUS, no
// LITERAL+, no LIST-EXTENDED or LIST-STATUS, no NAMESPACE): the plain
// IMAP4rev1 path, as on the most basic servers.
func TestConformanceMemoryBare(t *testing.T) {
	s := migratetest.StartMem(t, []imap.Cap{imap.CapIMAP4rev1})
	addUser(t, s.AddUser)
	sinktest.Run(t, sinktest.Options{}, opener(s.Addr))
}

func TestConformanceDovecot(t *testing.T) {
	migratetest.NeedsRealServers(t, "a Dovecot target")
	for _, format := range []string{"sdbox", "maildir"} {
		t.Run(format, func(t *testing.T) {
			s := dovecot.StartT(t, dovecot.Options{Format: format})
			addUser(t, s.AddUser)
			sinktest.Run(t, sinktest.Options{UIDPlus: true, Subscriptions: true, BadFolder: migratetest.RefusedFolder}, opener(s.IMAPAddr))
		})
	}
}

func TestConformanceCyrus(t *testing.T) {
	migratetest.NeedsRealServers(t, "a Cyrus target")
	cyrus.Require(t)
	s := cyrus.StartT(t, cyrus.Options{})
	addUser(t, s.AddUser)
	sinktest.Run(t, sinktest.Options{UIDPlus: true, Subscriptions: true, BadFolder: "100%", KeywordLimit: 100}, opener(s.IMAPAddr))
}

func TestConformanceCourier(t *testing.T) {
	migratetest.NeedsRealServers(t, "a Courier target")
	courier.Require(t)
	s := courier.StartT(t)
	addUser(t, s.AddUser)
	sinktest.Run(t, sinktest.Options{UIDPlus: true, NoUIDNext: true, AddsLineEnd: true}, opener(s.IMAPAddr))
}
