package mail

import "strings"

// Keyword turns a category (Outlook, Exchange) into an IMAP keyword, which
// must be an atom: ASCII letters, digits and atom punctuation stay, spaces
// and the atom-specials become "_", and runs of other characters (a Chinese
// category name, say) are written in modified UTF-7 as IMAP writes folder
// names, so that no category is lost or merged with another.
func Keyword(category string) string {
	category = strings.TrimSpace(category)
	var b strings.Builder
	var run []rune
	flush := func() {
		b.WriteString(UTF7Run(run))
		run = run[:0]
	}
	for _, r := range category {
		if r >= 0x80 {
			run = append(run, r)
			continue
		}
		flush()
		switch {
		case r == '&':
			b.WriteString("&-")
		case r <= ' ' || r == 0x7f || strings.ContainsRune(`(){%*"\]`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	flush()
	return b.String()
}
