package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/banjia-mail/banjia/mail"
)

// emptyFor is how long a folder the tree's listing found empty is taken as
// empty by Messages without asking.
const emptyFor = time.Minute

// Folders lists every mail folder, hidden ones too, as "/"-joined paths.
// Search folders are left out (their messages live in other folders);
// systemFolders are marked. The first call after Open returns the tree Open
// read; later calls read it again.
func (s *Source) Folders(ctx context.Context) ([]mail.Folder, error) {
	if s.listed != nil {
		out := s.listed
		s.listed = nil
		return out, nil
	}
	return s.readTree(ctx)
}

func (s *Source) path(rest string) string { return "/users/" + url.PathEscape(s.id) + rest }

func childrenQuery() string {
	return fmt.Sprintf("?includeHiddenFolders=true&$top=%d&$select=%s", PageSize, strings.Join(folderFields, ","))
}

// readTree reads the folder tree: the well-known folders (to find INBOX,
// the special folders and the system folders, which Graph v1.0 names only
// when asked for by name) and the top level in one $batch, then each
// deeper level in one more (Graph has no recursive listing). The inbox's
// answer is the check that the mailbox can be read.
func (s *Source) readTree(ctx context.Context) ([]mail.Folder, error) {
	known := s.loadKnown()
	out, err := s.readTreeWith(ctx, known)
	if err == errKnownStale {
		return s.readTreeWith(ctx, nil)
	}
	return out, err
}

// errKnownStale: the cached well-known ids do not match the tree.
var errKnownStale = errors.New("the mailbox's known folders changed")

// readTreeWith reads the tree, asking Graph for the well-known and system
// folders' ids unless known has them.
func (s *Source) readTreeWith(ctx context.Context, known *knownFolders) ([]mail.Folder, error) {
	var names []string
	if known == nil {
		for _, wk := range wellKnown {
			names = append(names, wk.name)
		}
		for _, sf := range systemFolders {
			names = append(names, sf.name)
		}
	}
	paths := make([]string, 0, len(names)+1)
	for _, n := range names {
		paths = append(paths, s.path("/mailFolders/"+n+"?$select=id"))
	}
	paths = append(paths, s.path("/mailFolders"+childrenQuery()))
	answers, err := s.c.batch(ctx, paths)
	if err != nil {
		return nil, s.fail("listing folders", err)
	}
	ids := map[string]string{} // well-known or system name -> folder id
	for i, name := range names {
		a := &answers[i]
		if !a.ok() {
			ae := a.apiError()
			switch {
			case name == "inbox":
				return nil, s.fail("opening the mailbox", ae)
			case ae.Status == http.StatusNotFound || (ae.Status == http.StatusBadRequest && i >= len(wellKnown)):
				continue // not in this mailbox (an archive folder, say), or a name this service does not know
			}
			return nil, s.fail("looking up the "+name+" folder", ae)
		}
		f, err := parse[models.MailFolderable](a, models.CreateMailFolderFromDiscriminatorValue)
		if err != nil {
			return nil, s.fail("looking up the "+name+" folder", err)
		}
		ids[name] = deref(f.GetId())
	}
	if known != nil {
		ids = known.IDs
	}
	system := map[string]string{} // folder id -> why it is a system folder
	role := map[string]int{}      // folder id -> index in wellKnown, plus one
	for i, wk := range wellKnown {
		if id := ids[wk.name]; id != "" {
			role[id] = i + 1
		}
	}
	for _, sf := range systemFolders {
		if id := ids[sf.name]; id != "" {
			system[id] = sf.why
		}
	}
	top, err := s.folderPages(ctx, &answers[len(names)])
	if err != nil {
		return nil, s.fail("listing folders", err)
	}

	type node struct{ path, id, system string }
	var out []mail.Folder
	folders := map[string]string{}
	empty := map[string]bool{}
	level := []node{{}}
	children := map[string][]models.MailFolderable{"": top}
	for len(level) > 0 {
		var next []node
		for _, n := range level {
			for _, f := range children[n.id] {
				if strings.EqualFold(deref(f.GetOdataType()), "#microsoft.graph.mailSearchFolder") {
					continue
				}
				id := deref(f.GetId())
				why := n.system // below a system folder
				if w, ok := system[id]; ok {
					why = w
				}
				name := folderName(deref(f.GetDisplayName()))
				r := role[id]
				if n.path == "" && r == 1 {
					name = "INBOX"
				}
				if n.path != "" {
					name = n.path + "/" + name
				}
				if _, dup := folders[name]; dup {
					name += " (" + id[max(0, len(id)-6):] + ")"
				}
				sf := mail.Folder{Name: name, Delim: '/', Validity: validity(id), System: why}
				if r > 0 {
					sf.SpecialUse = wellKnown[r-1].special
				}
				if t := f.GetTotalItemCount(); t != nil && *t > 0 {
					sf.Messages = uint32(*t)
				} else if t != nil {
					empty[name] = true
				}
				out = append(out, sf)
				folders[name] = id
				if c := f.GetChildFolderCount(); c != nil && *c > 0 {
					next = append(next, node{name, id, why})
				}
			}
		}
		if len(next) == 0 {
			break
		}
		paths := make([]string, len(next))
		for i, n := range next {
			paths[i] = s.path("/mailFolders/" + url.PathEscape(n.id) + "/childFolders" + childrenQuery())
		}
		answers, err := s.c.batch(ctx, paths)
		if err != nil {
			return nil, s.fail("listing folders", err)
		}
		children = map[string][]models.MailFolderable{}
		for i, n := range next {
			if children[n.id], err = s.folderPages(ctx, &answers[i]); err != nil {
				return nil, s.fail("listing folders", err)
			}
		}
		level = next
	}
	if known != nil && folders["INBOX"] != known.IDs["inbox"] {
		return nil, errKnownStale
	}
	archive := false
	if known != nil {
		archive = known.Archive
	} else {
		var sure bool
		if archive, sure = s.hasArchive(ctx); sure {
			s.saveKnown(&knownFolders{At: time.Now(), IDs: ids, Archive: archive})
		}
	}
	if archive {
		out = append(out, archiveFolder())
		folders[ArchiveFolder] = archiveID
	}
	s.folders, s.empty, s.listedAt = folders, empty, time.Now()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// folderPages reads one level's listing from its first page (a batch
// answer), following its next links.
func (s *Source) folderPages(ctx context.Context, a *batchAnswer) ([]models.MailFolderable, error) {
	if !a.ok() {
		return nil, a.apiError()
	}
	page, err := parse[models.MailFolderCollectionResponseable](a, models.CreateMailFolderCollectionResponseFromDiscriminatorValue)
	var out []models.MailFolderable
	for {
		if err != nil {
			return nil, err
		}
		out = append(out, page.GetValue()...)
		next := deref(page.GetOdataNextLink())
		if next == "" {
			return out, nil
		}
		page, err = s.user().MailFolders().WithUrl(next).Get(ctx, nil)
	}
}
