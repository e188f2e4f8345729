package sinks

import (
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/mail"
)

func TestMapFolders(t *testing.T) {
	cases := []struct {
		name     string
		src      []mail.Folder
		delim    rune
		prefix   string
		specials map[string]string
		renames  map[string]string
		want     map[string]string
	}{
		{
			name:  "inbox and ordinary folders, delimiter translated",
			src:   []mail.Folder{{Name: "INBOX", Delim: '.'}, {Name: "Projects.2019", Delim: '.'}, {Name: "客户.北京", Delim: '.'}},
			delim: '/',
			want:  map[string]string{"INBOX": "INBOX", "Projects.2019": "Projects/2019", "客户.北京": "客户/北京"},
		},
		{
			name: "special folders by attribute and by English and Chinese names",
			src: []mail.Folder{
				{Name: "Sent Items", Delim: '/'}, {Name: "已删除", Delim: '/'}, {Name: "草稿箱", Delim: '/'},
				{Name: "Spam", Delim: '/'}, {Name: "[Gmail]/Sent Mail", Delim: '/', SpecialUse: mail.SpecialSent},
				{Name: "Sent Items/2019", Delim: '/'},
			},
			delim:    '.',
			specials: map[string]string{mail.SpecialSent: "Sent Messages", mail.SpecialTrash: "Deleted Messages"},
			want: map[string]string{
				"Sent Items": "Sent Messages", "已删除": "Deleted Messages", "草稿箱": "Drafts", "Spam": "Junk",
				"[Gmail]/Sent Mail": "Sent Messages", "Sent Items/2019": "Sent Messages.2019",
			},
		},
		{
			name:  "delimiter inside a name",
			src:   []mail.Folder{{Name: "a/b.c", Delim: '/'}, {Name: "x.y", Delim: '/'}},
			delim: '.',
			want:  map[string]string{"a/b.c": "a.b_c", "x.y": "x_y"},
		},
		{
			name:  "clash after translation keeps folders apart",
			src:   []mail.Folder{{Name: "a_b", Delim: '/'}, {Name: "a.b", Delim: '/'}},
			delim: '.',
			want:  map[string]string{"a.b": "a_b (2)", "a_b": "a_b"},
		},
		{
			name:    "admin renames win",
			src:     []mail.Folder{{Name: "Old Stuff", Delim: '/'}, {Name: "Sent", Delim: '/'}},
			delim:   '/',
			renames: map[string]string{"Old Stuff": "Archive/Old"},
			want:    map[string]string{"Old Stuff": "Archive/Old", "Sent": "Sent"},
		},
		{
			name:   "into Courier's INBOX. namespace",
			src:    []mail.Folder{{Name: "INBOX", Delim: '/'}, {Name: "Sent", Delim: '/'}, {Name: "Archive/2024", Delim: '/'}, {Name: "INBOX/child", Delim: '/'}, {Name: "客户", Delim: '/'}},
			delim:  '.',
			prefix: "INBOX.",
			want:   map[string]string{"INBOX": "INBOX", "Sent": "INBOX.Sent", "Archive/2024": "INBOX.Archive.2024", "INBOX/child": "INBOX.child", "客户": "INBOX.客户"},
		},
		{
			name:     "a special folder the target already has, under its prefix",
			src:      []mail.Folder{{Name: "Sent Items", Delim: '/'}, {Name: "Sent Items/2019", Delim: '/'}, {Name: "Trash", Delim: '/'}},
			delim:    '.',
			prefix:   "INBOX.",
			specials: map[string]string{mail.SpecialSent: "INBOX.Sent"},
			want:     map[string]string{"Sent Items": "INBOX.Sent", "Sent Items/2019": "INBOX.Sent.2019", "Trash": "INBOX.Trash"},
		},
		{
			name: "from Courier's INBOX. namespace",
			src: []mail.Folder{{Name: "INBOX", Delim: '.'}, {Name: "INBOX.Sent", Delim: '.', Prefix: "INBOX."},
				{Name: "INBOX.Projects.2019", Delim: '.', Prefix: "INBOX."}, {Name: "INBOX.Drafts", Delim: '.', Prefix: "INBOX."}},
			delim: '/',
			want:  map[string]string{"INBOX": "INBOX", "INBOX.Sent": "Sent", "INBOX.Projects.2019": "Projects/2019", "INBOX.Drafts": "Drafts"},
		},
		{
			name:  "names with wildcards are tried as they are",
			src:   []mail.Folder{{Name: "100%", Delim: '/'}, {Name: "a*b/c", Delim: '/'}},
			delim: '/',
			want:  map[string]string{"100%": "100%", "a*b/c": "a*b/c"},
		},
		{
			name:  "no hierarchy on the source",
			src:   []mail.Folder{{Name: "a/b"}},
			delim: '/',
			want:  map[string]string{"a/b": "a_b"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := MapFolders(c.src, Namespace{Prefix: c.prefix, Delim: c.delim}, c.specials, c.renames)
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%q -> %q, want %q", k, got[k], v)
				}
			}
			if len(got) != len(c.src) {
				t.Errorf("mapped %d folders, want %d", len(got), len(c.src))
			}
		})
	}
}

