package state

import (
	"encoding/binary"
	"maps"
	"slices"
	"strings"

	"github.com/banjia-mail/banjia/wording"
)

func init() {
	wording.SetActorText(func(lang, who string) string { return Actor(who).Text(lang) })
}

// SetReason records why the account is in its state: the English text in
// Reason (what older files and tools read) and the code in Why.
func (a *Account) SetReason(why wording.Reason) {
	a.Reason, a.Why = why.String(), coded(why)
}

// ReasonIn is the account's reason in lang. A Reason changed without its
// code (written by an older banjia, or cleared) is shown as it is written.
func (a Account) ReasonIn(lang string) string {
	return textIn(a.Reason, a.Why, lang)
}

// SetFolderReason records why the whole folder could not be copied.
func (c *Checkpoint) SetFolderReason(why wording.Reason) {
	c.FolderReason, c.FolderWhy = why.String(), coded(why)
}

// FolderReasonIn is FolderReason in lang.
func (c *Checkpoint) FolderReasonIn(lang string) string {
	return textIn(c.FolderReason, c.FolderWhy, lang)
}

// maxReasonWhys bounds the codes a checkpoint keeps: distinct reasons are
// few, and one beyond them is still read in English.
const maxReasonWhys = 64

// NoteReason keeps why's code for its English text, as Reasons holds it.
func (c *Checkpoint) NoteReason(why wording.Reason) {
	if !why.Coded() {
		return
	}
	text := why.String()
	if _, ok := c.ReasonWhys[text]; ok {
		return
	}
	if c.ReasonWhys == nil {
		c.ReasonWhys = map[string]*wording.Reason{}
	}
	if len(c.ReasonWhys) < maxReasonWhys {
		c.ReasonWhys[text] = &why
	}
}

// WhyOf is a text of Reasons as a reason: its code where kept.
func (c *Checkpoint) WhyOf(text string) wording.Reason {
	if w := c.ReasonWhys[text]; w != nil {
		return *w
	}
	return wording.Plain(text)
}

// FolderWhyOf is FolderReason as a reason.
func (c *Checkpoint) FolderWhyOf() wording.Reason {
	if c.FolderWhy != nil && c.FolderWhy.String() == c.FolderReason {
		return *c.FolderWhy
	}
	return wording.Plain(c.FolderReason)
}

// LastErrorIn is LastError in lang: its reason worded there, the error
// under it (the server's own words) as it was.
func (m *OutMail) LastErrorIn(lang string) string {
	if m.LastWhy == nil || !m.LastWhy.Coded() || !strings.HasPrefix(m.LastError, m.LastWhy.String()) {
		return m.LastError
	}
	return m.LastWhy.In(lang) + strings.TrimPrefix(m.LastError, m.LastWhy.String())
}

// KindText is an event kind as a reader of lang sees it: in Chinese a
// word, in English the kind itself (what filters take).
func KindText(lang, kind string) string {
	if wording.Lang(lang) == "en" || !wording.Has("kind."+kind) {
		return kind
	}
	return wording.Text(lang, "kind."+kind)
}

// Text is the event's line in lang.
func (e *Event) Text(lang string) string {
	if e.Why == nil || !e.Why.Coded() || (e.Why.Code != "" && !wording.Has(e.Why.Code)) {
		// No code, or one from a newer banjia: the line as written.
		return e.Message
	}
	return e.Why.In(lang)
}

func coded(why wording.Reason) *wording.Reason {
	if !why.Coded() {
		return nil
	}
	return &why
}

// textIn words a reason kept as text and code. The code is used only while
// it still says the text: a reason set as plain text by code that does not
// know the codes (or by an older banjia) must not be shown as the code
// left from before.
func textIn(text string, why *wording.Reason, lang string) string {
	if why == nil || !why.Coded() || why.String() != text {
		return text
	}
	return why.In(lang)
}

