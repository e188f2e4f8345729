package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/notify/smtptest"
	"github.com/banjia-mail/banjia/state"
)

// banjiaIn runs banjia with the reader's language lang ("": none given).
func (w *cliWorld) banjiaIn(t *testing.T, lang string, a ...string) (string, error) {
	t.Helper()
	args := []string{"--state", w.Path}
	if lang != "" {
		args = append(args, "--lang", lang)
	}
	cmd := exec.Command(binary, append(args, a...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), w.env...)
	err := cmd.Run()
	return out.String(), err
}

func mustHave(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(text, s) {
			t.Errorf("%s does not say %q:\n%s", what, s, text)
		}
	}
}

func mustNotHave(t *testing.T, what, text string, unwanted ...string) {
	t.Helper()
	for _, s := range unwanted {
		if strings.Contains(text, s) {
			t.Errorf("%s says %q:\n%s", what, s, text)
		}
	}
}

// TestFailuresInChinese: a job on real Dovecot servers where one account
// has a wrong old password and one an old server whose name does not
// resolve. Read with --lang zh, the reasons (job accounts), the events
// (banjia logs), banjia check and the admins' digest mail are Chinese and
// keep the server's own reply as it said it; run and read with --lang en,
// the same stays English.
func TestFailuresInChinese(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 3, Messages: 2, BadPassword: 1})
	bad, good := w.Users[1], w.Users[2]
	// A fourth account whose old mailbox is on a host that does not exist.
	var csv strings.Builder
	csv.WriteString("old address,new address,old password,new password,old server\n")
	for _, u := range w.Users {
		csv.WriteString(u.Old + "," + u.New + "," + u.OldPW + "," + u.NewPW + ",\n")
	}
	const nx = "nx@old.test"
	csv.WriteString(nx + "," + good.New + ",pw," + good.NewPW + ",no-such-host.invalid\n")
	accounts := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(accounts, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "smtp-pw-zh"}})
	w.env = append(w.env, "BANJIA_SMTP_PASSWORD=smtp-pw-zh")

	run := func(lang, job string) []smtptest.Message {
		t.Helper()
		before := len(mail.Messages())
		w.mustBanjia(t, "job", "create", job, "--from", "imap+plain://"+w.Src.IMAPAddr, "--to", "imap+plain://"+w.Dst.IMAPAddr, "--accounts", accounts)
		out, err := w.banjiaIn(t, lang, "job", "start", job, "--smtp", smtpURL(mail), "--smtp-insecure", "--notify-admin", "it@new.test")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
			t.Fatalf("job start --lang %s: %v, want exit %d\n%s", lang, err, exitFailed, lastLines(out))
		}
		return mail.Messages()[before:]
	}
	digest := func(msgs []smtptest.Message) (subject, body string) {
		t.Helper()
		for _, m := range msgs {
			if len(m.To) > 0 && m.To[0] == "it@new.test" {
				s, err := m.Subject()
				if err != nil {
					t.Fatal(err)
				}
				b, err := m.Text()
				if err != nil {
					t.Fatal(err)
				}
				return s, b
			}
		}
		t.Fatalf("no digest among %d mails", len(msgs))
		return "", ""
	}

	// Chinese.
	zhMail := run("zh", "t-zh")
	accts, _ := w.banjiaIn(t, "zh", "job", "accounts", "t-zh")
	mustHave(t, "job accounts --lang zh", accts, "搬家失败", "登录被拒绝", "用户名、密码或授权码有误",
		"服务器回复: ", "Authentication failed", // Dovecot's own words, kept as they are
		"域名解析失败: 无法解析主机 \"no-such-host.invalid\"", "搬家成功")
	mustNotHave(t, "job accounts --lang zh", accts, "refused:", "cannot resolve", "the server said")
	logs, err := w.banjiaIn(t, "zh", "logs", "--job", "t-zh")
	if err != nil {
		t.Fatalf("logs: %v\n%s", err, logs)
	}
	mustHave(t, "logs --lang zh", logs, bad.Old+" 搬家失败: 登录被拒绝", nx+" 搬家失败: 域名解析失败", good.Old+" 开始搬家",
		good.Old+" 搬家成功: 总计需导入2封邮件, 已成功导入2封, 失败0封", "创建了搬家任务 t-zh", "搬家任务 t-zh 已结束")
	mustNotHave(t, "logs --lang zh", logs, " failed: ", " started (", "succeeded:", "account.failed")
	report, _ := w.banjiaIn(t, "zh", "job", "report", "t-zh")
	mustHave(t, "job report --lang zh", report, "邮箱账号", "原因", "整个帐号搬家失败: 登录被拒绝", "整个帐号搬家失败: 域名解析失败", "封没有搬过来")
	subject, body := digest(zhMail)
	mustHave(t, "the zh digest", subject+"\n"+body, "【邮箱搬家】", "搬家失败2个", "失败原因: 登录被拒绝", "Authentication failed",
		"失败原因: 域名解析失败", "搬家已结束")
	mustNotHave(t, "the zh digest", body, "cannot resolve", "Reason:")
	for _, m := range zhMail {
		if len(m.To) == 1 && m.To[0] == bad.New {
			text, _ := m.Text()
			mustHave(t, "the failed member's zh mail", text, "搬家失败", "搬家没有完成。管理员可以看到原因。")
		}
	}

	w.env = append(w.env, "BANJIA_FROM_PASSWORD="+bad.OldPW)
	check, err := w.banjiaIn(t, "zh", "check", "--from", "imap+plain://"+bad.Old+"@"+w.Src.IMAPAddr)
	if err == nil {
		t.Fatalf("check with a wrong password passed:\n%s", check)
	}
	mustHave(t, "check --lang zh (wrong password)", check, "旧邮箱 "+bad.Old, "失败", "域名解析", "TCP 连接", "服务器问候", "登录",
		"登录被拒绝", "Authentication failed", "建议: 请检查用户名和密码", "共检查 1 项: 0 项通过, 1 项失败")
	mustNotHave(t, "check --lang zh (wrong password)", check, "  FAIL ", "  ok ", "hint:", "checks:")
	check, _ = w.banjiaIn(t, "zh", "check", "--from", "imap+plain://"+nx+"@no-such-host.invalid:143")
	mustHave(t, "check --lang zh (no such host)", check, "域名解析", "无法解析主机 \"no-such-host.invalid\"", "建议: 请检查服务器名称是否拼错")

	// English, the same run and reading. A new address is moved into by
	// one job at a time: the Chinese one is ended first (it is done).
	w.mustBanjia(t, "job", "end", "t-zh")
	enMail := run("en", "t-en")
	accts, _ = w.banjiaIn(t, "en", "job", "accounts", "t-en")
	mustHave(t, "job accounts --lang en", accts, "failed", "login as "+bad.Old, "wrong user name, password or authorization code",
		"(the server said: ", "Authentication failed", `cannot resolve host "no-such-host.invalid": check the server name`)
	logs, _ = w.banjiaIn(t, "en", "logs", "--job", "t-en")
	mustHave(t, "logs --lang en", logs, "account.failed", bad.Old+" failed: login as", nx+" failed: cannot resolve host", good.Old+" succeeded: 2 to import, 2 imported, 0 failed")
	subject, body = digest(enMail)
	mustHave(t, "the en digest", subject+"\n"+body, "[banjia]", "Reason: login as "+bad.Old, "Reason: cannot resolve host")
	check, _ = w.banjiaIn(t, "en", "check", "--from", "imap+plain://"+bad.Old+"@"+w.Src.IMAPAddr)
	mustHave(t, "check --lang en", check, "source "+bad.Old, "FAILED", "FAIL", "login", "wrong user name, password or authorization code",
		"hint: check the user name and password", "1 checks: 0 passed, 1 failed")
	for what, text := range map[string]string{"job accounts": accts, "logs": logs, "digest": body, "check": check} {
		if han := hanOutside(text, "授权码"); han != "" {
			t.Errorf("%s --lang en has Chinese in it (%q):\n%s", what, han, text)
		}
	}

	// The Chinese job, read in English afterwards: the codes are kept,
	// not the words of the run.
	accts, _ = w.banjiaIn(t, "en", "job", "accounts", "t-zh")
	mustHave(t, "job accounts t-zh --lang en", accts, "wrong user name, password or authorization code", "cannot resolve host")
}

