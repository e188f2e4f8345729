package web

import (
	"regexp"

	"github.com/banjia-mail/banjia/state"
)

// inLang is a copy of e whose Message is worded in lang, for the pages'
// templates, which print Message.
func inLang(lang string, e *state.Event) *state.Event {
	c := *e
	c.Message = e.Text(lang)
	return &c
}

// onPage is inLang with the kind in the reader's words too, for the pages
// (the API and the exports keep the kind, which filters take).
func onPage(lang string, e *state.Event) *state.Event {
	c := inLang(lang, e)
	c.Kind = state.KindText(lang, e.Kind)
	return c
}

// countsLine is the counts line a finished account's reason begins with,
// in either language: the page shows the counts already.
var countsLine = regexp.MustCompile(`^(\d+ to import, \d+ imported, \d+ failed|总计需导入\d+封邮件, 已成功导入\d+封, 失败\d+封)(; |$)`)
