// Package sources defines the seam every mail source fills (IMAP, POP3,
// Exchange through a delegated admin, Microsoft Graph) and a registry so the
// CLI can open any of them by URL scheme. The engine in package migrate only
// ever talks to these interfaces.
package sources

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/banjia-mail/banjia/mail"
)

// Source is one logged-in session on one source mailbox. A Source is used by
// one goroutine at a time; the engine opens several for parallel lanes.
type Source interface {
	// Folders lists every selectable folder.
	Folders(ctx context.Context) ([]mail.Folder, error)
	// Messages lists a folder's messages in ascending key order. It never
	// changes the folder (read-only select).
	Messages(ctx context.Context, folder mail.Folder) ([]mail.Message, error)
	// Fetch streams the bodies of msgs (all from folder) in the order given,
	// calling fn once per message that still exists. fn must consume or
	// abandon the body before returning. An error from fn stops the fetch and is
	// returned as is. Fetch never marks a message read.
	Fetch(ctx context.Context, folder mail.Folder, msgs []mail.Message, fn func(*mail.Body) error) error
	// Close ends the session without changing the mailbox.
	Close() error
}

// Opener opens a session for an endpoint.
type Opener func(ctx context.Context, e mail.Endpoint) (Source, error)

var (
	regMu    sync.Mutex
	registry = map[string]Opener{}
)

// Register makes a source available under URL schemes; adapters call it from init.
func Register(open Opener, schemes ...string) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, s := range schemes {
		registry[s] = open
	}
}

// Schemes lists the registered URL schemes.
func Schemes() []string {
	regMu.Lock()
	defer regMu.Unlock()
	var out []string
	for s := range registry {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open opens a source session for e with the adapter registered for its scheme.
func Open(ctx context.Context, e mail.Endpoint) (Source, error) {
	regMu.Lock()
	open, ok := registry[e.Scheme]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no source for scheme %q", e.Scheme)
	}
	return open(ctx, e)
}

// Dater is implemented by sources whose listing has no dates (POP3): it
// fills in the dates of msgs when the caller needs them before fetching,
// e.g. to apply a date range.
type Dater interface {
	Dates(ctx context.Context, folder mail.Folder, msgs []mail.Message) error
}

// Identifier is implemented by sources that can tell the same message in
// several folders apart from a mere look-alike (Gmail shows one message
// under every label): it fills Message.ID.
type Identifier interface {
	Identities(ctx context.Context, folder mail.Folder, msgs []mail.Message) error
}
