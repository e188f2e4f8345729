package ews

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/banjia-mail/banjia/mail"
)

// SyncStore keeps, per folder, the last listing (keys, flags, dates, exact
// MIME sizes) and the SyncFolderItems state that continues it, so that the
// next listing asks Exchange only for what changed and reads the MIME of
// new items only. It is a cache of the source, never the engine's record
// of what was copied: losing it costs one full listing.
type SyncStore interface {
	// Load returns what Save stored under key, or nil when there is nothing.
	Load(key string) ([]byte, error)
	Save(key string, data []byte) error
}

// Syncs is the store new sessions use; nil lists every folder with
// FindItem. The default lives in memory for the life of the process;
// DirSyncs keeps it across processes.
var Syncs SyncStore = NewMemorySyncs(64 << 20)

// MaxSyncChanges is how many changes one SyncFolderItems asks for (the
// schema allows 512 at most).
var MaxSyncChanges = 512

// entry is one listed item; Size is -1 until measured, -2 when Exchange
// gives no MIME for it.
type entry struct {
	Date  time.Time `json:"d"`
	Flags []string  `json:"f,omitempty"`
	Size  int64     `json:"s"`
}

type snapshot struct {
	State string           `json:"state"`
	Items map[string]entry `json:"items"`
}

func (s *Source) snapshotKey(folderID string) string {
	h := sha256.Sum256([]byte(strings.ToLower(s.c.url+"|"+s.mailbox) + "|" + folderID))
	return hex.EncodeToString(h[:16])
}

func (s *Source) loadSnapshot(folderID string) *snapshot {
	snap := &snapshot{Items: map[string]entry{}}
	data, err := s.syncs.Load(s.snapshotKey(folderID))
	if err != nil || data == nil {
		return snap
	}
	if err := json.Unmarshal(data, snap); err != nil || snap.Items == nil {
		return &snapshot{Items: map[string]entry{}}
	}
	return snap
}

func (s *Source) saveSnapshot(f mail.Folder, folderID string, snap *snapshot) {
	data, err := json.Marshal(snap)
	if err == nil {
		err = s.syncs.Save(s.snapshotKey(folderID), data)
	}
	if err != nil {
		// Only a cache: not keeping it costs a full listing next time.
		slog.Warn("ews: sync state not kept", "mailbox", s.mailbox, "folder", f.Name, "err", err)
	}
}

func syncBody(folderID, state string, max int) string {
	st := ""
	if state != "" {
		st = "<m:SyncState>" + esc(state) + "</m:SyncState>"
	}
	return fmt.Sprintf(`<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>`+
		`<t:FieldURI FieldURI="item:DateTimeReceived"/><t:FieldURI FieldURI="item:Size"/><t:FieldURI FieldURI="item:IsDraft"/>`+
		`<t:FieldURI FieldURI="item:Categories"/><t:FieldURI FieldURI="message:IsRead"/>`+
		`<t:ExtendedFieldURI PropertyTag="%s" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="%s" PropertyType="Integer"/>`+
		`</t:AdditionalProperties></m:ItemShape><m:SyncFolderId><t:FolderId Id="%s"/></m:SyncFolderId>%s`+
		`<m:MaxChangesReturned>%d</m:MaxChangesReturned></m:SyncFolderItems>`, tagLastVerb, tagFlagStatus, esc(folderID), st, max)
}

type syncChange struct {
	XMLName xml.Name
	ItemID  *idAttr   `xml:"http://schemas.microsoft.com/exchange/services/2006/types ItemId"`
	IsRead  *bool     `xml:"http://schemas.microsoft.com/exchange/services/2006/types IsRead"`
	Items   []itemXML `xml:",any"`
}

