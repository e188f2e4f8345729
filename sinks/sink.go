// Package sinks defines where migrated mail goes (the new mailbox) and how
// source folder names become target folder names.
package sinks

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/mail"
)

// Folder is a target folder ready to receive mail.
type Folder struct {
	Name     string
	Validity uint32
	// UIDNext is the UID the next appended message will get, as of Prepare.
	UIDNext uint32
	// Keywords says whether the folder keeps keywords (PERMANENTFLAGS has \*).
	Keywords bool
	// Flags are the flags the folder keeps permanently.
	Flags []string
}

// Appended is the target's answer to one APPEND.
type Appended struct {
	// UID and Validity are set when the server reports them (UIDPLUS).
	UID      uint32
	Validity uint32
	// Dropped lists the flags that were not kept because the folder refuses them.
	Dropped []string
}

// Message is a target message as the in-doubt check sees it.
type Message struct {
	UID  uint32
	Size int64
	Date time.Time
	// Flags are the message's flags on the target (without \Recent), when
	// the sink reports them.
	Flags []string
}

// Sink is one logged-in session on the target mailbox, used by one goroutine.
type Sink interface {
	// Namespace is where the mailbox's own folders live.
	Namespace() Namespace
	// Folders lists the target's own folders with their special use,
	// UIDVALIDITY, message count and UIDNEXT: what a re-run checks its
	// records against (the target is the truth).
	Folders(ctx context.Context) ([]mail.Folder, error)
	// Prepare creates the folder (and its parents) if needed and reports its state.
	Prepare(ctx context.Context, name string) (Folder, error)
	// Subscribe subscribes the folder.
	Subscribe(ctx context.Context, name string) error
	// Append stores one message with its flags and INTERNALDATE, reading
	// exactly size bytes from r.
	Append(ctx context.Context, f Folder, r io.Reader, size int64, flags []string, date time.Time) (Appended, error)
	// Messages lists the folder's messages with UID >= from.
	Messages(ctx context.Context, name string, from uint32) ([]Message, error)
	// Fetch streams the bodies of the given UIDs of a folder.
	Fetch(ctx context.Context, name string, uids []uint32, fn func(uid uint32, r io.Reader) error) error
	Close() error
}

// Expunger removes messages from a target folder. The engine uses it for one
// thing only: a copy it made whose APPEND was in doubt, that the server
// recovered after the same message had been sent again.
type Expunger interface {
	Expunge(ctx context.Context, name string, uids []uint32) error
}

// FlagSetter replaces the flags of one target message. The engine uses it
// for one thing only: a copy found stored after its APPEND was in doubt,
// whose flags the server did not keep as sent (a session killed while it
// saved can leave a maildir keyword the server no longer knows).
type FlagSetter interface {
	SetFlags(ctx context.Context, name string, uid uint32, flags []string) error
}

// ErrInDoubt marks an APPEND whose message was sent in full but whose answer
// was lost with the connection: the target may or may not have stored it,
// so it must be looked up there before it is sent again.
var ErrInDoubt = errors.New("the connection was lost after the whole message was sent; the target may have stored it")

// ErrKeywordsRefused marks an APPEND the target refused because of the
// message's keywords (too many for the folder, a name it does not take):
// the message is to be sent again without them, never failed for them.
var ErrKeywordsRefused = errors.New("the target refused the message's keywords")

// Opener opens a sink session.
type Opener func(ctx context.Context, e mail.Endpoint) (Sink, error)

// Specials maps roles to the target's folders for them: by SPECIAL-USE
// attribute, else by a well-known name at the top of its namespace (Courier
// has no SPECIAL-USE; its "INBOX.Sent" is the Sent folder).
func Specials(list []mail.Folder, ns Namespace) map[string]string {
	out := map[string]string{}
	for _, f := range list {
		if f.SpecialUse != "" {
			if _, ok := out[f.SpecialUse]; !ok {
				out[f.SpecialUse] = f.Name
			}
		}
	}
	for _, f := range list {
		if f.SpecialUse != "" || strings.EqualFold(f.Name, "INBOX") {
			continue
		}
		f.Prefix = ns.Prefix
		if ns.Rel(f.Name) == f.Name && ns.Prefix != "" {
			continue // outside the personal namespace
		}
		if len(splitName(f)) != 1 {
			continue
		}
		if role := Role(f); role != "" && role != mail.SpecialAll && role != mail.SpecialFlagged {
			if _, ok := out[role]; !ok {
				out[role] = f.Name
			}
		}
	}
	return out
}

// KeepFlags splits flags into those the folder keeps and those it refuses.
func KeepFlags(f Folder, flags []string) (keep, dropped []string) {
	allowed := map[string]bool{}
	for _, fl := range f.Flags {
		allowed[strings.ToLower(fl)] = true
	}
	for _, fl := range flags {
		lower := strings.ToLower(fl)
		switch {
		case lower == `\recent` || lower == `\*`:
			continue
		case allowed[lower]:
			keep = append(keep, fl)
		case !strings.HasPrefix(fl, `\`) && f.Keywords:
			keep = append(keep, fl)
		case len(f.Flags) == 0 && strings.HasPrefix(fl, `\`) && lower != `\deleted`:
			// PERMANENTFLAGS lists no system flag at all (some servers send
			// only \* or nothing): trust the system flags rather than drop \Seen.
			keep = append(keep, fl)
		default:
			dropped = append(dropped, fl)
		}
	}
	return keep, dropped
}
