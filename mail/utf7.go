package mail

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
)

// IMAP's modified UTF-7 (RFC 3501 5.1.3) is written here because go-imap
// keeps its encoder internal; the sink (folder names), the Graph source
// (keywords from categories) and the test servers' fixtures need it.

// EncodeMailbox writes a mailbox name in modified UTF-7.
func EncodeMailbox(s string) string {
	var b strings.Builder
	var pending []rune
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString(UTF7Run(pending) + "&-")
			pending = pending[:0]
		case r >= 0x20 && r <= 0x7e:
			b.WriteString(UTF7Run(pending))
			b.WriteRune(r)
			pending = pending[:0]
		default:
			pending = append(pending, r)
		}
	}
	b.WriteString(UTF7Run(pending))
	return b.String()
}

// UTF7Run writes a run of characters outside printable ASCII as one
// modified-UTF-7 shift sequence ("&...-"); an empty run is "".
func UTF7Run(run []rune) string {
	if len(run) == 0 {
		return ""
	}
	u := utf16.Encode(run)
	raw := make([]byte, 0, len(u)*2)
	for _, c := range u {
		raw = append(raw, byte(c>>8), byte(c))
	}
	return "&" + strings.ReplaceAll(base64.RawStdEncoding.EncodeToString(raw), "/", ",") + "-"
}
