// Package graph is the Microsoft Graph source: it reads a member's mailbox
// with the migration app's own credentials (Entra ID client credentials, no
// member password) through msgraph-sdk-go, and streams each message's MIME
// from /messages/{id}/$value through its own HTTP client.
//
// An endpoint is graph://<client id>@graph.microsoft.com?tenant=<tenant>&authzid=<mailbox>
// with the client secret as the password (in a delegated job: the job's
// source admin secret, the member's address as AuthzID). What the tenant's
// admin does once: register an app in Entra ID, add the application
// permissions Mail.Read (and User.Read.All, to list a domain's users), grant
// admin consent, create a client secret; an application access policy
// (New-ApplicationAccessPolicy) may restrict the app to the mailboxes being
// moved. Graph hosts of Microsoft's national clouds (US government, 21Vianet)
// get their own login host; any other host is taken to serve its own token
// endpoint (the tests' emulator in graphtest).
//
// Keys are Graph's immutable message ids. A listing gives each message's
// size as the store knows it (the extended property PidTagMessageSize, asked
// for in the same request), which is near the MIME length but not it: like
// the IMAP source with Exchange's approximate RFC822.SIZE, the listing's
// size serves counts and the size limit, and Fetch announces the exact
// length of what it streams. $value is read once per message, when it is
// copied: Graph has no HEAD for it, does not promise a Content-Length, and
// counts every request against the mailbox's budget. The listing and its
// delta link are kept per folder (see DeltaStore): a re-listing asks Graph
// only for what changed. The folder tree (the well-known folders and the
// top level) is read in one $batch by the first session of a mailbox; the
// engine's further sessions of it send nothing before their first $value,
// and folders the tree shows empty are not listed (see batch.go and
// folders.go for what that saves and what Graph still counts).
//
// msgraph-sdk-go is very large: only this package may import it (its users
// and models packages, not the root one, which would compile all of Graph).
package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources"
)

func init() {
	sources.Register(func(ctx context.Context, e mail.Endpoint) (sources.Source, error) {
		return Open(ctx, e)
	}, "graph")
}

// PageSize is how many items one listing page asks for.
var PageSize int32 = 250

// SpoolMemory is how much of a body without Content-Length is held in
// memory to learn its size; the rest goes to an unlinked temporary file.
var SpoolMemory int64 = 1 << 20

// Source is one member mailbox read through Graph. Like every source it is
// used by one goroutine at a time; requests to the same mailbox from all its
// sessions share one limit of MaxConcurrent.
type Source struct {
	c       *client
	mailbox string // the member's address, for people to read
	id      string // how Graph's paths name the mailbox (see mailboxID)
	deltas  DeltaStore
	folders map[string]string // Name -> Graph folder id
	// listed is the folder tree Open read, for the first Folders call;
	// empty holds the folders that listing found empty, and listedAt when.
	listed   []mail.Folder
	empty    map[string]bool
	listedAt time.Time
}

var _ sources.Source = (*Source)(nil)

// Open prepares the app's credential and checks that the token is granted,
// the app may read the mailbox and the mailbox exists: the first session of
// a mailbox does so by reading its folder tree (one $batch, kept for
// Folders); later sessions within VerifiedFor, such as the engine's lanes,
// which only fetch, send nothing until then.
func Open(ctx context.Context, e mail.Endpoint) (*Source, error) {
	if e.AuthzID == "" {
		return nil, fault.New(fault.Account, "no mailbox to read: give the member's address as the authorization identity (authzid=...)", nil)
	}
	id, err := mailboxID(ctx, e, e.AuthzID)
	if err != nil {
		return nil, err
	}
	// The limiter is the mailbox's however it was named.
	c, err := newClient(e, id)
	if err != nil {
		return nil, err
	}
	s := &Source{c: c, mailbox: e.AuthzID, id: id, deltas: Deltas}
	if c.verifiedWithin(VerifiedFor) {
		return s, nil
	}
	if s.listed, err = s.readTree(ctx); err != nil {
		return nil, err
	}
	c.verified()
	return s, nil
}

func (s *Source) user() *users.UserItemRequestBuilder { return s.c.users().ByUserId(s.id) }

func (s *Source) fail(op string, err error) error { return s.c.classify(op, s.mailbox, err) }