func FuzzMapFolders(f *testing.F) {
	f.Add("INBOX\x00Sent Items\x00a.b", uint8('.'), uint8('/'))
	f.Add("客户/北京\x00x", uint8('/'), uint8('.'))
	f.Fuzz(func(t *testing.T, names string, sd, td uint8) {
		// Targets use punctuation as delimiters; sources may send anything.
		sdelim, tdelim := rune(sd%128), rune("/.\\:|^"[td%6])
		var src []mail.Folder
		seen := map[string]bool{}
		for _, n := range strings.Split(names, "\x00") {
			if n == "" || seen[n] {
				continue
			}
			seen[n] = true
			src = append(src, mail.Folder{Name: n, Delim: sdelim})
		}
		got := MapFolders(src, Namespace{Delim: tdelim}, nil, nil)
		// Two ordinary folders never land on the same target folder.
		back := map[string]string{}
		for _, f := range src {
			name := got[f.Name]
			if name == "" {
				t.Fatalf("%q has no target name", f.Name)
			}
			for _, seg := range strings.Split(name, string(tdelim)) {
				if seg == "" {
					t.Fatalf("%q -> %q has an empty level", f.Name, name)
				}
			}
			if prev, ok := back[name]; ok && rank(f) == 3 && rank(mail.Folder{Name: prev, Delim: sdelim}) == 3 {
				t.Fatalf("%q and %q both map to %q", prev, f.Name, name)
			}
			back[name] = f.Name
		}
	})
}

func TestSafeName(t *testing.T) {
	cases := []struct {
		name string
		ns   Namespace
		want string
	}{
		{"100%", Namespace{Delim: '/'}, "100_"},
		{"INBOX.a*b.c%", Namespace{Prefix: "INBOX.", Delim: '.'}, "INBOX.a_b.c_"},
		{"plain/name", Namespace{Delim: '/'}, "plain/name"},
		{"tab\there", Namespace{Delim: '/'}, "tab_here"},
	}
	for _, c := range cases {
		if got := SafeName(c.name, c.ns); got != c.want {
			t.Errorf("SafeName(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSpecialsByWellKnownName(t *testing.T) {
	list := []mail.Folder{
		{Name: "INBOX", Delim: '.'}, {Name: "INBOX.Sent", Delim: '.'}, {Name: "INBOX.Trash", Delim: '.'},
		{Name: "INBOX.Drafts.old", Delim: '.'}, {Name: "INBOX.Junk", Delim: '.', SpecialUse: mail.SpecialArchive},
	}
	got := Specials(list, Namespace{Prefix: "INBOX.", Delim: '.'})
	want := map[string]string{mail.SpecialSent: "INBOX.Sent", mail.SpecialTrash: "INBOX.Trash", mail.SpecialArchive: "INBOX.Junk"}
	if len(got) != len(want) {
		t.Errorf("specials %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s -> %q, want %q", k, got[k], v)
		}
	}
}
