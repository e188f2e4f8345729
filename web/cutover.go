package web

import (
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// cutoverOut is a job's cutover phase in the API (docs/cutover.md). Sync
// and close are operations like pause (POST /api/jobs/{id}/sync, /close,
// and the dashboard's buttons): Manager.Control carries them out.
type cutoverOut struct {
	Phase     string     `json:"phase"` // first_pass, synced or closed
	PhaseText string     `json:"phase_text"`
	Synced    *time.Time `json:"synced,omitempty"`
	Syncs     int        `json:"syncs"`
	Closed    *time.Time `json:"closed,omitempty"`
	// KeepCredentials is how long passwords are kept at most ("14d").
	KeepCredentials string `json:"keep_credentials"`
}

func cutoverJSON(lang string, j *state.Job) cutoverOut {
	out := cutoverOut{Phase: j.Phase(), PhaseText: j.PhaseText(lang), Syncs: j.Syncs, KeepCredentials: migrate.FormatKeep(j.Keep())}
	if !j.Synced.IsZero() {
		t := j.Synced
		out.Synced = &t
	}
	if !j.Closed.IsZero() {
		t := j.Closed
		out.Closed = &t
	}
	return out
}