// Close has nothing to end: connections and tokens are shared by the process.
func (s *Source) Close() error { return nil }

var folderFields = []string{"id", "displayName", "parentFolderId", "childFolderCount", "totalItemCount", "isHidden"}

// wellKnown are Graph's well-known folder names and the special use each
// maps to (inbox only to recognise it: it becomes INBOX).
var wellKnown = []struct{ name, special string }{
	{"inbox", ""},
	{"sentitems", mail.SpecialSent},
	{"drafts", mail.SpecialDrafts},
	{"deleteditems", mail.SpecialTrash},
	{"junkemail", mail.SpecialJunk},
	{"archive", mail.SpecialArchive},
}

// systemFolders are Exchange's folders of mail not (yet) the user's: the
// Outbox and Outlook's scheduled sends, whose items the new server's
// clients would not send, and Sync Issues with its Conflicts, Local
// Failures and Server Failures, Outlook's own logs and copies. Folders
// marks them and everything below them (mail.Folder.System), as the IMAP
// source marks the same folders: a job leaves them behind unless it keeps
// system folders.
var systemFolders = []struct{ name, why string }{
	{"outbox", "Exchange's Outbox: messages Outlook has not sent yet, which the new server's mail clients would not send"},
	{"scheduled", "Exchange's Scheduled folder: messages Outlook will send later, which the new server's mail clients would not send"},
	{"syncissues", "Exchange's Sync Issues: Outlook's synchronisation logs and losing copies of conflicting edits, not the member's mail"},
}

// folderName keeps a display name from adding a level: "/" is the delimiter.
func folderName(display string) string {
	if display == "" {
		return "_"
	}
	return strings.ReplaceAll(display, "/", "_")
}

// validity is stable for a folder and changes only if it is deleted and a
// new one takes its name (ids are never reused).
func validity(id string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(id))
	if v := h.Sum32(); v != 0 {
		return uint64(v)
	}
	return 1
}

func (s *Source) folderID(ctx context.Context, f mail.Folder) (string, error) {
	if s.folders == nil {
		if _, err := s.Folders(ctx); err != nil {
			return "", err
		}
	}
	id, ok := s.folders[f.Name]
	if !ok {
		return "", fault.New(fault.Retry, fmt.Sprintf("folder %q is gone from mailbox %s", f.Name, s.mailbox), nil)
	}
	return id, nil
}

var messageFields = []string{"id", "receivedDateTime", "createdDateTime", "isRead", "isDraft", "flag", "categories"}

// Extended properties read with each listed message.
const (
	propSize = "Integer 0x0E08" // PidTagMessageSize
	propVerb = "Integer 0x1081" // PidTagLastVerbExecuted
)

// messageExpand asks for the extended properties in the listing itself.
var messageExpand = []string{fmt.Sprintf("singleValueExtendedProperties($filter=id eq '%s' or id eq '%s')", propSize, propVerb)}

// entry is one listed message; Size is the store's size, 0 when unknown.
type entry struct {
	Date  time.Time `json:"d"`
	Flags []string  `json:"f,omitempty"`
	Size  int64     `json:"s"`
}

func entryOf(m models.Messageable) entry {
	var e entry
	for _, p := range m.GetSingleValueExtendedProperties() {
		if sameProp(deref(p.GetId()), propSize) {
			if n, err := strconv.ParseInt(strings.TrimSpace(deref(p.GetValue())), 10, 64); err == nil && n > 0 {
				e.Size = n
			}
		}
	}
	if t := m.GetReceivedDateTime(); t != nil {
		e.Date = *t
	} else if t := m.GetCreatedDateTime(); t != nil {
		e.Date = *t
	}
	e.Flags = flagsOf(m)
	return e
}

