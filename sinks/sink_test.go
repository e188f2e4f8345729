package sinks

import (
	"strings"
	"testing"
)

func TestKeepFlags(t *testing.T) {
	all := []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, `\Deleted`, "$Forwarded", "work", `\Recent`}
	cases := []struct {
		name          string
		f             Folder
		keep, dropped string
	}{
		{"everything kept", Folder{Flags: []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, `\Deleted`}, Keywords: true},
			`\Seen \Answered \Flagged \Draft \Deleted $Forwarded work`, ""},
		{"no keywords", Folder{Flags: []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, `\Deleted`, "$Forwarded"}},
			`\Seen \Answered \Flagged \Draft \Deleted $Forwarded`, "work"},
		{"only some system flags", Folder{Flags: []string{`\Seen`, `\Flagged`}},
			`\Seen \Flagged`, `\Answered \Draft \Deleted $Forwarded work`},
		{"PERMANENTFLAGS without system flags trusts them", Folder{Keywords: true},
			`\Seen \Answered \Flagged \Draft $Forwarded work`, `\Deleted`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keep, dropped := KeepFlags(c.f, all)
			if strings.Join(keep, " ") != c.keep || strings.Join(dropped, " ") != c.dropped {
				t.Fatalf("keep %q dropped %q; want %q / %q", keep, dropped, c.keep, c.dropped)
			}
		})
	}
}
