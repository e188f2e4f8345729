// Package wording is the product's message catalogue: every text a person
// reads that is built from parameters (failure reasons, event lines, the
// steps of a connection check) has a code here with its English and
// Simplified Chinese wording. What is stored is the code and its
// parameters; the text is made when someone reads it, in their language.
package wording

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// Reason is a text kept as a code and its parameters. A Reason without a
// code is a plain text kept as it was written (an error no code covers, or
// a state file from before the codes): it reads the same in every language.
type Reason struct {
	Code string            `json:",omitempty"`
	Args map[string]string `json:",omitempty"`
	// Cause is the reason inside this one ("the connection keeps failing:
	// <cause>"), worded in the same language.
	Cause *Reason `json:",omitempty"`
	// Sub are parameters that are reasons themselves, worded in the same
	// language (a list of groups of failures inside "left").
	Sub map[string]Reason `json:",omitempty"`
	// List, in a Reason without a code, is reasons said one after the
	// other ("; " between them).
	List []Reason `json:",omitempty"`
	// Text is the plain text of a Reason without a code.
	Text string `json:",omitempty"`
}

// With is r with the parameter name set to the reason sub.
func (r Reason) With(name string, sub Reason) Reason {
	m := make(map[string]Reason, len(r.Sub)+1)
	for k, v := range r.Sub {
		m[k] = v
	}
	m[name] = sub
	r.Sub = m
	return r
}

// New is the reason code with its parameters, given as name, value pairs.
func New(code string, nameValues ...string) Reason {
	r := Reason{Code: code}
	if len(nameValues) > 0 {
		r.Args = make(map[string]string, len(nameValues)/2)
		for i := 0; i+1 < len(nameValues); i += 2 {
			r.Args[nameValues[i]] = nameValues[i+1]
		}
	}
	return r
}

// Plain is a text no code covers, shown as it is.
func Plain(text string) Reason { return Reason{Text: text} }

// Because is r with cause inside it.
func (r Reason) Because(cause Reason) Reason {
	if cause.IsZero() {
		return r
	}
	r.Cause = &cause
	return r
}

// IsZero says r holds nothing.
func (r Reason) IsZero() bool {
	return r.Code == "" && r.Text == "" && r.Cause == nil && len(r.List) == 0
}

// Coded says r has a code, or is a list of reasons (it reads differently
// by language).
func (r Reason) Coded() bool { return r.Code != "" || len(r.List) > 0 }

// String is r in English, the wording kept beside the code in state files
// and logs.
func (r Reason) String() string { return r.In("en") }

// In is r worded in lang ("zh", "zh-CN", "en", ...). A code the catalogue
// does not know (a newer state file read by an older banjia) reads as its
// Text if any, else as the code and its parameters.
func (r Reason) In(lang string) string {
	if r.Code == "" {
		switch {
		case len(r.List) > 0:
			parts := make([]string, len(r.List))
			for i, p := range r.List {
				parts[i] = p.In(lang)
			}
			return strings.Join(parts, "; ")
		case r.Text == "" && r.Cause != nil:
			return r.Cause.In(lang)
		}
		return r.Text
	}
	e, ok := entries[r.Code]
	if !ok {
		if r.Text != "" {
			return r.Text
		}
		return r.Code + " " + fmt.Sprint(r.Args)
	}
	l := Lang(lang)
	args := make([]any, len(e.args))
	for i, name := range e.args {
		args[i] = r.arg(l, name)
	}
	return printers[l].Sprintf(r.Code, args...)
}

// arg is one parameter as the text shows it: a few names are worded by
// language around the value (the server's reply stays as it was said).
func (r Reason) arg(l, name string) string {
	if sub, ok := r.Sub[name]; ok {
		return sub.In(l)
	}
	v := r.Args[name]
	switch name {
	case "cause":
		if r.Cause != nil {
			return r.Cause.In(l)
		}
	case "reply":
		if v == "" {
			return ""
		}
		return fmt.Sprintf(wrap[l]["reply"], v)
	case "hint":
		if v == "" {
			return ""
		}
		return "; " + v
	case "who":
		if f := actorText; f != nil && v != "" {
			return f(l, v)
		}
	case "state":
		// A state name (running, failed, ...) is said in the product's words.
		if w, ok := entries["state."+v]; ok {
			if l == "zh" {
				return w.zh
			}
			return w.en
		}
	}
	return v
}

// actorText words who acted (state.Actor), set by the state package,
// which knows the kinds of actors.
var actorText func(lang, actor string) string

// SetActorText says how the "who" parameter is worded.
func SetActorText(f func(lang, actor string) string) { actorText = f }

// wrap words the parameters that carry someone else's words.
var wrap = map[string]map[string]string{
	"en": {"reply": " (the server said: %q)"},
	"zh": {"reply": " (服务器回复: %q)"},
}

// Lang maps a language tag (zh-CN, zh_CN.UTF-8, en-US, ...) to "zh" or "en".
func Lang(tag string) string {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(tag)), "zh") {
		return "zh"
	}
	return "en"
}

// Text is the catalogue's wording of a code that takes no parameters, or
// takes them in order (a step name, a check's summary line).
func Text(lang, code string, args ...any) string {
	if _, ok := entries[code]; !ok {
		return code
	}
	strs := make([]any, len(args))
	for i, a := range args {
		// Numbers as they are written (no digit grouping), as the
		// parameters of a Reason are.
		strs[i] = fmt.Sprint(a)
	}
	return printers[Lang(lang)].Sprintf(code, strs...)
}

// Has says the catalogue knows code.
func Has(code string) bool { _, ok := entries[code]; return ok }

// Codes are every code of the catalogue, sorted.
func Codes() []string {
	out := make([]string, 0, len(entries))
	for c := range entries {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Params are the names of code's parameters, in the order its wording
// takes them.
func Params(code string) []string { return append([]string(nil), entries[code].args...) }

// entry is one code: its parameters' names, in the order %[n] takes them,
// and its wording.
type entry struct {
	args   []string
	en, zh string
}

var printers = func() map[string]*message.Printer {
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	for code, e := range entries {
		if err := b.SetString(language.English, code, e.en); err != nil {
			panic(err)
		}
		if err := b.SetString(language.SimplifiedChinese, code, e.zh); err != nil {
			panic(err)
		}
	}
	return map[string]*message.Printer{
		"en": message.NewPrinter(language.English, message.Catalog(b)),
		"zh": message.NewPrinter(language.SimplifiedChinese, message.Catalog(b)),
	}
}()