func flagsOf(m models.Messageable) []string {
	var flags []string
	if b := m.GetIsRead(); b != nil && *b {
		flags = append(flags, `\Seen`)
	}
	if f := m.GetFlag(); f != nil {
		if st := f.GetFlagStatus(); st != nil && *st == models.FLAGGED_FOLLOWUPFLAGSTATUS {
			flags = append(flags, `\Flagged`)
		}
	}
	if b := m.GetIsDraft(); b != nil && *b {
		flags = append(flags, `\Draft`)
	}
	// Exchange keeps replied and forwarded as the last verb executed.
	for _, p := range m.GetSingleValueExtendedProperties() {
		if !sameProp(deref(p.GetId()), propVerb) {
			continue
		}
		switch strings.TrimSpace(deref(p.GetValue())) {
		case "102", "103": // reply, reply to all
			flags = append(flags, `\Answered`)
		case "104": // forward
			flags = append(flags, "$Forwarded")
		}
	}
	seen := map[string]bool{}
	for _, c := range m.GetCategories() {
		if k := mail.Keyword(c); k != "" && !seen[k] {
			seen[k] = true
			flags = append(flags, k)
		}
	}
	return flags
}

// sameProp compares extended property ids as Graph writes them back
// ("Integer 0xe08" for "Integer 0x0E08").
func sameProp(a, b string) bool {
	ta, ha, _ := strings.Cut(strings.ToLower(a), " 0x")
	tb, hb, _ := strings.Cut(strings.ToLower(b), " 0x")
	return ta == tb && strings.TrimLeft(ha, "0") == strings.TrimLeft(hb, "0")
}

