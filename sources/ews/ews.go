// Package ews is the Exchange Web Services source, for on-premises Exchange
// 2010-2019 where IMAP is off: SOAP over HTTPS with NTLM or Basic, the
// member's own login or a migration admin opening every mailbox through
// ExchangeImpersonation (the ApplicationImpersonation role). For Exchange
// Online an Entra ID application's app-only token replaces the login
// (oauth.go).
//
// An endpoint is ews://login@mail.example.com (the EWS URL is
// https://mail.example.com/EWS/Exchange.asmx), with Version naming the
// RequestServerVersion and AuthzID the mailbox to impersonate.
//
// Keys are EWS item ids. EWS has no MIME size property (item:Size is the
// store's size), so Messages learns each item's exact MIME length by
// reading its MimeContent in batches; an item Exchange cannot turn into
// MIME is listed with size 0 and fails alone when fetched. With a
// SyncStore (the default) a folder is listed with SyncFolderItems and the
// listing, sizes included, is kept with the sync state: the next listing
// asks only for what changed and measures only new items. Without one it
// is listed with FindItem, paged.
package ews

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources"
)

func init() {
	sources.Register(func(ctx context.Context, e mail.Endpoint) (sources.Source, error) {
		return Open(ctx, e)
	}, "ews")
}

// PageSize is how many entries one FindItem or FindFolder page asks for;
// Exchange's default throttling policy refuses more than 1000
// (EWSFindCountLimit), and a refused page is asked again at half the size.
var PageSize = 500

// BatchItems and BatchBytes bound one GetItem: MIME comes back base64 in
// one XML answer, held in memory.
var (
	BatchItems       = 50
	BatchBytes int64 = 8 << 20
)

// Source is one mailbox read over EWS, used by one goroutine at a time.
type Source struct {
	c       *client
	mailbox string
	folders map[string]string // Name -> folder id
	sizes   map[string]int64  // item id -> MIME length, -1 when Exchange gives no MIME
	syncs   SyncStore
}

var _ sources.Source = (*Source)(nil)

// Open logs in and checks, with one request, that the login is accepted,
// that the admin may open the member's mailbox and that it exists. An
// admin refused impersonation tries FullAccess: the member's folders named
// in the member's mailbox (DistinguishedFolderId with Mailbox).
func Open(ctx context.Context, e mail.Endpoint) (*Source, error) {
	c, err := newClient(e)
	if err != nil {
		return nil, err
	}
	s := &Source{c: c, mailbox: e.AuthzID, sizes: map[string]int64{}, syncs: Syncs}
	if s.mailbox == "" {
		s.mailbox = e.User
	}
	err = s.probe(ctx)
	if errors.Is(err, errNoEWS) && e.Path == "" && s.c.app == nil {
		who := e.AuthzID
		if who == "" && strings.Contains(e.User, "@") {
			who = e.User
		}
		found, derr := s.c.discover(ctx, who)
		if derr != nil {
			s.c.close()
			return nil, fault.New(fault.Account, fmt.Sprintf("no EWS at %s (HTTP 404), and Autodiscover did not say where it is (%v): give the EWS URL", s.c.url, derr), err)
		}
		s.c.url = found
		err = s.probe(ctx)
	}
	if c := codeOf(err); (c == "ErrorImpersonateUserDenied" || c == "ErrorImpersonationDenied") && s.c.app == nil {
		// An application has no mailbox of its own to be a delegate from.
		s.c.impersonate, s.c.delegate = "", e.AuthzID
		if err = s.probe(ctx); err != nil && codeOf(err) != "ErrorNonExistentMailbox" {
			err = &responseError{Code: "ErrorImpersonateUserDenied", Text: "impersonation refused, and no FullAccess: " + err.Error()}
		}
	}
	if err != nil {
		s.c.close()
		return nil, s.c.classify("GetFolder", err)
	}
	return s, nil
}

// probe opens the mailbox's Inbox.
func (s *Source) probe(ctx context.Context) error {
	var r getFolderResponse
	if err := s.c.call(ctx, "GetFolder", s.c.getFolderBody([]string{"inbox"}), &r); err != nil {
		return err
	}
	if len(r.Messages.List) == 0 {
		return errors.New("EWS GetFolder: empty answer")
	}
	return r.Messages.List[0].err()
}

