package wording

import (
	"strings"
	"testing"
	"unicode"
)

// TestCatalogueComplete: every code has both wordings, each wording takes
// every parameter the code declares (a value given is a value shown), and
// none is left unfilled or doubled by the printer.
func TestCatalogueComplete(t *testing.T) {
	if len(Codes()) < 50 {
		t.Fatalf("catalogue has %d codes", len(Codes()))
	}
	for _, code := range Codes() {
		e := entries[code]
		if e.en == "" || e.zh == "" {
			t.Errorf("%s: en %q zh %q: a wording is missing", code, e.en, e.zh)
			continue
		}
		if !hasHan(e.zh) {
			t.Errorf("%s: zh wording %q has no Chinese in it", code, e.zh)
		}
		r := Reason{Code: code, Args: map[string]string{}}
		want := map[string]string{}
		for i, name := range e.args {
			v := "P" + string(rune('a'+i)) + "x"
			switch name {
			case "cause":
				c := Plain("CAUSE" + v)
				r.Cause = &c
				v = "CAUSE" + v
			case "state":
				r.Args[name] = "failed"
				want[name] = ""
				continue
			default:
				r.Args[name] = v
			}
			want[name] = v
		}
		for _, lang := range []string{"en", "zh"} {
			got := r.In(lang)
			if strings.Contains(got, "%!") || strings.Contains(got, "MISSING") || strings.Contains(got, "EXTRA") {
				t.Errorf("%s (%s): %q: a placeholder is unfilled or wrong", code, lang, got)
			}
			for name, v := range want {
				if name == "state" {
					w := map[string]string{"en": "failed", "zh": "搬家失败"}[lang]
					if !strings.Contains(got, w) {
						t.Errorf("%s (%s): %q does not say the state %q", code, lang, got, w)
					}
					continue
				}
				if !strings.Contains(got, v) {
					t.Errorf("%s (%s): %q does not show parameter %s", code, lang, got, name)
				}
			}
		}
		if len(e.args) > 0 && r.In("en") == r.In("zh") {
			t.Errorf("%s: the same text in both languages", code)
		}
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// TestReasonWords: a login refusal keeps the server's reply as it was
// said, in both languages; a nested reason is worded in the reader's
// language; a plain text reads the same in both.
func TestReasonWords(t *testing.T) {
	r := New("login.refused", "user", "u@old.example", "addr", "old.example:993", "proto", "IMAP",
		"reply", "[AUTHENTICATIONFAILED] Authentication failed.")
	en, zh := r.In("en"), r.In("zh-CN")
	if want := `login as u@old.example at old.example:993 refused: wrong user name, password or authorization code (授权码), or IMAP is disabled for this account (the server said: "[AUTHENTICATIONFAILED] Authentication failed.")`; en != want {
		t.Errorf("en:\n got %s\nwant %s", en, want)
	}
	if !strings.Contains(zh, "登录被拒绝") || !strings.Contains(zh, `"[AUTHENTICATIONFAILED] Authentication failed."`) {
		t.Errorf("zh: %s", zh)
	}
	if r.String() != en {
		t.Errorf("String is not the English wording")
	}
	ev := New("ev.account.failed", "id", "u@old.example").Because(New("conn.keepsfailing").Because(New("net.resolve", "host", "nx.invalid")))
	if got := ev.In("zh"); got != `u@old.example 搬家失败: 连接反复中断: 域名解析失败: 无法解析主机 "nx.invalid", 请检查服务器名称` {
		t.Errorf("nested zh: %s", got)
	}
	if got := ev.In("en"); got != `u@old.example failed: the connection keeps failing: cannot resolve host "nx.invalid": check the server name` {
		t.Errorf("nested en: %s", got)
	}
	p := Plain("some old English reason")
	if p.In("zh") != "some old English reason" || p.In("en") != p.In("zh") {
		t.Errorf("plain: %q", p.In("zh"))
	}
	if got := (Reason{Code: "no.such.code", Text: "kept text"}).In("zh"); got != "kept text" {
		t.Errorf("unknown code: %q", got)
	}
	if Text("zh", "check.summary", 3, 2, 1) != "共检查 3 项: 2 项通过, 1 项失败" {
		t.Errorf("check.summary zh: %q", Text("zh", "check.summary", 3, 2, 1))
	}
}
