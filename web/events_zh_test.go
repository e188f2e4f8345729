package web_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/notify"
	"github.com/banjia-mail/banjia/web"
	"github.com/banjia-mail/banjia/wording"
)

// eventIn is the event of kind whose English message holds en, worded in
// lang ("" and false when there is none, or it has no code).
func (b *bare) eventIn(kind, en, lang string) (string, bool) {
	b.t.Helper()
	for _, e := range b.events() {
		if e.Kind == kind && strings.Contains(e.Message, en) {
			if e.Why == nil {
				return e.Message, false
			}
			return e.Why.In(lang), true
		}
	}
	return "", false
}

// TestLockoutAndNotifyEventsInChinese: the dashboard's and the API's
// lockouts and a notification given up are coded events: the English stays
// as it was written, and a Chinese reader reads them in Chinese.
func TestLockoutAndNotifyEventsInChinese(t *testing.T) {
	b := newBare(t, web.Config{MaxFailures: 2})
	g := b.visitor("127.0.4.1")
	g.do("GET", "/admin/login", nil)
	for i := 0; i < 2; i++ {
		g.do("POST", "/admin/login", url.Values{"user": {"admin"}, "password": {"wrong"}})
	}
	if code, _ := g.do("POST", "/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != http.StatusTooManyRequests {
		t.Fatalf("one client's repeated failures: %d, want 429", code)
	}
	pw := b.visitor("127.0.4.3")
	pw.do("GET", "/admin/login", nil)
	for i := 0; i < 2; i++ {
		pw.do("POST", "/admin/login", url.Values{"user": {"Hunter2-typed-here"}, "password": {"x"}})
	}
	tg := b.visitor("127.0.4.2")
	for i := 0; i < 8; i++ {
		req, _ := http.NewRequest("GET", b.http.URL+"/api/jobs", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		if resp, err := tg.c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	b.srv.NotifyError(&notify.DeliveryError{Subject: "搬家完成", To: []string{"it@new.test"}, Attempt: 5, Final: true,
		Err: &notify.Error{Reason: wording.New("smtp.busy", "addr", "smtp.new.test:587").String(), Why: wording.New("smtp.busy", "addr", "smtp.new.test:587"),
			Err: errors.New("421 4.3.2 try later")}})

	for _, c := range []struct{ kind, en, zh string }{
		{"warning", `dashboard sign-in as "admin" from 127.0.4.1 locked for 15 minutes after repeated failures`,
			`以 "admin" 登录管理后台 (来自 127.0.4.1) 多次失败, 锁定 15 分钟`},
		{"warning", "dashboard sign-in as a name that is no admin's from 127.0.4.3 locked",
			"以 一个不属于任何管理员的名字 登录管理后台 (来自 127.0.4.3) 多次失败"},
		{"warning", "the API token from 127.0.4.2 locked for 15 minutes",
			"API 令牌 (来自 127.0.4.2) 多次失败, 锁定 15 分钟"},
		{"notify.failed", `notification "搬家完成" to it@new.test not sent (attempt 5, giving up): smtp.new.test:587 is busy or unavailable (temporary): 421 4.3.2 try later`,
			`通知 "搬家完成" 未能发给 it@new.test (第 5 次尝试, 不再重试): smtp.new.test:587 繁忙或暂时不可用 (详情: 421 4.3.2 try later)`},
	} {
		got, coded := b.eventIn(c.kind, c.en, "zh")
		if !coded || !strings.Contains(got, c.zh) {
			t.Errorf("%s %q in Chinese: %q (coded %v), want %q", c.kind, c.en, got, coded, c.zh)
		}
	}
	for _, e := range b.events() {
		if e.Why != nil && strings.Contains(e.Why.In("zh"), "Hunter2") {
			t.Fatal("the event log repeats, in Chinese, a name that is no admin's")
		}
	}
}