// appendWhy writes an event's code compactly (a byte 0 when it has none):
// events are read in the thousands when the log is filtered, and a JSON
// decoder would cost them ten times the rest of the record.
func appendWhy(b []byte, why *wording.Reason) []byte {
	if why == nil {
		return append(b, 0)
	}
	return appendReason(append(b, 1), *why)
}

func appendReason(b []byte, r wording.Reason) []byte {
	b = appendString(appendString(b, r.Code), r.Text)
	b = binary.AppendUvarint(b, uint64(len(r.Args)))
	for _, k := range slices.Sorted(maps.Keys(r.Args)) {
		b = appendString(appendString(b, k), r.Args[k])
	}
	b = appendWhy(b, r.Cause)
	b = binary.AppendUvarint(b, uint64(len(r.Sub)))
	for _, k := range slices.Sorted(maps.Keys(r.Sub)) {
		b = appendReason(appendString(b, k), r.Sub[k])
	}
	b = binary.AppendUvarint(b, uint64(len(r.List)))
	for _, p := range r.List {
		b = appendReason(b, p)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// readWhy reads what appendWhy wrote, and returns what follows it.
func readWhy(p []byte) (*wording.Reason, []byte, error) {
	if len(p) == 0 {
		return nil, nil, errEventRecord
	}
	if p[0] == 0 {
		return nil, p[1:], nil
	}
	r, rest, err := readReason(p[1:], 0)
	if err != nil {
		return nil, nil, err
	}
	return &r, rest, nil
}

// maxReasonDepth bounds the nesting a record may claim (a reason inside a
// reason is two or three deep).
const maxReasonDepth = 16

func readReason(p []byte, depth int) (wording.Reason, []byte, error) {
	var r wording.Reason
	if depth > maxReasonDepth {
		return r, nil, errEventRecord
	}
	var err error
	if r.Code, p, err = readString(p); err != nil {
		return r, nil, err
	}
	if r.Text, p, err = readString(p); err != nil {
		return r, nil, err
	}
	n, p, err := readCount(p)
	if err != nil {
		return r, nil, err
	}
	if n > 0 {
		r.Args = make(map[string]string, n)
		for range n {
			var k, v string
			if k, p, err = readString(p); err == nil {
				v, p, err = readString(p)
			}
			if err != nil {
				return r, nil, err
			}
			r.Args[k] = v
		}
	}
	if len(p) == 0 {
		return r, nil, errEventRecord
	}
	if p[0] == 1 {
		c, rest, err := readReason(p[1:], depth+1)
		if err != nil {
			return r, nil, err
		}
		r.Cause, p = &c, rest
	} else {
		p = p[1:]
	}
	if n, p, err = readCount(p); err != nil {
		return r, nil, err
	}
	if n > 0 {
		r.Sub = make(map[string]wording.Reason, n)
		for range n {
			var k string
			var s wording.Reason
			if k, p, err = readString(p); err == nil {
				s, p, err = readReason(p, depth+1)
			}
			if err != nil {
				return r, nil, err
			}
			r.Sub[k] = s
		}
	}
	if n, p, err = readCount(p); err != nil {
		return r, nil, err
	}
	for range n {
		var s wording.Reason
		if s, p, err = readReason(p, depth+1); err != nil {
			return r, nil, err
		}
		r.List = append(r.List, s)
	}
	return r, p, nil
}

func readString(p []byte) (string, []byte, error) {
	l, n := binary.Uvarint(p)
	if n <= 0 || uint64(len(p)-n) < l {
		return "", nil, errEventRecord
	}
	return string(p[n : n+int(l)]), p[n+int(l):], nil
}

// readCount reads a count of items, each at least one byte long.
func readCount(p []byte) (int, []byte, error) {
	l, n := binary.Uvarint(p)
	if n <= 0 || uint64(len(p)-n) < l {
		return 0, nil, errEventRecord
	}
	return int(l), p[n:], nil
}
