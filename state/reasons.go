package state

import "github.com/banjia-mail/banjia/wording"

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

// Text is the event's line in lang.
func (e *Event) Text(lang string) string {
	if e.Why == nil || !e.Why.Coded() {
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
