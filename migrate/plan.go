package migrate

import (
	"context"
	"strings"

	"github.com/banjia-mail/banjia/mail"
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
	fm, err := mapFolders(ctx, src, dst, opts.Renames)
	if err != nil {
		return nil, err
	}
	ar := &accountRun{job: &state.Job{Options: opts}}
	out := make([]FolderPlan, 0, len(fm.folders))
	for _, f := range fm.folders {
		target := fm.names[f.Name]
		_, exists := fm.onTarget[target]
		out = append(out, FolderPlan{Source: f.Name, Target: target, Messages: f.Messages,
			Exists: exists || strings.EqualFold(target, "INBOX"), Skipped: ar.skipFolder(f)})
	}
	return out, nil
}

// folderMap is an account's folders on both sides and where each source
// folder goes, as a run, a verification and a check all see them.
type folderMap struct {
	folders  []mail.Folder          // the source's
	names    map[string]string      // source name -> target name
	onTarget map[string]mail.Folder // the target's, with their status
}

// mapFolders lists both sides (the target once, with its status: where its
// special folders are, and what a re-run checks its records against) and
// maps the source's folders into the target's namespace.
func mapFolders(ctx context.Context, src sources.Source, dst sinks.Sink, renames map[string]string) (folderMap, error) {
	folders, err := src.Folders(ctx)
	if err != nil {
		return folderMap{}, err
	}
	list, err := dst.Folders(ctx)
	if err != nil {
		return folderMap{}, err
	}
	ns := dst.Namespace()
	fm := folderMap{folders: folders, names: sinks.MapFolders(folders, ns, sinks.Specials(list, ns), targetRenames(folders, renames, ns)),
		onTarget: make(map[string]mail.Folder, len(list))}
	for _, f := range list {
		fm.onTarget[f.Name] = f
	}
	return fm, nil
}
