package graph

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// DeltaStore keeps, per folder, the last listing (keys, flags, dates, exact
// sizes) and the delta link that continues it, so that the next listing asks
// Graph only for what changed and measures only new messages. What it holds
// is a cache of the source, never the engine's record of what was copied:
// losing it costs one full listing, nothing else.
type DeltaStore interface {
	// Load returns what Save stored under key, or nil when there is nothing.
	Load(key string) ([]byte, error)
	Save(key string, data []byte) error
}

// Deltas is the store new sessions use; nil lists every folder in full,
// paged in ascending received time. The default lives in memory for the
// life of the process (account retries and re-runs under `banjia serve`);
// DirDeltas keeps it across processes.
var Deltas DeltaStore = NewMemoryDeltas(64 << 20)

// snapshot is a folder as the last listing left it.
type snapshot struct {
	Link     string           `json:"link"`
	Messages map[string]entry `json:"messages"`
}

func (s *Source) snapshotKey(folderID string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.Join([]string{s.c.cloud.host, s.c.e.Tenant, s.id}, "|")) + "|" + folderID))
	return hex.EncodeToString(h[:16])
}

func (s *Source) loadSnapshot(folderID string) (*snapshot, error) {
	data, err := s.deltas.Load(s.snapshotKey(folderID))
	if err != nil || data == nil {
		return nil, err
	}
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, err
	}
	if snap.Messages == nil {
		snap.Messages = map[string]entry{}
	}
	return &snap, nil
}

func (s *Source) saveSnapshot(folderID string, snap *snapshot) error {
	data, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	return s.deltas.Save(s.snapshotKey(folderID), data)
}

// MemoryDeltas is a DeltaStore in memory that forgets the least recently
// used folders beyond a total size.
type MemoryDeltas struct {
	mu    sync.Mutex
	max   int
	size  int
	order *list.List // of *memEntry, most recent first
	byKey map[string]*list.Element
}

type memEntry struct {
	key  string
	data []byte
}

// NewMemoryDeltas keeps up to maxBytes of listings.
func NewMemoryDeltas(maxBytes int) *MemoryDeltas {
	return &MemoryDeltas{max: maxBytes, order: list.New(), byKey: map[string]*list.Element{}}
}

// Load implements DeltaStore.
func (m *MemoryDeltas) Load(key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.byKey[key]
	if !ok {
		return nil, nil
	}
	m.order.MoveToFront(el)
	return el.Value.(*memEntry).data, nil
}

// Save implements DeltaStore.
func (m *MemoryDeltas) Save(key string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.byKey[key]; ok {
		m.size -= len(el.Value.(*memEntry).data)
		m.order.Remove(el)
		delete(m.byKey, key)
	}
	if len(data) > m.max {
		return nil
	}
	m.byKey[key] = m.order.PushFront(&memEntry{key: key, data: data})
	m.size += len(data)
	for m.size > m.max {
		el := m.order.Back()
		e := el.Value.(*memEntry)
		m.size -= len(e.data)
		m.order.Remove(el)
		delete(m.byKey, e.key)
	}
	return nil
}

// DirDeltas is a DeltaStore of files in a directory (one per folder,
// replaced atomically).
type DirDeltas string

// Load implements DeltaStore.
func (d DirDeltas) Load(key string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(string(d), key+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// Save implements DeltaStore.
func (d DirDeltas) Save(key string, data []byte) error {
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
