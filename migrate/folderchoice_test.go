package migrate

import (
	"testing"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/state"
)

func TestFolderExcluded(t *testing.T) {
	cases := []struct {
		name    string
		delim   rune
		pattern string
		want    bool
	}{
		{"Junk", '/', "Junk", true},
		{"junk", '/', "Junk", true},
		{"Junk Mail", '/', "Junk", false},
		{"Archive", '/', "Archive*", true},
		{"Archive/2019", '/', "Archive*", true},
		{"Archive.2019", '.', "Archive/2019", true},
		{"Archive.2019", '.', "Archive/*", true},
		{"Archives", '.', "Archive/*", false},
		{"项目/2024/报告", '/', "项目*", true},
		{"Spam1", '/', "Spam?", true},
		{"Spam12", '/', "Spam?", false},
		{"a+b (1)", '/', "a+b (1)", true},
		{"a+b (1)", '/', "a+b ?1?", true},
		{"INBOX", '/', "*", true},
	}
	for _, c := range cases {
		if got := FolderExcluded(mail.Folder{Name: c.name, Delim: c.delim}, []string{c.pattern}); got != c.want {
			t.Errorf("%q (delimiter %q) against %q: %v, want %v", c.name, c.delim, c.pattern, got, c.want)
		}
	}
}

func TestRenamesReachTheTargetNamespace(t *testing.T) {
	src := []mail.Folder{{Name: "INBOX", Delim: '/'}, {Name: "Archive/2019", Delim: '/'}, {Name: "客户/北京", Delim: '/'}, {Name: "Sent Items", Delim: '/'}}
	renames, err := ParseRenames([]string{"Archive/2019=Old/2019", " 客户/北京 = Clients/Beijing ", "Sent Items=Sent Items"})
	if err != nil {
		t.Fatal(err)
	}
	// Courier: INBOX. prefix, '.' between levels.
	ns := sinks.Namespace{Prefix: "INBOX.", Delim: '.'}
	names := sinks.MapFolders(src, ns, nil, targetRenames(src, renames, ns))
	for from, want := range map[string]string{"Archive/2019": "INBOX.Old.2019", "客户/北京": "INBOX.Clients.Beijing", "Sent Items": "INBOX.Sent Items", "INBOX": "INBOX"} {
		if names[from] != want {
			t.Errorf("%s -> %q, want %q", from, names[from], want)
		}
	}
}

func TestFolderChoicesRefused(t *testing.T) {
	for _, c := range []struct {
		renames  []string
		excludes []string
	}{
		{renames: []string{"NoEquals"}},
		{renames: []string{"=New"}},
		{renames: []string{"A=B", "A=C"}},
		{renames: []string{"A=/B"}},
		{renames: []string{"A=B//C"}},
		{renames: []string{"A=B\x07"}},
		{renames: []string{"Junk=Spam"}, excludes: []string{"J*"}},
		{excludes: []string{" "}},
	} {
		o := state.Options{Excludes: c.excludes}
		r, err := ParseRenames(c.renames)
		if err == nil {
			o.Renames = r
			err = CheckFolderChoices(o)
		}
		if err == nil {
			t.Errorf("renames %q, excludes %q: no error", c.renames, c.excludes)
		}
	}
}