// hanOutside is the first Chinese text in s that is not one of allowed
// (the English wording names 授权码, as providers call it).
func hanOutside(s string, allowed ...string) string {
	for _, a := range allowed {
		s = strings.ReplaceAll(s, a, "")
	}
	for i, r := range s {
		if unicode.Is(unicode.Han, r) {
			end := min(len(s), i+24)
			return s[i:end]
		}
	}
	return ""
}

// TestHelpInChinese: --lang zh (or BANJIA_LANG=zh) gives the main
// commands' help in Chinese; without it the help is English.
func TestHelpInChinese(t *testing.T) {
	w := &cliWorld{World: &migratetest.World{Path: filepath.Join(t.TempDir(), "s.db")}}
	cases := map[string][]string{
		"migrate":      {"搬一个邮箱", "旧邮箱, 例如 imaps://", "退出码", "选项:"},
		"job create":   {"用帐号文件创建搬家任务", "CSV 或 .xlsx", "只复制近期邮件"},
		"job start":    {"在前台运行任务直到结束", "同时搬家的帐号数", "通过邮件通知成员和管理员"},
		"job status":   {"搬家任务列表"},
		"job accounts": {"任务中每个帐号的搬家进展"},
		"check":        {"逐步检查能否连上并登录旧服务器和新服务器", "并发检查这个帐号文件"},
		"serve":        {"成员自助页面", "管理后台的管理员用户名"},
	}
	for cmd, want := range cases {
		args := append(strings.Fields(cmd), "--help")
		out, err := w.banjiaIn(t, "zh", args...)
		if err != nil {
			t.Fatalf("%s --help: %v\n%s", cmd, err, out)
		}
		mustHave(t, cmd+" --help (zh)", out, want...)
		out, _ = w.banjiaIn(t, "en", args...)
		mustNotHave(t, cmd+" --help (en)", out, want...)
	}
	w.env = []string{"BANJIA_LANG=zh"}
	out, _ := (&cliWorld{World: w.World, env: w.env}).banjiaIn(t, "", "--help")
	mustHave(t, "banjia --help with BANJIA_LANG=zh", out, "把邮箱从旧邮件系统搬到新的 IMAP 服务器", "命令:", "全局选项:")
}