// Close drops the session's connections; EWS has no logout.
func (s *Source) Close() error {
	s.c.close()
	return nil
}

// ---- answers ----

type idAttr struct {
	ID string `xml:"Id,attr"`
}

type folderXML struct {
	XMLName    xml.Name
	ID         idAttr  `xml:"http://schemas.microsoft.com/exchange/services/2006/types FolderId"`
	Parent     *idAttr `xml:"http://schemas.microsoft.com/exchange/services/2006/types ParentFolderId"`
	Class      string  `xml:"http://schemas.microsoft.com/exchange/services/2006/types FolderClass"`
	Name       string  `xml:"http://schemas.microsoft.com/exchange/services/2006/types DisplayName"`
	TotalCount int     `xml:"http://schemas.microsoft.com/exchange/services/2006/types TotalCount"`
}

type folderList struct {
	List []folderXML `xml:",any"`
}

type extendedProp struct {
	URI struct {
		Tag string `xml:"PropertyTag,attr"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/types ExtendedFieldURI"`
	Value string `xml:"http://schemas.microsoft.com/exchange/services/2006/types Value"`
}

type itemXML struct {
	XMLName    xml.Name
	ID         idAttr `xml:"http://schemas.microsoft.com/exchange/services/2006/types ItemId"`
	MIME       string `xml:"http://schemas.microsoft.com/exchange/services/2006/types MimeContent"`
	Received   string `xml:"http://schemas.microsoft.com/exchange/services/2006/types DateTimeReceived"`
	Size       int64  `xml:"http://schemas.microsoft.com/exchange/services/2006/types Size"`
	IsRead     bool   `xml:"http://schemas.microsoft.com/exchange/services/2006/types IsRead"`
	IsDraft    bool   `xml:"http://schemas.microsoft.com/exchange/services/2006/types IsDraft"`
	Categories struct {
		List []string `xml:"http://schemas.microsoft.com/exchange/services/2006/types String"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/types Categories"`
	Extended []extendedProp `xml:"http://schemas.microsoft.com/exchange/services/2006/types ExtendedProperty"`
}

type itemList struct {
	List []itemXML `xml:",any"`
}

type rootFolder struct {
	Offset  int        `xml:"IndexedPagingOffset,attr"`
	Total   int        `xml:"TotalItemsInView,attr"`
	Last    bool       `xml:"IncludesLastItemInRange,attr"`
	Folders folderList `xml:"http://schemas.microsoft.com/exchange/services/2006/types Folders"`
	Items   itemList   `xml:"http://schemas.microsoft.com/exchange/services/2006/types Items"`
}

// answer is one response message: its class and code, and what it carries.
type answer struct {
	XMLName xml.Name
	Class   string     `xml:"ResponseClass,attr"`
	Code    string     `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ResponseCode"`
	Text    string     `xml:"http://schemas.microsoft.com/exchange/services/2006/messages MessageText"`
	XML     *valueSet  `xml:"http://schemas.microsoft.com/exchange/services/2006/messages MessageXml"`
	Root    rootFolder `xml:"http://schemas.microsoft.com/exchange/services/2006/messages RootFolder"`
	Folders folderList `xml:"http://schemas.microsoft.com/exchange/services/2006/messages Folders"`
	Items   itemList   `xml:"http://schemas.microsoft.com/exchange/services/2006/messages Items"`
}

type answers struct {
	List []answer `xml:",any"`
}

type getFolderResponse struct {
	Messages answers `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ResponseMessages"`
}

type findResponse = getFolderResponse

// ---- requests ----

// distinguishedID names a well-known folder, in the member's mailbox when
// the admin opens it through FullAccess.
func (c *client) distinguishedID(id string) string {
	if c.delegate == "" {
		return fmt.Sprintf(`<t:DistinguishedFolderId Id="%s"/>`, id)
	}
	return fmt.Sprintf(`<t:DistinguishedFolderId Id="%s"><t:Mailbox><t:EmailAddress>%s</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>`, id, esc(c.delegate))
}

func (c *client) getFolderBody(distinguished []string) string {
	var b strings.Builder
	b.WriteString(`<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>`)
	for _, id := range distinguished {
		b.WriteString(c.distinguishedID(id))
	}
	b.WriteString(`</m:FolderIds></m:GetFolder>`)
	return b.String()
}

func (c *client) findFolderBody(page, offset int) string {
	return fmt.Sprintf(`<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>`+
		`<t:FieldURI FieldURI="folder:ParentFolderId"/><t:FieldURI FieldURI="folder:FolderClass"/><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURI FieldURI="folder:TotalCount"/>`+
		`</t:AdditionalProperties></m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned="%d" Offset="%d" BasePoint="Beginning"/>`+
		`<m:ParentFolderIds>%s</m:ParentFolderIds></m:FindFolder>`, page, offset, c.distinguishedID("msgfolderroot"))
}

// PR_LAST_VERB_EXECUTED and PR_FLAG_STATUS: the replied/forwarded state and
// the follow-up flag, which Exchange 2010 has no first-class property for.
const (
	tagLastVerb   = "0x1081"
	tagFlagStatus = "0x1090"
)

func findItemBody(folderID string, page, offset int) string {
	return fmt.Sprintf(`<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>`+
		`<t:FieldURI FieldURI="item:DateTimeReceived"/><t:FieldURI FieldURI="item:Size"/><t:FieldURI FieldURI="item:IsDraft"/>`+
		`<t:FieldURI FieldURI="item:Categories"/><t:FieldURI FieldURI="message:IsRead"/>`+
		`<t:ExtendedFieldURI PropertyTag="%s" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="%s" PropertyType="Integer"/>`+
		`</t:AdditionalProperties></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="%d" Offset="%d" BasePoint="Beginning"/>`+
		`<m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder>`+
		`<m:ParentFolderIds><t:FolderId Id="%s"/></m:ParentFolderIds></m:FindItem>`, tagLastVerb, tagFlagStatus, page, offset, esc(folderID))
}

func getItemBody(ids []string) string {
	var b strings.Builder
	b.WriteString(`<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds>`)
	for _, id := range ids {
		fmt.Fprintf(&b, `<t:ItemId Id="%s"/>`, esc(id))
	}
	b.WriteString(`</m:ItemIds></m:GetItem>`)
	return b.String()
}

// ---- folders ----

// wellKnown are the distinguished folders and the special use each maps to
// (inbox only to recognise it: it becomes INBOX).
var wellKnown = []struct{ id, special string }{
	{"inbox", ""},
	{"sentitems", mail.SpecialSent},
	{"drafts", mail.SpecialDrafts},
	{"deleteditems", mail.SpecialTrash},
	{"junkemail", mail.SpecialJunk},
}

// syncIssues are the names Outlook gives its Sync Issues folder: its
// conflict and failure copies are not the member's mail. It and the Outbox
// are marked as system folders (mail.Folder.System), as the IMAP and Graph
// sources mark them: a job leaves them behind, and says so, unless it keeps
// system folders.
var syncIssues = map[string]bool{"Sync Issues": true, "同步问题": true}

const (
	outboxReason     = "Exchange's Outbox: messages Outlook has not sent yet, which the new server's mail clients would not send"
	syncIssuesReason = "Exchange's Sync Issues: Outlook's synchronisation logs and losing copies of conflicting edits, not the member's mail"
)

// isMail says whether a folder of this element and class holds mail:
// calendars, contacts, tasks, notes, journals and search folders do not.
func isMail(element, class string) bool {
	if element != "Folder" {
		return false
	}
	return class == "" || class == "IPF.Note" || strings.HasPrefix(class, "IPF.Note.")
}

// Folders lists every mail folder under the mailbox's root with one deep
// FindFolder, as "/"-joined paths.
func (s *Source) Folders(ctx context.Context) ([]mail.Folder, error) {
	ids := []string{"msgfolderroot"}
	for _, wk := range wellKnown {
		ids = append(ids, wk.id)
	}
	ids = append(ids, "outbox")
	var outbox string
	var gr getFolderResponse
	if err := s.c.call(ctx, "GetFolder", s.c.getFolderBody(ids), &gr); err != nil {
		return nil, s.c.classify("GetFolder", err)
	}
	if len(gr.Messages.List) != len(ids) {
		return nil, fmt.Errorf("EWS GetFolder: %d answers for %d folders", len(gr.Messages.List), len(ids))
	}
	role := map[string]int{} // folder id -> index in wellKnown + 1
	var root string
	for i, a := range gr.Messages.List {
		if err := a.err(); err != nil {
			if codeOf(err) == "ErrorFolderNotFound" && i > 1 {
				continue
			}
			return nil, s.c.classify("GetFolder", err)
		}
		if len(a.Folders.List) != 1 {
			return nil, fmt.Errorf("EWS GetFolder %s: no folder in the answer", ids[i])
		}
		switch {
		case i == 0:
			root = a.Folders.List[0].ID.ID
		case ids[i] == "outbox":
			outbox = a.Folders.List[0].ID.ID
		default:
			role[a.Folders.List[0].ID.ID] = i
		}
	}
	all, err := s.findFolders(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]folderXML{}
	for _, f := range all {
		byID[f.ID.ID] = f
	}
	// A folder is copied when it and every folder above it hold mail.
	names := map[string]string{}
	skipped := map[string]bool{}
	var name func(id string) (string, bool)
	name = func(id string) (string, bool) {
		if n, ok := names[id]; ok {
			return n, true
		}
		if skipped[id] {
			return "", false
		}
		f := byID[id]
		parent := ""
		if f.Parent != nil && f.Parent.ID != root {
			if _, known := byID[f.Parent.ID]; !known {
				skipped[id] = true
				return "", false
			}
			p, ok := name(f.Parent.ID)
			if !ok {
				skipped[id] = true
				return "", false
			}
			parent = p
		}
		if !isMail(f.XMLName.Local, f.Class) {
			skipped[id] = true
			return "", false
		}
		n := folderName(f.Name)
		if parent == "" && role[id] == 1 {
			n = "INBOX"
		}
		if parent != "" {
			n = parent + "/" + n
		}
		names[id] = n
		return n, true
	}
	var out []mail.Folder
	folders := map[string]string{}
	for _, f := range all {
		n, ok := name(f.ID.ID)
		if !ok {
			continue
		}
		if _, dup := folders[n]; dup {
			id := f.ID.ID
			n += " (" + strings.Trim(id[max(0, len(id)-8):], "=+/") + ")"
			names[f.ID.ID] = n
		}
		mf := mail.Folder{Name: n, Delim: '/', Validity: validity(f.ID.ID), Messages: uint32(max(0, f.TotalCount))}
		top, _, _ := strings.Cut(names[f.ID.ID], "/")
		switch {
		case f.ID.ID == outbox:
			mf.System = outboxReason
		case syncIssues[top]:
			mf.System = syncIssuesReason
		}
		if r := role[f.ID.ID]; r > 0 {
			mf.SpecialUse = wellKnown[r-1].special
		}
		out = append(out, mf)
		folders[n] = f.ID.ID
	}
	s.folders = folders
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// findFolders pages through a deep FindFolder from msgfolderroot.
func (s *Source) findFolders(ctx context.Context) ([]folderXML, error) {
	var all []folderXML
	page := PageSize
	for {
		var r findResponse
		err := s.c.call(ctx, "FindFolder", s.c.findFolderBody(page, len(all)), &r)
		if err == nil && len(r.Messages.List) == 0 {
			err = errors.New("empty answer")
		}
		if err == nil {
			err = r.Messages.List[0].err()
		}
		if codeOf(err) == "ErrorExceededFindCountLimit" && page > 1 {
			page /= 2
			continue
		}
		if err != nil {
			return nil, s.c.classify("FindFolder", err)
		}
		root := r.Messages.List[0].Root
		all = append(all, root.Folders.List...)
		if root.Last || len(root.Folders.List) == 0 {
			return all, nil
		}
	}
}

// folderName keeps a display name from adding a level: "/" is the delimiter.
func folderName(display string) string {
	if display == "" {
		return "_"
	}
	return strings.ReplaceAll(display, "/", "_")
}

// validity is stable for a folder and changes only if it is deleted and a
// new one takes its name (EWS folder ids are never reused).
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

// ---- messages ----

// Messages lists a folder in ascending received time with exact MIME sizes.
func (s *Source) Messages(ctx context.Context, f mail.Folder) ([]mail.Message, error) {
	id, err := s.folderID(ctx, f)
	if err != nil {
		return nil, err
	}
	if s.syncs != nil {
		return s.listSync(ctx, f, id)
	}
	items, err := s.findItems(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("listing folder %q: %w", f.Name, err)
	}
	out := make([]mail.Message, 0, len(items))
	storeSize := map[string]int64{}
	for _, it := range items {
		m := mail.Message{Key: it.ID.ID, Flags: flagsOf(it)}
		if it.Received != "" {
			t, err := time.Parse(time.RFC3339, it.Received)
			if err != nil {
				return nil, fmt.Errorf("folder %q: item received at %q: %v", f.Name, it.Received, err)
			}
			m.Date = t
		}
		storeSize[m.Key] = it.Size
		out = append(out, m)
	}
	gone, err := s.measure(ctx, out, storeSize)
	if err != nil {
		return nil, fmt.Errorf("reading the sizes of folder %q: %w", f.Name, err)
	}
	kept := out[:0]
	for _, m := range out {
		if gone[m.Key] {
			continue
		}
		m.Size = max(0, s.sizes[m.Key])
		kept = append(kept, m)
	}
	return kept, nil
}

func (s *Source) findItems(ctx context.Context, folderID string) ([]itemXML, error) {
	var all []itemXML
	page := PageSize
	for {
		var r findResponse
		err := s.c.call(ctx, "FindItem", findItemBody(folderID, page, len(all)), &r)
		if err == nil && len(r.Messages.List) == 0 {
			err = errors.New("empty answer")
		}
		if err == nil {
			err = r.Messages.List[0].err()
		}
		if codeOf(err) == "ErrorExceededFindCountLimit" && page > 1 {
			page /= 2
			continue
		}
		if codeOf(err) == "ErrorFolderNotFound" {
			return nil, errGoneFolder(err)
		}
		if err != nil {
			return nil, s.c.classify("FindItem", err)
		}
		root := r.Messages.List[0].Root
		all = append(all, root.Items.List...)
		if root.Last || len(root.Items.List) == 0 {
			return all, nil
		}
	}
}

func errGoneFolder(err error) error {
	return fault.New(fault.Retry, "the folder is gone from the mailbox", err)
}

// flagsOf maps an item's properties to IMAP flags.
func flagsOf(it itemXML) []string {
	var flags []string
	if it.IsRead {
		flags = append(flags, `\Seen`)
	}
	if it.IsDraft {
		flags = append(flags, `\Draft`)
	}
	for _, p := range it.Extended {
		n, err := strconv.Atoi(strings.TrimSpace(p.Value))
		if err != nil {
			continue
		}
		switch tag, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(p.URI.Tag), "0x"), 16, 32); fmt.Sprintf("0x%04x", tag) {
		case tagFlagStatus:
			if n == 2 { // followupFlagged; 1 is complete
				flags = append(flags, `\Flagged`)
			}
		case tagLastVerb:
			switch n {
			case 102, 103: // reply to sender, reply to all
				flags = append(flags, `\Answered`)
			case 104:
				flags = append(flags, "$Forwarded")
			}
		}
	}
	seen := map[string]bool{}
	for _, c := range it.Categories.List {
		if k := mail.Keyword(c); k != "" && !seen[k] {
			seen[k] = true
			flags = append(flags, k)
		}
	}
	return flags
}

// batches cuts keys into GetItem batches by count and by estimated bytes.
func batches[T any](list []T, size func(T) int64) [][]T {
	var out [][]T
	var cur []T
	var bytes int64
	for _, x := range list {
		n := size(x)
		if n >= StreamAbove && len(cur) > 0 {
			// A large one goes alone, to be streamed.
			out = append(out, cur)
			cur, bytes = nil, 0
		}
		if len(cur) > 0 && (len(cur) >= BatchItems || bytes+n > BatchBytes || size(cur[0]) >= StreamAbove) {
			out = append(out, cur)
			cur, bytes = nil, 0
		}
		cur = append(cur, x)
		bytes += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// measure reads the MIME of items whose size the session does not know yet;
// it returns the items that are gone.
func (s *Source) measure(ctx context.Context, msgs []mail.Message, storeSize map[string]int64) (map[string]bool, error) {
	var todo []string
	for _, m := range msgs {
		if _, ok := s.sizes[m.Key]; !ok {
			todo = append(todo, m.Key)
		}
	}
	gone := map[string]bool{}
	for _, batch := range batches(todo, func(id string) int64 { return storeSize[id] }) {
		if len(batch) == 1 && storeSize[batch[0]] >= StreamAbove {
			// Counted as it streams by, not held.
			var n int64
			seen := false
			err := s.fetchStreaming(ctx, mail.Message{Key: batch[0]}, func(b *mail.Body) error {
				seen = true
				var err error
				// Past the length check: the length is what is learnt here.
				n, err = io.Copy(io.Discard, b.Reader.(*exactly).r)
				return err
			})
			var me *mail.MessageError
			switch {
			case errors.As(err, &me):
				s.sizes[batch[0]] = -1
			case err != nil:
				return nil, err
			case !seen:
				gone[batch[0]] = true
			default:
				s.sizes[batch[0]] = n
			}
			continue
		}
		err := s.getItems(ctx, batch, func(i int, it *itemXML, err error) error {
			switch {
			case err == nil:
				s.sizes[batch[i]] = int64(base64.StdEncoding.DecodedLen(len(it.MIME)) - strings.Count(it.MIME[max(0, len(it.MIME)-2):], "="))
			case vanished(err):
				gone[batch[i]] = true
			default:
				s.sizes[batch[i]] = -1
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return gone, nil
}

func vanished(err error) bool {
	c := codeOf(err)
	return c == "ErrorItemNotFound" || c == "ErrorInvalidIdMalformed" || c == "ErrorInvalidIdNotAnItemAttachmentId"
}

// getItems runs one GetItem with MIME content and calls fn for each id in
// order with its item or its own error.
func (s *Source) getItems(ctx context.Context, ids []string, fn func(i int, it *itemXML, err error) error) error {
	var r findResponse
	if err := s.c.call(ctx, "GetItem", getItemBody(ids), &r); err != nil {
		return s.c.classify("GetItem", err)
	}
	if len(r.Messages.List) != len(ids) {
		return fmt.Errorf("EWS GetItem: %d answers for %d items", len(r.Messages.List), len(ids))
	}
	for i := range r.Messages.List {
		a := &r.Messages.List[i]
		if err := a.err(); err != nil {
			if codeOf(err) == "ErrorServerBusy" {
				return s.c.classify("GetItem", err)
			}
			if e := fn(i, nil, err); e != nil {
				return e
			}
			continue
		}
		if len(a.Items.List) != 1 {
			return fmt.Errorf("EWS GetItem: answer %d holds %d items", i, len(a.Items.List))
		}
		if e := fn(i, &a.Items.List[0], nil); e != nil {
			return e
		}
	}
	return nil
}

// Fetch reads msgs' MIME in batches and streams each in the order given.
func (s *Source) Fetch(ctx context.Context, f mail.Folder, msgs []mail.Message, fn func(*mail.Body) error) error {
	for _, batch := range batches(msgs, func(m mail.Message) int64 { return m.Size }) {
		if len(batch) == 1 && batch[0].Size >= StreamAbove {
			if err := s.fetchStreaming(ctx, batch[0], fn); err != nil {
				return err
			}
			continue
		}
		ids := make([]string, len(batch))
		for i, m := range batch {
			ids[i] = m.Key
		}
		err := s.getItems(ctx, ids, func(i int, it *itemXML, err error) error {
			m := batch[i]
			if err != nil {
				if vanished(err) {
					return nil
				}
				return &mail.MessageError{Message: m, Err: fault.New(fault.Message,
					fmt.Sprintf("Exchange cannot give this item as MIME (%s)", codeOf(err)), err)}
			}
			data, derr := base64.StdEncoding.DecodeString(it.MIME)
			if derr != nil {
				return &mail.MessageError{Message: m, Err: fault.New(fault.Message, "Exchange sent MIME content that is not base64", derr)}
			}
			m.Size = int64(len(data))
			return fn(&mail.Body{Message: m, Reader: bytes.NewReader(data)})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
