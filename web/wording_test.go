package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFailureInChineseOnPages: an account refused by a real Dovecot reads
// in the reader's language on the job page, the audit page and in the
// API (which also gives the reason's code and parameters, the server's
// reply among them as it said it).
func TestFailureInChineseOnPages(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 2, messages: 3, bad: 1})
	bad := s.w.Users[0]
	var out map[string]any
	if code := s.api("POST", "/api/jobs", map[string]any{"id": "zh", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": s.w.CSV(), "start": true}, &out); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	s.waitAccount("zh", bad.Old, "failed", time.Minute)
	s.waitAccount("zh", s.w.Users[1].Old, "succeeded", time.Minute)

	apiGet := func(path, lang string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.http.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Accept-Language", lang)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v %s", path, err, b)
		}
	}
	type account struct {
		ID, Reason string
		Code       string            `json:"reason_code"`
		Args       map[string]string `json:"reason_args"`
	}
	for lang, want := range map[string][]string{
		"zh-CN,zh;q=0.9": {"登录被拒绝: ", "用户名、密码或授权码有误", `(服务器回复: "Authentication failed.")`},
		"en-US":          {"login as " + bad.Old, "wrong user name, password or authorization code", `(the server said: "Authentication failed.")`},
	} {
		var list []account
		apiGet("/api/jobs/zh/accounts", lang, &list)
		var a account
		for _, x := range list {
			if x.ID == bad.Old {
				a = x
			}
		}
		for _, w := range want {
			if !strings.Contains(a.Reason, w) {
				t.Errorf("API reason (%s) %q lacks %q", lang, a.Reason, w)
			}
		}
		if a.Code != "login.refused" || a.Args["reply"] != "Authentication failed." || a.Args["user"] != bad.Old {
			t.Errorf("API reason code (%s): %q %v", lang, a.Code, a.Args)
		}
		var evs []struct {
			Kind, Message string
			Why           *struct{ Code string }
		}
		apiGet("/api/jobs/zh/events", lang, &evs)
		found := false
		for _, e := range evs {
			if e.Kind == "account.failed" {
				found = true
				if !strings.Contains(e.Message, want[0]) || e.Why == nil || e.Why.Code != "ev.account.failed" {
					t.Errorf("API event (%s): %q %+v", lang, e.Message, e.Why)
				}
			}
		}
		if !found {
			t.Errorf("no account.failed event in the API (%s)", lang)
		}
	}

	admin := s.client("zh-CN")
	admin.get("/admin/login")
	if code, _ := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 {
		t.Fatalf("admin signs in: %d", code)
	}
	for lang, want := range map[string][]string{
		"zh-CN": {"搬家失败", "登录被拒绝: ", "服务器回复: &#34;Authentication failed.&#34;", bad.Old + " 搬家失败: 登录被拒绝", bad.Old + " 开始搬家"},
		"en":    {"wrong user name, password or authorization code", bad.Old + " failed: login as", bad.Old + " started ("},
	} {
		admin.lang = lang
		_, page := admin.get("/admin/jobs/zh")
		_, audit := admin.get("/admin/audit?job=zh")
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("job page (%s) lacks %q", lang, w)
			}
		}
		if w := want[len(want)-2]; !strings.Contains(audit, w) {
			t.Errorf("audit page (%s) lacks %q", lang, w)
		}
		if lang == "en" && (strings.Contains(page, "登录被拒绝") || strings.Contains(audit, "搬家失败:")) {
			t.Errorf("the English pages have Chinese reasons")
		}
		// Kinds: the word in Chinese, the kind itself (what filters take) in English.
		if kindCell := "<td>account.failed</td>"; strings.Contains(page, kindCell) != (lang == "en") || strings.Contains(audit, kindCell) != (lang == "en") {
			t.Errorf("pages (%s): the kind cell %q shown: %v %v", lang, kindCell, strings.Contains(page, kindCell), strings.Contains(audit, kindCell))
		}
	}
}