// TestOldReasonShown: an account written before the reasons had codes
// (its Reason only, in English) still shows that reason under --lang zh.
func TestOldReasonShown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	job := &state.Job{ID: "old", State: state.JobCompleted, Created: time.Now()}
	const reason = "login as a@old.test at imap.old.test:993 refused: wrong user name, password or authorization code (授权码), or IMAP is disabled for this account"
	if err := s.PutJob(job); err == nil {
		err = s.PutAccounts("old", &state.Account{ID: "a@old.test", Source: "a@old.test", Target: "a@new.test", State: state.AccountFailed, Reason: reason})
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	w := &cliWorld{World: &migratetest.World{Path: path}}
	out, err := w.banjiaIn(t, "zh", "job", "accounts", "old")
	if err != nil {
		t.Fatalf("job accounts: %v\n%s", err, out)
	}
	mustHave(t, "job accounts --lang zh of an old state file", out, "a@old.test", "搬家失败", reason)
}

// TestOutboxReasonInChinese: mail that waits because the SMTP server is
// down says why in the reader's language in banjia outbox.
func TestOutboxReasonInChinese(t *testing.T) {
	w := newCLIWorld(t, migratetest.Options{Accounts: 1, Messages: 1, BadPassword: -1, Backend: migratetest.Memory})
	mail := smtptest.Start(t, smtptest.Options{Users: map[string]string{"banjia@new.test": "smtp-pw-1"}})
	mail.Stop()
	w.env = append(w.env, "BANJIA_SMTP_PASSWORD=smtp-pw-1")
	w.create(t)
	w.mustBanjia(t, "job", "start", w.Job, "--smtp", smtpURL(mail), "--smtp-insecure", "--notify-admin", "it@new.test", "--smtp-wait", "2s")
	zh, _ := w.banjiaIn(t, "zh", "outbox")
	mustHave(t, "outbox --lang zh", zh, "连接失败: ", "拒绝连接")
	en, _ := w.banjiaIn(t, "en", "outbox")
	mustHave(t, "outbox --lang en", en, "connection refused (is the port right and the service up?)")
	mustNotHave(t, "outbox --lang en", en, "连接失败")
}