// Messages lists a folder in ascending received time, with the store's
// sizes (Fetch gives the exact ones).
// With a DeltaStore (the default) the listing is a delta query: the first
// time it reads the folder whole, later only what changed since.
func (s *Source) Messages(ctx context.Context, f mail.Folder) ([]mail.Message, error) {
	id, err := s.folderID(ctx, f)
	if err != nil {
		return nil, err
	}
	if isArchive(id) {
		return []mail.Message{s.archiveEntry()}, nil
	}
	if s.empty[f.Name] && time.Since(s.listedAt) < emptyFor {
		// Empty a moment ago (most of Exchange's default folders are):
		// nothing to ask. A stored delta link is kept for next time.
		return []mail.Message{}, nil
	}
	var snap *snapshot
	deltas := s.deltas != nil && !s.c.cloud.noDelta && !deltaRefused(s.c)
	if deltas {
		snap, err = s.listDelta(ctx, id, false)
		if ae := asAPIError(err); ae != nil && syncStateLost(ae) {
			// The sync state expired between the pages of this very
			// listing: once more from the start.
			snap, err = s.listDelta(ctx, id, true)
		}
		if ae := asAPIError(err); ae != nil && !syncStateLost(ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusNotImplemented) {
			// No delta here (a cloud without it, such as 21Vianet's):
			// listed in full, and the tenant's other folders and
			// mailboxes no longer ask.
			refuseDelta(s.c)
			slog.Info("graph: no message delta; listing folders in full", "tenant", s.c.e.Tenant, "mailbox", s.mailbox, "folder", f.Name, "err", ae)
			deltas = false
		}
	}
	if !deltas {
		snap, err = s.listOrdered(ctx, id)
	}
	if err != nil {
		return nil, s.fail(fmt.Sprintf("listing folder %q", f.Name), err)
	}
	if deltas {
		// Only a cache: not keeping it costs a full listing next time.
		if err := s.saveSnapshot(id, snap); err != nil {
			slog.Warn("graph: delta state not kept", "mailbox", s.mailbox, "folder", f.Name, "err", err)
		}
	}
	out := make([]mail.Message, 0, len(snap.Messages))
	for key, e := range snap.Messages {
		out = append(out, mail.Message{Key: key, Size: max(e.Size, 0), Flags: e.Flags, Date: e.Date})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Date.Equal(out[j].Date) {
			return out[i].Date.Before(out[j].Date)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// deltaRefusals are the tenants (per Graph host) whose Graph refused a
// message delta, for as long as the process runs: a job's every mailbox
// then lists in full without asking again.
var deltaRefusals sync.Map

func deltaRefusalKey(c *client) string { return strings.ToLower(c.cloud.host + "|" + c.e.Tenant) }

func refuseDelta(c *client) { deltaRefusals.Store(deltaRefusalKey(c), true) }

func deltaRefused(c *client) bool {
	_, ok := deltaRefusals.Load(deltaRefusalKey(c))
	return ok
}

// listOrdered pages through the folder in ascending received time.
func (s *Source) listOrdered(ctx context.Context, folderID string) (*snapshot, error) {
	top := PageSize
	msgs := s.user().MailFolders().ByMailFolderId(folderID).Messages()
	page, err := msgs.Get(ctx, &users.ItemMailFoldersItemMessagesRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMailFoldersItemMessagesRequestBuilderGetQueryParameters{
			Orderby: []string{"receivedDateTime asc"}, Select: messageFields, Expand: messageExpand, Top: &top,
		},
	})
	snap := &snapshot{Messages: map[string]entry{}}
	for {
		if err != nil {
			return nil, err
		}
		for _, m := range page.GetValue() {
			snap.Messages[deref(m.GetId())] = entryOf(m)
		}
		next := deref(page.GetOdataNextLink())
		if next == "" {
			return snap, nil
		}
		page, err = msgs.WithUrl(next).Get(ctx, nil)
	}
}

// listDelta brings the folder's snapshot up to date with a delta query:
// from the stored delta link if there is one (and not fresh), else from the start.
func (s *Source) listDelta(ctx context.Context, folderID string, fresh bool) (*snapshot, error) {
	snap, err := s.loadSnapshot(folderID)
	if err != nil || fresh {
		snap = nil // a damaged snapshot only costs a full listing
	}
	delta := s.user().MailFolders().ByMailFolderId(folderID).Messages().Delta()
	hdr := abstractions.NewRequestHeaders()
	hdr.Add("Prefer", fmt.Sprintf("odata.maxpagesize=%d", PageSize))
	var page users.ItemMailFoldersItemMessagesDeltaGetResponseable
	if snap != nil && snap.Link != "" {
		page, err = delta.WithUrl(snap.Link).GetAsDeltaGetResponse(ctx, &users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetRequestConfiguration{Headers: hdr})
		if ae := asAPIError(err); ae != nil && syncStateLost(ae) {
			// The dead link is dropped here and replaced by the new
			// listing's own when Messages saves it.
			snap, err = nil, nil
		}
	}
	if snap == nil || snap.Link == "" {
		snap = &snapshot{Messages: map[string]entry{}}
		page, err = delta.GetAsDeltaGetResponse(ctx, &users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetRequestConfiguration{
			Headers:         hdr,
			QueryParameters: &users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetQueryParameters{Select: messageFields, Expand: messageExpand},
		})
	}
	for {
		if err != nil {
			return nil, err
		}
		for _, m := range page.GetValue() {
			key := deref(m.GetId())
			if _, removed := m.GetAdditionalData()["@removed"]; removed {
				delete(snap.Messages, key)
				continue
			}
			snap.Messages[key] = entryOf(m)
		}
		if link := deref(page.GetOdataDeltaLink()); link != "" {
			snap.Link = link
			return snap, nil
		}
		next := deref(page.GetOdataNextLink())
		if next == "" {
			return nil, errors.New("delta page with neither a next nor a delta link")
		}
		page, err = delta.WithUrl(next).GetAsDeltaGetResponse(ctx, &users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetRequestConfiguration{Headers: hdr})
	}
}

// syncStateLost says a delta link is no longer valid and a full listing is
// needed: Graph answers 410, or a 4xx with one of the codes of its delta
// query overview (syncStateNotFound, syncStateInvalid, resyncRequired, and
// Exchange's own spellings of them).
func syncStateLost(ae *apiError) bool {
	if ae.Status == http.StatusGone {
		return true
	}
	code := strings.ToLower(ae.Code)
	return ae.Status >= 400 && ae.Status < 500 && (strings.Contains(code, "syncstate") || strings.Contains(code, "resync"))
}

// messageLevel says an error concerns one message, not the mailbox or the
// service (which fail or pause the whole listing).
func messageLevel(ae *apiError) bool {
	switch ae.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests,
		http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return false
	}
	return ae.Status >= 400
}

// value starts the GET of one message's MIME; nil when the message is gone.
// The body must be closed. A read that stalls for IOTimeout fails.
func (s *Source) value(ctx context.Context, key string) (*http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	u := fmt.Sprintf("%s/users/%s/messages/%s/$value", s.c.cloud.baseURL(), url.PathEscape(s.id), url.PathEscape(key))
	// identity: a compressed answer would hide the length we must announce.
	resp, err := s.c.get(ctx, u, http.Header{"Accept-Encoding": {"identity"}})
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		ae := responseError(resp) // read before the cancel cuts the body
		cancel()
		if messageGone(ae) {
			return nil, nil
		}
		return nil, ae
	}
	resp.Body = newIdleBody(resp.Body, cancel)
	return resp, nil
}

