package sinks

import (
	"fmt"
	"sort"
	"strings"

	"github.com/banjia-mail/banjia/sources"
)

// wellKnown maps lower-cased top-level folder names that clients create
// without SPECIAL-USE attributes to their role. Chinese names are the ones
// Exmail, QQ, 163/126, Sina and Aliyun use.
var wellKnown = map[string]string{
	"sent": sources.SpecialSent, "sent items": sources.SpecialSent, "sent messages": sources.SpecialSent,
	"sent mail": sources.SpecialSent, "sent-mail": sources.SpecialSent, "已发送": sources.SpecialSent,
	"已发送邮件": sources.SpecialSent, "已发邮件": sources.SpecialSent,
	"drafts": sources.SpecialDrafts, "draft": sources.SpecialDrafts, "草稿箱": sources.SpecialDrafts, "草稿": sources.SpecialDrafts,
	"trash": sources.SpecialTrash, "deleted items": sources.SpecialTrash, "deleted messages": sources.SpecialTrash,
	"deleted": sources.SpecialTrash, "bin": sources.SpecialTrash, "已删除": sources.SpecialTrash, "已删除邮件": sources.SpecialTrash,
	"junk": sources.SpecialJunk, "spam": sources.SpecialJunk, "junk e-mail": sources.SpecialJunk, "junk email": sources.SpecialJunk,
	"junk mail": sources.SpecialJunk, "bulk mail": sources.SpecialJunk, "垃圾箱": sources.SpecialJunk, "垃圾邮件": sources.SpecialJunk,
	"archive": sources.SpecialArchive, "archives": sources.SpecialArchive, "归档": sources.SpecialArchive,
}

// DefaultSpecialNames are created on the target when it has no folder for a role.
var DefaultSpecialNames = map[string]string{
	sources.SpecialSent: "Sent", sources.SpecialDrafts: "Drafts", sources.SpecialTrash: "Trash",
	sources.SpecialJunk: "Junk", sources.SpecialArchive: "Archive",
}

// Role is a folder's special use: its attribute, else its well-known name.
func Role(f sources.Folder) string {
	if f.SpecialUse != "" {
		return f.SpecialUse
	}
	top := f.Name
	if f.Delim != 0 {
		top, _, _ = strings.Cut(f.Name, string(f.Delim))
	}
	return wellKnown[strings.ToLower(strings.TrimSpace(top))]
}

// MapFolders decides the target name of every source folder: INBOX stays
// INBOX, special folders land in the target's folder of the same role (so
// "Sent Items" and "已发送" both become the target's Sent), the hierarchy
// delimiter is translated, a delimiter character inside a name becomes "_",
// and two different source folders that would land on the same ordinary
// target name are kept apart with a " (2)" suffix. specials maps roles to the
// target's existing folders (may be nil); renames maps source names to target
// names chosen by the admin and wins over everything else.
func MapFolders(src []sources.Folder, delim rune, specials map[string]string, renames map[string]string) map[string]string {
	if delim == 0 {
		delim = '/'
	}
	type plan struct {
		f       sources.Folder
		name    string
		merge   bool
		changed bool
	}
	plans := make([]plan, 0, len(src))
	for _, f := range src {
		if r, ok := renames[f.Name]; ok && r != "" {
			plans = append(plans, plan{f: f, name: r, merge: true})
			continue
		}
		name, merge := targetName(f, delim, specials)
		plain := strings.Join(splitName(f), string(delim))
		plans = append(plans, plan{f: f, name: name, merge: merge, changed: name != plain})
	}
	// INBOX and special folders first, then names that needed no change, so
	// a translated name yields to a folder that really has that name.
	sort.SliceStable(plans, func(i, j int) bool {
		ri, rj := rank(plans[i].f), rank(plans[j].f)
		if ri != rj {
			return ri < rj
		}
		if plans[i].changed != plans[j].changed {
			return !plans[i].changed
		}
		return plans[i].f.Name < plans[j].f.Name
	})
	out := make(map[string]string, len(src))
	taken := map[string]string{} // target name -> source name that took it
	for _, p := range plans {
		name := p.name
		if prev, ok := taken[name]; ok && prev != p.f.Name && !p.merge {
			for n := 2; ; n++ {
				suffix := fmt.Sprintf(" (%d)", n)
				if strings.ContainsRune(suffix, delim) {
					suffix = clean(suffix, delim)
				}
				cand := name + suffix
				if _, ok := taken[cand]; !ok {
					name = cand
					break
				}
			}
		}
		taken[name] = p.f.Name
		out[p.f.Name] = name
	}
	return out
}

// targetName is a folder's name on the target before clashes are resolved,
// and whether it may share that name with others (INBOX, special folders).
func targetName(f sources.Folder, delim rune, specials map[string]string) (string, bool) {
	segs := splitName(f)
	role := Role(f)
	var base []string
	merge := false
	switch {
	case strings.EqualFold(segs[0], "INBOX"):
		base = []string{"INBOX"}
		merge = len(segs) == 1
	case role != "" && role != sources.SpecialAll && role != sources.SpecialFlagged:
		name := specials[role]
		if name == "" {
			name = DefaultSpecialNames[role]
		}
		base = strings.Split(name, string(delim))
		merge = len(segs) == 1 || f.SpecialUse != ""
		if f.SpecialUse != "" {
			// The whole name is the special folder (e.g. "[Gmail]/Sent Mail").
			segs = segs[:1]
		}
	default:
		base = []string{clean(segs[0], delim)}
	}
	parts := append([]string(nil), base...)
	for _, s := range segs[1:] {
		parts = append(parts, clean(s, delim))
	}
	return strings.Join(parts, string(delim)), merge
}

func rank(f sources.Folder) int {
	switch {
	case strings.EqualFold(f.Name, "INBOX"):
		return 0
	case f.SpecialUse != "":
		return 1
	case Role(f) != "":
		return 2
	}
	return 3
}

func splitName(f sources.Folder) []string {
	var segs []string
	if f.Delim == 0 {
		segs = []string{f.Name}
	} else {
		segs = strings.Split(f.Name, string(f.Delim))
	}
	out := segs[:0]
	for _, s := range segs {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return []string{"unnamed"}
	}
	return out
}

// clean makes one level of a name safe for the target: no delimiter inside
// it, no characters IMAP servers refuse in names.
func clean(seg string, delim rune) string {
	sub := '_'
	if delim == '_' {
		sub = '-'
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == delim:
			return sub
		case r < 0x20 || r == 0x7f || r == '*' || r == '%':
			return sub
		}
		return r
	}, seg)
}
