package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/sources/check"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
)

// TestCheckEWSOnlineCLI: banjia check walks Exchange Online's app-only EWS
// as a delegated job opens it: the EWS URL, the application's token from
// Entra ID, one member's mailbox through impersonation and
// X-AnchorMailbox, the folder count, in English and in Chinese. A wrong
// client secret or tenant stops at the token and a member outside the
// application's RBAC scope at the mailbox, each saying what to fix; the
// secret is in no output.
func TestCheckEWSOnlineCLI(t *testing.T) {
	entra := graphtest.New(t)
	srv := ewstest.New(t)
	srv.Issuer = entra
	srv.AppScope = []string{"ada@contoso.com"}
	day := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	msg := func(i int) *ewstest.Message {
		return &ewstest.Message{MIME: []byte(fmt.Sprintf("From: a@contoso.com\r\nSubject: m%d\r\n\r\nbody %d\r\n", i, i)), Received: day.Add(time.Duration(i) * time.Hour)}
	}
	for _, n := range []string{"ada", "out"} {
		inbox := &ewstest.Folder{Name: "Inbox", WellKnown: "inbox", Messages: []*ewstest.Message{msg(1), msg(2), msg(3)}}
		sent := &ewstest.Folder{Name: "Sent Items", WellKnown: "sentitems", Messages: []*ewstest.Message{msg(4), msg(5)}}
		srv.AddMailbox(&ewstest.Mailbox{SMTP: n + "@contoso.com", Folders: []*ewstest.Folder{inbox, sent}})
	}
	dir := t.TempDir()
	ca, idCA := filepath.Join(dir, "ews-ca.pem"), filepath.Join(dir, "entra-ca.pem")
	for f, data := range map[string][]byte{ca: srv.CA, idCA: entra.CA} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w := &cliWorld{World: &migratetest.World{T: t, Path: filepath.Join(dir, "banjia.db")}}
	const wrong = "Wr0ng~Secret.value"
	tenant := entra.Tenant
	lang := "en"
	run := func(secret, member string, json bool) (string, error) {
		w.env = []string{"SSL_CERT_FILE=" + idCA, "BANJIA_FROM_ADMIN_PASSWORD=" + secret}
		args := []string{"check", "--provider", "exchange-online-ews", "--from", fmt.Sprintf("ews://%s:%d", srv.Host, srv.Port), "--ca-file", ca,
			"--admin-login", "xoauth2", "--tenant", tenant, "--client-id", entra.ClientID, "--authority", entra.URL() + "/", "--member", member}
		if json {
			args = append(args, "--json")
		}
		out, err := w.banjiaIn(t, lang, args...)
		if strings.Contains(out, entra.Secret) || strings.Contains(out, wrong) {
			t.Fatalf("a secret is in the output of banjia check:\n%s", out)
		}
		return out, err
	}
	steps := func(out string) []check.Step {
		t.Helper()
		var rs []struct {
			Role, Account string
			check.Report
		}
		if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
			t.Fatalf("banjia check --json: %v\n%s", err, out)
		}
		return rs[0].Steps
	}
	// names is the steps as "name ok" or "name FAIL".
	names := func(ss []check.Step) string {
		var b []string
		for _, s := range ss {
			mark := "ok"
			if !s.OK {
				mark = "FAIL"
			}
			b = append(b, s.Name+" "+mark)
		}
		return strings.Join(b, ", ")
	}

	out, err := run(entra.Secret, "ada@contoso.com", true)
	if err != nil {
		t.Fatalf("check of a member in scope: %v\n%s", err, out)
	}
	ss := steps(out)
	if got := names(ss); got != "dns ok, tcp ok, tls ok, ews ok, token ok, mailbox ok, folders ok" {
		t.Fatalf("steps: %s\n%s", got, out)
	}
	if d := ss[4].Detail; d != "Entra ID issued a token to application "+entra.ClientID+" in tenant "+entra.Tenant {
		t.Errorf("token step: %q", d)
	}
	if d := ss[5].Detail; !strings.HasPrefix(d, "opened ada@contoso.com's mailbox as application "+entra.ClientID) {
		t.Errorf("mailbox step: %q", d)
	}
	if d := ss[6].Detail; !strings.HasPrefix(d, "2 folders, 5 messages") {
		t.Errorf("folders step: %q", d)
	}
	if st := srv.Stats(); st.Bearer == 0 || st.Impersonated == 0 || st.NoAnchor != 0 {
		t.Fatalf("EWS saw %d bearer requests, %d impersonated, %d refused for the anchor", st.Bearer, st.Impersonated, st.NoAnchor)
	}
	text, err := run(entra.Secret, "ada@contoso.com", false)
	if err != nil || !strings.Contains(text, "source ada@contoso.com") || !strings.Contains(text, "1 checks: 1 passed, 0 failed") {
		t.Fatalf("check in text: %v\n%s", err, text)
	}

	lang = "zh"
	text, err = run(entra.Secret, "ada@contoso.com", false)
	for _, want := range []string{"访问令牌", "Entra ID 已为租户 " + entra.Tenant, "打开邮箱", "2 个文件夹, 5 封邮件"} {
		if err != nil || !strings.Contains(text, want) {
			t.Fatalf("check in Chinese lacks %q: %v\n%s", want, err, text)
		}
	}
	lang = "en"

	tenant = "no-such-tenant"
	out, err = run(entra.Secret, "ada@contoso.com", true)
	if err == nil {
		t.Fatalf("an unknown tenant passed:\n%s", out)
	}
	if ss = steps(out); names(ss) != "dns ok, tcp ok, tls ok, ews ok, token FAIL" || !strings.Contains(ss[4].Detail, "tenant no-such-tenant does not exist") {
		t.Fatalf("unknown tenant: %s\n%s", names(ss), out)
	}
	tenant = entra.Tenant

	before := srv.Stats().Bearer
	out, err = run(wrong, "ada@contoso.com", true)
	if err == nil {
		t.Fatalf("a wrong secret passed:\n%s", out)
	}
	ss = steps(out)
	if got := names(ss); got != "dns ok, tcp ok, tls ok, ews ok, token FAIL" {
		t.Fatalf("wrong secret, steps: %s\n%s", got, out)
	}
	if d, h := ss[4].Detail, ss[4].Hint; !strings.Contains(d, "the client secret of application "+entra.ClientID+" is wrong or has expired") || !strings.Contains(h, "Certificates & secrets") {
		t.Fatalf("wrong secret: %q (hint %q)", d, h)
	}
	if n := srv.Stats().Bearer - before; n != 0 {
		t.Fatalf("%d requests reached EWS without a token", n)
	}

	out, err = run(entra.Secret, "out@contoso.com", true)
	if err == nil {
		t.Fatalf("a member outside the scope passed:\n%s", out)
	}
	ss = steps(out)
	if got := names(ss); got != "dns ok, tcp ok, tls ok, ews ok, token ok, mailbox FAIL" {
		t.Fatalf("outside the scope, steps: %s\n%s", got, out)
	}
	want := "application " + entra.ClientID + " may not open mailbox out@contoso.com: grant it full_access_as_app"
	if d := ss[5].Detail; !strings.Contains(d, want) || !strings.Contains(ss[5].Hint, "Application EWS.AccessAsApp") {
		t.Fatalf("outside the scope: %q (hint %q), want %q", d, ss[5].Hint, want)
	}
}
