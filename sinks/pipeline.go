package sinks

import (
	"context"
	"io"
	"time"
)

// Pipeliner is a Sink that keeps several APPENDs in flight on its session
// instead of waiting for each answer: over a real network one round trip
// per message would otherwise bound a connection to a few dozen messages a
// second. The IMAP sink offers it when the server has LITERAL+.
//
// Answers arrive in the order of the Sends; done runs on the caller's
// goroutine, from a later Send, from Flush, or from any other method of the
// Sink (which all wait for the answers owed first), so callers need no
// locking of their own. A message counts as stored only when its done got
// no error.
type Pipeliner interface {
	Sink
	// Send writes one APPEND, reading exactly size bytes from r, and returns
	// once they are sent; the answer comes later through done. An error
	// from Send means this message was not stored (its done is never
	// called); an error a done returns is handed back by the call that ran
	// it.
	Send(ctx context.Context, f Folder, r io.Reader, size int64, flags []string, date time.Time,
		done func(Appended, error) error) error
	// Flush waits for every answer owed and runs its done; it returns the
	// first error, after all of them ran. A connection lost before an
	// answer came reports the message as in doubt: it may be stored.
	Flush(ctx context.Context) error
}