// messageGone says a $value refusal means the message is gone (deleted
// since it was listed) or its id never was Graph's (a damaged checkpoint).
// Any other 404 (ErrorInvalidUser, MailboxNotEnabledForRESTAPI...) means
// the mailbox itself is gone or closed: counting its messages as deleted
// would end the account 搬家成功 with nothing copied.
func messageGone(ae *apiError) bool {
	switch ae.Code {
	case "ErrorItemNotFound", "ErrorInvalidIdMalformed":
		return true
	}
	return false
}

// idleBody cancels its request when no read completes for IOTimeout.
type idleBody struct {
	io.ReadCloser
	timer  *time.Timer
	cancel context.CancelFunc
}

func newIdleBody(rc io.ReadCloser, cancel context.CancelFunc) *idleBody {
	return &idleBody{ReadCloser: rc, timer: time.AfterFunc(IOTimeout, cancel), cancel: cancel}
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(IOTimeout)
	n, err := b.ReadCloser.Read(p)
	b.timer.Reset(IOTimeout)
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// Fetch streams each message's MIME from $value in the order given. With a
// Content-Length the body goes straight through; without one it is first
// spooled (SpoolMemory in memory, the rest in an unlinked temporary file)
// so that its size is exact before the sink sees it.
func (s *Source) Fetch(ctx context.Context, f mail.Folder, msgs []mail.Message, fn func(*mail.Body) error) error {
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if m.Key == archiveKey { // never a Graph id
			return s.archiveError(m)
		}
		resp, err := s.value(ctx, m.Key)
		if ae := asAPIError(err); ae != nil && messageLevel(ae) && ae.Status < 500 {
			return &mail.MessageError{Message: m, Err: fault.New(fault.Message, fmt.Sprintf("Graph refuses this message's MIME (%d %s)", ae.Status, ae.Code), ae)}
		}
		if err != nil {
			return s.fail(fmt.Sprintf("fetching a message of folder %q", f.Name), err)
		}
		if resp == nil {
			continue // deleted since it was listed
		}
		err = s.deliver(ctx, resp, m, fn)
		resp.Body.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func (s *Source) deliver(ctx context.Context, resp *http.Response, m mail.Message, fn func(*mail.Body) error) error {
	meta := m
	var r io.Reader
	if resp.ContentLength >= 0 {
		// net/http fails a body shorter than its Content-Length with
		// io.ErrUnexpectedEOF and never reads past it.
		meta.Size = resp.ContentLength
		r = &markedReader{r: resp.Body}
	} else {
		sp, size, cleanup, err := spool(resp.Body)
		if err != nil {
			return s.fail("reading a message", err)
		}
		defer cleanup()
		meta.Size, r = size, sp
	}
	err := fn(&mail.Body{Message: meta, Reader: r})
	var fe *fetchError
	if errors.As(err, &fe) {
		// The stream from Graph broke under the sink: a source error.
		return s.fail("reading a message", fe.err)
	}
	return err
}

// markedReader marks read errors as the source's, so Fetch can tell them
// from the callback's own errors, which it must return as they are.
type markedReader struct{ r io.Reader }

func (m *markedReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		return n, &fetchError{err}
	}
	return n, err
}

// spool reads r to its end to learn its size.
func spool(r io.Reader) (io.Reader, int64, func(), error) {
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, r, SpoolMemory+1)
	if err == io.EOF {
		return bytes.NewReader(buf.Bytes()), n, func() {}, nil
	}
	if err != nil {
		return nil, 0, nil, err
	}
	tmp, err := os.CreateTemp("", "banjia-graph-*")
	if err != nil {
		return nil, 0, nil, err
	}
	os.Remove(tmp.Name()) // gone from the directory even after a crash; readable until closed
	cleanup := func() { tmp.Close() }
	rest, err := io.Copy(tmp, io.MultiReader(&buf, r))
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return tmp, rest, cleanup, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
