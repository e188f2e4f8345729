package graph

import (
	"encoding/json"
	"time"
)

// KnownFor is how long a mailbox's well-known and system folder ids, and
// whether it has an online archive, are taken from the DeltaStore instead
// of asked again. The ids of Exchange's default folders do not change; a
// folder that did not exist (an archive folder, Scheduled) may appear, and
// an online archive may be enabled, which a re-read after KnownFor sees.
// A sync pass then costs the folder tree's levels and one delta link per
// folder, not the dozen lookups of the first run.
var KnownFor = 24 * time.Hour

// knownFolders is what readTree learnt beside the tree itself.
type knownFolders struct {
	At      time.Time         `json:"at"`
	IDs     map[string]string `json:"ids"` // well-known or system name -> folder id
	Archive bool              `json:"archive"`
}

// knownKey is not a Graph folder id, so never a folder snapshot's key.
const knownKey = "\x00known-folders"

func (s *Source) loadKnown() *knownFolders {
	if s.deltas == nil {
		return nil
	}
	data, err := s.deltas.Load(s.snapshotKey(knownKey))
	if err != nil || data == nil {
		return nil
	}
	var k knownFolders
	if json.Unmarshal(data, &k) != nil || k.IDs["inbox"] == "" || time.Since(k.At) > KnownFor || k.At.After(time.Now()) {
		return nil
	}
	return &k
}

func (s *Source) saveKnown(k *knownFolders) {
	if s.deltas == nil {
		return
	}
	data, err := json.Marshal(k)
	if err == nil {
		err = s.deltas.Save(s.snapshotKey(knownKey), data)
	}
	_ = err // only a cache: not keeping it costs the lookups next time
}
