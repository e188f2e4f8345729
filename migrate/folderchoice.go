package migrate

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/state"
)

// The admin's folder choices (state.Options.Renames and Excludes), as the
// CLI's --rename and --exclude, the new-job form and the API give them.
// Folder names are written with '/' between levels whatever the servers'
// delimiters are ("Archive/2019"); the source's own spelling works too.
// They are fixed when the job is created, so every run of the job (the
// first, a re-run, a retry, a sync, a verification) maps and leaves out the
// same folders.

// maxFolderChoices bounds how many renames or excludes a job takes.
const maxFolderChoices = 200

// ParseRename reads one rename, "OLD=NEW".
func ParseRename(s string) (old, new string, err error) {
	old, new, ok := strings.Cut(s, "=")
	old, new = strings.TrimSpace(old), strings.TrimSpace(new)
	if !ok || old == "" || new == "" {
		return "", "", fmt.Errorf("rename %q: want OLD=NEW, e.g. 'Sent Items=Sent' or 'Archive/2019=Old/2019'", s)
	}
	return old, new, nil
}

// ParseRenames reads renames, "OLD=NEW" each, into the job's map.
func ParseRenames(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, s := range list {
		if strings.TrimSpace(s) == "" {
			continue
		}
		old, new, err := ParseRename(s)
		if err != nil {
			return nil, err
		}
		if prev, ok := out[old]; ok && prev != new {
			return nil, fmt.Errorf("folder %q is renamed twice (to %q and %q)", old, prev, new)
		}
		out[old] = new
	}
	return out, nil
}

// CheckFolderChoices says why a job's renames or excludes are refused.
func CheckFolderChoices(o state.Options) error {
	if len(o.Renames) > maxFolderChoices || len(o.Excludes) > maxFolderChoices {
		return fmt.Errorf("at most %d renames and %d excludes", maxFolderChoices, maxFolderChoices)
	}
	for old, new := range o.Renames {
		for _, n := range []string{old, new} {
			if err := checkFolderName(n); err != nil {
				return fmt.Errorf("rename %q=%q: %w", old, new, err)
			}
		}
		for _, p := range o.Excludes {
			if FolderExcluded(mail.Folder{Name: old, Delim: '/'}, []string{p}) {
				return fmt.Errorf("folder %q is both renamed and left out (--exclude %q): choose one", old, p)
			}
		}
	}
	for _, p := range o.Excludes {
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("exclude: an empty pattern; want a folder name or a pattern such as 'Archive*'")
		}
		if err := checkFolderName(p); err != nil {
			return fmt.Errorf("exclude %q: %w", p, err)
		}
	}
	return nil
}

func checkFolderName(n string) error {
	if len(n) > 512 {
		return fmt.Errorf("a folder name of %d bytes; at most 512", len(n))
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return fmt.Errorf("a control character in a folder name")
		}
	}
	if strings.HasPrefix(n, "/") || strings.HasSuffix(n, "/") || strings.Contains(n, "//") {
		return fmt.Errorf("an empty level in %q ('/' separates levels, as in Archive/2019)", n)
	}
	return nil
}

// FolderExcluded reports whether a source folder matches one of the
// patterns: '*' matches any run of characters (levels too: 'Archive*'
// leaves out Archive and Archive/2019), '?' one character, '/' the
// folder's delimiter; letters match in either case.
func FolderExcluded(f mail.Folder, patterns []string) bool {
	if len(patterns) == 0 {
		return false
	}
	name := slashed(f)
	for _, p := range patterns {
		re := globRegexp(p)
		if re.MatchString(name) || re.MatchString(f.Name) {
			return true
		}
	}
	return false
}

// slashed is a folder's name with '/' between its levels.
func slashed(f mail.Folder) string {
	if f.Delim == 0 || f.Delim == '/' {
		return f.Name
	}
	return strings.ReplaceAll(f.Name, string(f.Delim), "/")
}

func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// targetRenames turns the admin's renames into what sinks.MapFolders
// takes: keyed by the source folders' own names, the new names with the
// target's delimiter between levels.
func targetRenames(folders []mail.Folder, renames map[string]string, ns sinks.Namespace) map[string]string {
	if len(renames) == 0 {
		return nil
	}
	delim := ns.Delim
	if delim == 0 {
		delim = '/'
	}
	out := map[string]string{}
	for _, f := range folders {
		new, ok := renames[f.Name]
		if !ok {
			new, ok = renames[slashed(f)]
		}
		if !ok {
			continue
		}
		out[f.Name] = strings.ReplaceAll(new, "/", string(delim))
	}
	return out
}
