package ewstest

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// SyncFolderItems: every change to a folder's items takes the next number
// of the server's sequence; a sync state is the folder and the number the
// client has seen up to (opaque to clients, as Exchange's are).

// MaxSyncChanges is the schema's bound on MaxChangesReturned.
const MaxSyncChanges = 512

type tombstone struct {
	id           string
	created, seq int64
}

type syncFolderItems struct {
	Shape  *shape     `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ItemShape"`
	Folder *folderIDs `xml:"http://schemas.microsoft.com/exchange/services/2006/messages SyncFolderId"`
	State  string     `xml:"http://schemas.microsoft.com/exchange/services/2006/messages SyncState"`
	Max    int        `xml:"http://schemas.microsoft.com/exchange/services/2006/messages MaxChangesReturned"`
}

// touch gives m the next sequence number; s.mu is held.
func (s *Server) touch(m *Message, created bool) {
	s.seq++
	m.seq = s.seq
	if created {
		m.created = s.seq
	}
}

// Update changes a message (its flags, say) as a client of the old server would.
func (s *Server) Update(mailbox, id string, change func(*Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.items[id]
	for _, m := range f.Messages {
		if m.ID == id {
			change(m)
			s.touch(m, false)
		}
	}
}

// Delete removes a message.
func (s *Server) Delete(mailbox, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.items[id]
	for i, m := range f.Messages {
		if m.ID == id {
			f.Messages = append(f.Messages[:i:i], f.Messages[i+1:]...)
			s.seq++
			f.gone = append(f.gone, tombstone{id: id, created: m.created, seq: s.seq})
		}
	}
	delete(s.items, id)
}

func (s *Server) syncFolderItems(acc *access, r *syncFolderItems) string {
	if !validShape(r.Shape) || r.Folder == nil || r.Max < 1 || r.Max > MaxSyncChanges {
		return fmt.Sprintf("fault:ErrorSchemaValidation:The request failed schema validation: SyncFolderItems needs ItemShape, SyncFolderId and MaxChangesReturned from 1 to %d.", MaxSyncChanges)
	}
	fid, mb, code := s.resolve(acc, r.Folder)
	if code != "" || fid == mb.rootID {
		if code == "" {
			code = "ErrorFolderNotFound"
		}
		return wrap("SyncFolderItems", errorMessage("SyncFolderItems", code, "The folder could not be found."))
	}
	var since int64
	if r.State != "" {
		raw, err := base64.StdEncoding.DecodeString(r.State)
		folder, n, ok := strings.Cut(string(raw), "|")
		if since, err2 := strconv.ParseInt(n, 10, 64); err != nil || err2 != nil || !ok || folder != fid || since < 0 {
			return wrap("SyncFolderItems", errorMessage("SyncFolderItems", "ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid."))
		}
		since, _ = strconv.ParseInt(n, 10, 64)
	}
	f := s.folders[fid]
	type change struct {
		seq  int64
		xml  string
		kind string
	}
	var changes []change
	for _, m := range f.Messages {
		if m.seq <= since {
			continue
		}
		kind := "Create"
		if m.created <= since {
			kind = "Update"
		}
		changes = append(changes, change{m.seq, s.itemXML(m, r.Shape), kind})
	}
	for _, g := range f.gone {
		if g.seq > since && g.created <= since {
			changes = append(changes, change{g.seq, fmt.Sprintf(`<t:ItemId Id="%s" ChangeKey="CQAAABYAAAA"/>`, g.id), "Delete"})
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].seq < changes[j].seq })
	last := len(changes) <= r.Max
	if !last {
		changes = changes[:r.Max]
	}
	upto := since
	if len(changes) > 0 {
		upto = changes[len(changes)-1].seq
	} else if last {
		upto = max(since, s.seq)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SyncState>%s</m:SyncState><m:IncludesLastItemInRange>%t</m:IncludesLastItemInRange><m:Changes>`,
		base64.StdEncoding.EncodeToString([]byte(fid+"|"+strconv.FormatInt(upto, 10))), last)
	for _, c := range changes {
		fmt.Fprintf(&b, `<t:%s>%s</t:%s>`, c.kind, c.xml, c.kind)
	}
	b.WriteString(`</m:Changes></m:SyncFolderItemsResponseMessage>`)
	s.stats.Requests["SyncFolderItems changes"] += len(changes)
	return wrap("SyncFolderItems", b.String())
}
