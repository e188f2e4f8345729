package sinks

import (
	"fmt"
	"sort"
	"strings"

	"github.com/banjia-mail/banjia/mail"
)

// wellKnown maps lower-cased top-level folder names that clients create
// without SPECIAL-USE attributes to their role. Chinese names are the ones
// Exmail, QQ, 163/126, Sina and Aliyun use.
var wellKnown = map[string]string{
	"sent": mail.SpecialSent, "sent items": mail.SpecialSent, "sent messages": mail.SpecialSent,
	"sent mail": mail.SpecialSent, "sent-mail": mail.SpecialSent, "已发送": mail.SpecialSent,
	"已发送邮件": mail.SpecialSent, "已发邮件": mail.SpecialSent,
	"drafts": mail.SpecialDrafts, "draft": mail.SpecialDrafts, "草稿箱": mail.SpecialDrafts, "草稿": mail.SpecialDrafts,
	"trash": mail.SpecialTrash, "deleted items": mail.SpecialTrash, "deleted messages": mail.SpecialTrash,
	"deleted": mail.SpecialTrash, "bin": mail.SpecialTrash, "已删除": mail.SpecialTrash, "已删除邮件": mail.SpecialTrash,
	"junk": mail.SpecialJunk, "spam": mail.SpecialJunk, "junk e-mail": mail.SpecialJunk, "junk email": mail.SpecialJunk,
	"junk mail": mail.SpecialJunk, "bulk mail": mail.SpecialJunk, "垃圾箱": mail.SpecialJunk, "垃圾邮件": mail.SpecialJunk,
	"archive": mail.SpecialArchive, "archives": mail.SpecialArchive, "归档": mail.SpecialArchive,
}

// DefaultSpecialNames are created on the target when it has no folder for a role.
var DefaultSpecialNames = map[string]string{
	mail.SpecialSent: "Sent", mail.SpecialDrafts: "Drafts", mail.SpecialTrash: "Trash",
	mail.SpecialJunk: "Junk", mail.SpecialArchive: "Archive",
}

// Role is a folder's special use: its attribute, else its well-known name.
func Role(f mail.Folder) string {
	if f.SpecialUse != "" {
		return f.SpecialUse
	}
	return wellKnown[strings.ToLower(strings.TrimSpace(splitName(f)[0]))]
}

// Namespace is where a mailbox's own folders live (RFC 2342): the personal
// namespace's prefix ("" on Dovecot, "INBOX." on Courier and on Cyrus
// without altnamespace) and its hierarchy delimiter.
type Namespace struct {
	Prefix string
	Delim  rune
}

// MapFolders decides the target name of every source folder: INBOX stays
// INBOX, special folders land in the target's folder of the same role (so
// "Sent Items" and "已发送" both become the target's Sent), names are read
// relative to the source's personal namespace and written under the
// target's, the hierarchy delimiter is translated, a delimiter character
// inside a name becomes "_", and two different source folders that would
// land on the same ordinary target name are kept apart with a " (2)"
// suffix. Every other character is kept: a name the target refuses is
// changed only then (SafeName). specials maps roles to the target's
// existing folders, full names (may be nil); renames maps source names to
// target names chosen by the admin, relative to the target's namespace,
// and wins over everything else.
func MapFolders(src []mail.Folder, ns Namespace, specials map[string]string, renames map[string]string) map[string]string {
	if ns.Delim == 0 {
		ns.Delim = '/'
	}
	type plan struct {
		f       mail.Folder
		name    string
		merge   bool
		changed bool
	}
	plans := make([]plan, 0, len(src))
	for _, f := range src {
		if r, ok := renames[f.Name]; ok && r != "" {
			plans = append(plans, plan{f: f, name: ns.full(r), merge: true})
			continue
		}
		name, merge := targetName(f, ns, specials)
		plain := ns.full(strings.Join(splitName(f), string(ns.Delim)))
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
				if strings.ContainsRune(suffix, ns.Delim) {
					suffix = clean(suffix, ns.Delim)
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

// full puts a name relative to the namespace under its prefix; INBOX and
// its children are INBOX's on every server.
func (ns Namespace) full(rel string) string {
	first, _, _ := strings.Cut(rel, string(ns.Delim))
	if ns.Prefix == "" || strings.EqualFold(first, "INBOX") || hasPrefixFold(rel, ns.Prefix) {
		return rel
	}
	return ns.Prefix + rel
}

// Rel is a full name of the namespace without its prefix.
func (ns Namespace) Rel(name string) string {
	if ns.Prefix != "" && hasPrefixFold(name, ns.Prefix) && len(name) > len(ns.Prefix) {
		return name[len(ns.Prefix):]
	}
	return name
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// targetName is a folder's full name on the target before clashes are
// resolved, and whether it may share that name with others (INBOX, special
// folders).
func targetName(f mail.Folder, ns Namespace, specials map[string]string) (string, bool) {
	delim := ns.Delim
	segs := splitName(f)
	role := Role(f)
	var base string
	merge := false
	switch {
	case strings.EqualFold(segs[0], "INBOX"):
		base = "INBOX"
		merge = len(segs) == 1
	case role != "" && role != mail.SpecialAll && role != mail.SpecialFlagged:
		base = specials[role]
		if base == "" {
			base = ns.full(DefaultSpecialNames[role])
		}
		merge = len(segs) == 1 || f.SpecialUse != ""
		if f.SpecialUse != "" {
			// The whole name is the special folder (e.g. "[Gmail]/Sent Mail").
			segs = segs[:1]
		}
	default:
		base = ns.full(clean(segs[0], delim))
	}
	parts := []string{base}
	for _, s := range segs[1:] {
		parts = append(parts, clean(s, delim))
	}
	return strings.Join(parts, string(delim)), merge
}

// SafeName is the name to try when the target refused name: the characters
// IMAP servers commonly refuse in names (list wildcards, controls) become
// "_", in every level but the namespace prefix. It returns name itself
// when there is nothing to change.
func SafeName(name string, ns Namespace) string {
	rel := ns.Rel(name)
	prefix := name[:len(name)-len(rel)]
	segs := strings.Split(rel, string(ns.Delim))
	for i, s := range segs {
		segs[i] = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || r == '*' || r == '%' {
				return '_'
			}
			return r
		}, s)
	}
	return prefix + strings.Join(segs, string(ns.Delim))
}

func rank(f mail.Folder) int {
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

// splitName is the folder's levels below the source's personal namespace.
func splitName(f mail.Folder) []string {
	name := f.Name
	if f.Prefix != "" && hasPrefixFold(name, f.Prefix) && len(name) > len(f.Prefix) {
		name = name[len(f.Prefix):]
	}
	var segs []string
	if f.Delim == 0 {
		segs = []string{name}
	} else {
		segs = strings.Split(name, string(f.Delim))
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

// clean keeps the target's delimiter out of one level of a name (it would
// make a level of its own).
func clean(seg string, delim rune) string {
	sub := '_'
	if delim == '_' {
		sub = '-'
	}
	return strings.Map(func(r rune) rune {
		if r == delim {
			return sub
		}
		return r
	}, seg)
}
