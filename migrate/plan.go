package migrate

import (
	"context"
	"strings"

	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
)

// FolderPlan is where one source folder will go, as `banjia check` shows it
// before anything is copied.
type FolderPlan struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	Messages uint32 `json:"messages"`
	// Exists says the target folder is there already (INBOX, the target's
	// own special folders, a folder of an earlier run).
	Exists bool `json:"exists"`
	// Skipped says the job's options leave the folder behind.
	Skipped bool `json:"skipped,omitempty"`
}

// PlanFolders is the folder map an account will get: the same map a run
// makes (namespaces, special folders, clashes, the admin's renames). A name
// the target refuses is only found out when the folder is created.
func PlanFolders(ctx context.Context, src sources.Source, dst sinks.Sink, opts state.Options) ([]FolderPlan, error) {
	folders, err := src.Folders(ctx)
	if err != nil {
		return nil, err
	}
	list, err := dst.Folders(ctx)
	if err != nil {
		return nil, err
	}
	ns := dst.Namespace()
	names := sinks.MapFolders(folders, ns, sinks.Specials(list, ns), opts.Renames)
	have := map[string]bool{}
	for _, f := range list {
		have[f.Name] = true
	}
	ar := &accountRun{job: &state.Job{Options: opts}}
	out := make([]FolderPlan, 0, len(folders))
	for _, f := range folders {
		out = append(out, FolderPlan{Source: f.Name, Target: names[f.Name], Messages: f.Messages,
			Exists: have[names[f.Name]] || strings.EqualFold(names[f.Name], "INBOX"), Skipped: ar.skipFolder(f)})
	}
	return out, nil
}