type syncAnswer struct {
	Class   string    `xml:"ResponseClass,attr"`
	Code    string    `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ResponseCode"`
	Text    string    `xml:"http://schemas.microsoft.com/exchange/services/2006/messages MessageText"`
	XML     *valueSet `xml:"http://schemas.microsoft.com/exchange/services/2006/messages MessageXml"`
	State   string    `xml:"http://schemas.microsoft.com/exchange/services/2006/messages SyncState"`
	Last    bool      `xml:"http://schemas.microsoft.com/exchange/services/2006/messages IncludesLastItemInRange"`
	Changes struct {
		List []syncChange `xml:",any"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/messages Changes"`
}

type syncResponse struct {
	Messages struct {
		List []syncAnswer `xml:",any"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/messages ResponseMessages"`
}

// listSync lists a folder through SyncFolderItems from the stored state.
func (s *Source) listSync(ctx context.Context, f mail.Folder, folderID string) ([]mail.Message, error) {
	snap := s.loadSnapshot(folderID)
	restarted := false
	storeSize := map[string]int64{}
	for {
		var r syncResponse
		err := s.c.call(ctx, "SyncFolderItems", syncBody(folderID, snap.State, MaxSyncChanges), &r)
		if err == nil && len(r.Messages.List) == 0 {
			err = errors.New("empty answer")
		}
		var a *syncAnswer
		if err == nil {
			a = &r.Messages.List[0]
			err = (&answer{Class: a.Class, Code: a.Code, Text: a.Text, XML: a.XML}).err()
		}
		if c := codeOf(err); c == "ErrorInvalidSyncStateData" && !restarted {
			// Exchange no longer knows the state (a restored database, say): start over.
			snap, restarted = &snapshot{Items: map[string]entry{}}, true
			continue
		}
		if codeOf(err) == "ErrorFolderNotFound" {
			return nil, fmt.Errorf("listing folder %q: %w", f.Name, errGoneFolder(err))
		}
		if err != nil {
			return nil, fmt.Errorf("listing folder %q: %w", f.Name, s.c.classify("SyncFolderItems", err))
		}
		for _, ch := range a.Changes.List {
			switch ch.XMLName.Local {
			case "Create", "Update":
				for _, it := range ch.Items {
					e := entry{Flags: flagsOf(it), Size: -1}
					if old, ok := snap.Items[it.ID.ID]; ok {
						e.Size = old.Size // an item's content does not change, its flags do
					}
					if it.Received != "" {
						t, err := time.Parse(time.RFC3339, it.Received)
						if err != nil {
							return nil, fmt.Errorf("folder %q: item received at %q: %v", f.Name, it.Received, err)
						}
						e.Date = t
					}
					snap.Items[it.ID.ID] = e
					storeSize[it.ID.ID] = it.Size
				}
			case "Delete":
				if ch.ItemID != nil {
					delete(snap.Items, ch.ItemID.ID)
				}
			case "ReadFlagChange":
				if ch.ItemID != nil && ch.IsRead != nil {
					if e, ok := snap.Items[ch.ItemID.ID]; ok {
						e.Flags = withSeen(e.Flags, *ch.IsRead)
						snap.Items[ch.ItemID.ID] = e
					}
				}
			}
		}
		snap.State = a.State
		// Saved page by page: an interrupted listing resumes where it stopped.
		s.saveSnapshot(f, folderID, snap)
		if a.Last {
			break
		}
	}
	var todo []mail.Message
	for id, e := range snap.Items {
		if e.Size == -1 {
			if size, ok := s.sizes[id]; ok {
				e.Size = size
				snap.Items[id] = e
				continue
			}
			todo = append(todo, mail.Message{Key: id})
		}
	}
	if len(todo) > 0 {
		sort.Slice(todo, func(i, j int) bool { return todo[i].Key < todo[j].Key })
		gone, err := s.measure(ctx, todo, storeSize)
		if err != nil {
			return nil, fmt.Errorf("reading the sizes of folder %q: %w", f.Name, err)
		}
		for _, m := range todo {
			if gone[m.Key] {
				delete(snap.Items, m.Key)
				continue
			}
			e := snap.Items[m.Key]
			if e.Size = s.sizes[m.Key]; e.Size < 0 {
				e.Size = -2
			}
			snap.Items[m.Key] = e
		}
		s.saveSnapshot(f, folderID, snap)
	}
	out := make([]mail.Message, 0, len(snap.Items))
	for id, e := range snap.Items {
		s.sizes[id] = e.Size
		out = append(out, mail.Message{Key: id, Date: e.Date, Flags: e.Flags, Size: max(0, e.Size)})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Date.Equal(out[j].Date) {
			return out[i].Date.Before(out[j].Date)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

func withSeen(flags []string, seen bool) []string {
	out := make([]string, 0, len(flags)+1)
	for _, f := range flags {
		if f != `\Seen` {
			out = append(out, f)
		}
	}
	if seen {
		out = append([]string{`\Seen`}, out...)
	}
	return out
}

// MemorySyncs is a SyncStore in memory that forgets everything once it
// holds more than its limit (a full listing rebuilds it).
type MemorySyncs struct {
	mu   sync.Mutex
	max  int
	size int
	m    map[string][]byte
}

// NewMemorySyncs keeps up to max bytes.
func NewMemorySyncs(max int) *MemorySyncs { return &MemorySyncs{max: max, m: map[string][]byte{}} }

func (m *MemorySyncs) Load(key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[key], nil
}

func (m *MemorySyncs) Save(key string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.size += len(data) - len(m.m[key])
	m.m[key] = data
	if m.size > m.max {
		m.m, m.size = map[string][]byte{key: data}, len(data)
	}
	return nil
}

// DirSyncs keeps the store in files under dir (beside the state file), so
// that a re-run in a new process lists only what changed.
func DirSyncs(dir string) SyncStore { return dirSyncs(dir) }

type dirSyncs string

func (d dirSyncs) Load(key string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(string(d), key+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

func (d dirSyncs) Save(key string, data []byte) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(string(d), key+".*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(string(d), key+".json"))
}
