package main

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// The CLI's help in Chinese. Help texts are fixed when the commands are
// built, before any flag is read, so the language is looked for in the
// arguments and the environment first (helpLang) and the texts are
// swapped in place (localizeHelp). A text missing here stays English.

// helpLang is the language --lang, BANJIA_LANG or the locale asks for.
func helpLang(args []string) string {
	flag := os.Getenv("BANJIA_LANG")
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return langOf(flag)
		case a == "--lang" || a == "-lang":
			if i+1 < len(args) {
				flag = args[i+1]
			}
		case strings.HasPrefix(a, "--lang=") || strings.HasPrefix(a, "-lang="):
			_, flag, _ = strings.Cut(a, "=")
		}
	}
	return langOf(flag)
}

// localizeHelp puts the Chinese help texts into app when lang is zh.
func localizeHelp(app *cli.App, lang string) {
	if lang != "zh" {
		return
	}
	app.Usage = zhUsage[""]
	localizeFlags("", app.Flags)
	for _, c := range app.Commands {
		localizeCommand(c.Name, c)
	}
	cli.AppHelpTemplate = zhHeadings(cli.AppHelpTemplate)
	cli.CommandHelpTemplate = zhHeadings(cli.CommandHelpTemplate)
	cli.SubcommandHelpTemplate = zhHeadings(cli.SubcommandHelpTemplate)
	cli.HelpFlag.(*cli.BoolFlag).Usage = "显示帮助"
	cli.VersionFlag.(*cli.BoolFlag).Usage = "显示版本"
}

func localizeCommand(path string, c *cli.Command) {
	if u, ok := zhUsage[path]; ok {
		c.Usage = u
	}
	if d, ok := zhDescription[path]; ok {
		c.Description = d
	}
	localizeFlags(path, c.Flags)
	for _, sub := range c.Subcommands {
		localizeCommand(path+" "+sub.Name, sub)
	}
}

// localizeFlags words a command's flags: the command's own wording of a
// flag first (--from says different things to migrate and to check),
// else the flag's wording shared by every command.
func localizeFlags(path string, flags []cli.Flag) {
	for _, f := range flags {
		name := f.Names()[0]
		u, ok := zhFlag[path+" --"+name]
		if !ok {
			if u, ok = zhFlag["--"+name]; !ok {
				continue
			}
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Usage = u
		case *cli.BoolFlag:
			f.Usage = u
		case *cli.IntFlag:
			f.Usage = u
		case *cli.Float64Flag:
			f.Usage = u
		case *cli.DurationFlag:
			f.Usage = u
		case *cli.StringSliceFlag:
			f.Usage = u
		}
	}
}

// zhHeadings translates the headings of urfave/cli's help templates.
func zhHeadings(t string) string {
	return strings.NewReplacer(
		"GLOBAL OPTIONS:", "全局选项:", "OPTIONS:", "选项:", "NAME:", "名称:", "USAGE:", "用法:",
		"VERSION:", "版本:", "DESCRIPTION:", "说明:", "COMMANDS:", "命令:", "AUTHOR", "作者",
		"[global options]", "[全局选项]", "[command options]", "[命令选项]", "command [", "命令 [",
	).Replace(t)
}

const zhExitCodes = "退出码: 0 所选邮件都已在新邮箱中; 1 banjia 无法运行 (输入有误, 状态文件问题); 2 有帐号搬家失败; 3 已结束但有邮件或文件夹没有搬过来 (见 banjia job report); 4 在所有帐号结束前停止"

var zhDescription = map[string]string{
	"migrate":   zhExitCodes,
	"job start": zhExitCodes,
	"serve": "成员用新邮箱的地址和密码登录 (通过 IMAP 登录新服务器验证), 再输入旧邮箱的密码即可启动搬家。管理员在 /admin 登录。\n" +
		"服务运行期间, banjia job pause/resume/end/status/add 和 banjia logs -f 都与这个进程通信。",
}

var zhUsage = map[string]string{
	"":             "把邮箱从旧邮件系统搬到新的 IMAP 服务器 (搬家)",
	"migrate":      "搬一个邮箱 (再次运行只复制新邮件)",
	"job":          "整个域名的搬家任务: create, start, pause, resume, end, status, accounts, add, invite, notices, account, show, delete, sync, close",
	"job create":   "用帐号文件创建搬家任务",
	"job invite":   "通过运行中的 banjia serve, 给成员自助搬家任务中还没有开始的成员发邀请邮件",
	"job notices":  "在开放期结束前提醒还没有开始的成员, 并每天给管理员发送进展汇总",
	"job add":      "向任务添加帐号, 或为已有帐号提供新密码",
	"job start":    "在前台运行任务直到结束 (Ctrl-C 保存进度并停止)",
	"job pause":    "在下一封邮件之间暂停任务",
	"job resume":   "继续已暂停的任务",
	"job end":      "结束任务: 正在搬家的帐号停止, 其余帐号放弃",
	"job status":   "搬家任务列表 (所有任务, 或一个任务)",
	"job accounts": "任务中每个帐号的搬家进展",
	"job sync":     "切换 MX 之后: 只复制上次之后旧邮箱中新到的邮件, 所有帐号都同步 (次数不限, 不必再输入密码)",
	"job close":    "结束切换: 清除保存的所有密码 (包括管理员密码) 并冻结任务, 之后不能再启动或同步",
	"job report":   "任务没有搬过来的每封邮件: 帐号, 文件夹, UID, 日期, 大小, 原因",
	"job retry":    "重试搬家失败或部分失败的帐号 (在排除原因之后)",
	"job verify":   "逐个文件夹比较旧邮箱和新邮箱 (数量; --deep: 每封邮件的内容)",
	"job account":  "暂停, 继续, 放弃, 重试一个帐号或把它排到最前面, 也可作用于某个状态的所有帐号",
	"job show":     "查看任务设置: 方式, 服务器, 文件夹选择, 限制, 日期; 从不显示密码",
	"job delete":   "删除没有在运行的任务: 其帐号, 进度, 事件和保存的密码",
	"check":        "逐步检查能否连上并登录旧服务器和新服务器",
	"providers":    "--provider 可用的服务商预设 (服务器, 端口, 授权码)",
	"logs":         "事件日志 (搬家查询): 按任务, 帐号, 时间, 类型, 结果和操作人筛选; 可导出为 CSV 或 JSON; -f 跟踪运行中的任务",
	"serve":        "运行状态文件中的所有任务, 并提供成员自助页面, 管理后台, JSON API 和 /metrics",
	"demo":         "在两个进程内的 IMAP 服务器之间做一次真实的搬家演示 (无需任何设置)",
	"outbox":       "还没有发出的通知邮件 (list, retry, drop): 它们一直保留到 SMTP 服务器接收为止",
	"outbox list":  "列出还没有发出的邮件",
	"outbox retry": "立即重发还没有发出的邮件",
	"outbox drop":  "丢弃还没有发出的邮件",
}

var zhFlag = map[string]string{
	// global
	"--state":   "状态文件 (任务, 进度, 事件)",
	"--lang":    "en 或 zh (默认按 LANG)",
	"--verbose": "在标准错误输出引擎的详细日志",

	// migrate and check: one mailbox
	"migrate --from":      "旧邮箱, 例如 imaps://alice@imap.old.example:993",
	"migrate --to":        "新邮箱, 例如 imaps://alice@imap.new.example:993",
	"check --from":        "旧邮箱: 带用户名的地址, 或使用 --provider 时只写用户名; 使用 --accounts 时只写服务器",
	"check --to":          "新邮箱: 地址 (不使用 --accounts 时要带用户名)",
	"check --accounts":    "并发检查这个帐号文件 (CSV 或 .xlsx) 的每一行",
	"check --json":        "输出机器可读的报告",
	"check --admin-login": "xoauth2: 按应用令牌委托任务 (Exchange Online) 的方式检查 EWS 旧邮箱",
	"check --member":      "xoauth2: 应用要打开的成员邮箱 (默认: --from 中的用户)",
	"job create --from":   "旧服务器, 例如 imaps://imap.old.example:993 (用户来自帐号文件); 使用 --provider 时可以不写",
	"job create --to":     "新服务器, 例如 imaps://imap.new.example:993",
	"job status --json":   "输出 JSON",
	"job accounts --json": "输出 JSON",
	"--from-pass-file":    "存放旧邮箱密码的文件",
	"--from-pass-env":     "存放旧邮箱密码的环境变量",
	"--to-pass-file":      "存放新邮箱密码的文件",
	"--to-pass-env":       "存放新邮箱密码的环境变量",

	// job create
	"--accounts":             "CSV 或 .xlsx: 旧邮箱地址, 新邮箱地址, 旧密码[, 新密码[, 旧服务器]], 或以 旧邮箱, 新邮箱, 密码, 新密码, 旧服务器 为表头的列 (使用 --domain 时不需要)",
	"--domain":               "委托管理员方式的 Microsoft Graph 旧邮箱: 从目录中取这个域名的用户作为帐号",
	"--new-domain":           "与 --domain 一起使用: 新地址是同名帐号在这个域名下",
	"--to-admin":             "没有新密码的帐号以这个管理员 (master user) 登录新服务器",
	"--mode":                 "passwords (帐号文件提供旧密码), delegated (由搬家管理员打开每个邮箱: 无感搬家) 或 member (每个成员在 banjia serve 的自助页面输入旧密码)",
	"--keep-credentials":     "为切换 MX 之后的同步 (banjia job sync) 加密保存密码的最长时间, 例如 14d 或 36h (最多 90d); banjia job close 会更早清除",
	"--enroll-days":          "任务创建后多少天内可以添加帐号 (成员自助方式: 成员可以报名); 0: 只有给出的帐号",
	"--from-admin":           "委托管理员方式: 搬家管理员在旧服务器上的登录名 (xoauth2 不需要)",
	"--admin-login":          "委托管理员方式: authzid (以成员身份 SASL PLAIN 登录: Exchange 2010-2019, Dovecot), template (按 --login-template 以 LOGIN 登录) 或 xoauth2 (Exchange Online 应用令牌)",
	"--login-template":       "委托管理员方式, template: 登录名, 例如 'DOMAIN\\admin\\{alias}' 或 '{user}*{admin}' ({user}, {alias}, {domain}, {admin})",
	"--tenant":               "委托管理员方式, xoauth2: Entra ID 租户 ID",
	"--client-id":            "委托管理员方式, xoauth2: 应用 (客户端) ID; 其密钥即管理员密码",
	"--authority":            "委托管理员方式, xoauth2: https://login.microsoftonline.com/ 以外的认证主机 (国家云)",
	"--to-admin-pass-file":   "存放新服务器管理员密码的文件",
	"--to-admin-pass-env":    "存放新服务器管理员密码的环境变量",
	"--from-admin-pass-file": "存放搬家管理员密码 (或客户端密钥) 的文件",
	"--from-admin-pass-env":  "存放搬家管理员密码 (或客户端密钥) 的环境变量",
	"--encoding":             "CSV 的编码: utf-8, gbk, gb18030 或 utf-16 (默认: 自动识别)",
	"--skip-bad-rows":        "文件中有错误行时导入其余正确的行 (默认: 文件全部正确前什么都不导入)",

	// folder and date choices
	"--period":                "只复制近期邮件: all, 2y, 1y, 3m 或 30d",
	"--since":                 "只复制这一天 (YYYY-MM-DD) 及之后收到的邮件",
	"--skip-junk-trash":       "不搬垃圾箱和已删除",
	"--skip-custom-folders":   "只复制收件箱和特殊文件夹 (已发送, 草稿箱, ...)",
	"--max-size":              "跳过大于这么多 MB 的邮件 (0: 不限)",
	"--dedupe-across-folders": "在多个文件夹中的同一封邮件只复制一次, 所有邮件 (All Mail) 放到最后 (--provider gmail 时默认开启)",
	"--window":                "只在每天的这个时段内复制, 例如 22:00-07:00; 时段外帐号在两封邮件之间停下, 时段开始时继续",
	"--time-zone":             "--window 的时区, 例如 Asia/Shanghai (默认: 本机时区)",
	"--max-rate":              "整个任务从旧服务器读取的速度上限, 单位 MB/s (0: 不限)",
	"--max-rate-per-host":     "从每台旧服务器读取的速度上限, 单位 MB/s (0: 不限)",
	"--rename":                "把旧邮箱的文件夹以另一个名字放到新邮箱: 'OLD=NEW' (层级之间用 '/': 'Archive/2019=Old/2019'); 可重复",
	"--exclude":               "不搬与此模式匹配的文件夹 ('*' 任意字符, '?' 一个字符; 'Archive*' 包括其子文件夹); 可重复",

	// servers
	"--provider":    "旧邮箱服务商的预设 (banjia providers): 之后 --from 可以只写用户名",
	"--protocol":    "与 --provider 一起使用: imap 或 pop3",
	"--insecure":    "不验证 TLS 证书 (只在可信网络中使用)",
	"--ca-file":     "两端服务器都信任的 CA 证书 PEM 文件",
	"--ews-version": "EWS 旧邮箱: 请求的 Exchange 版本 (Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016; 默认 Exchange2010_SP2)",
	"--ews-domain":  "EWS 旧邮箱: 登录名所在的 Windows 域, 登录名即为 DOMAIN\\name",
	"--ews-auth":    "EWS 旧邮箱: ntlm 或 basic (默认: 按服务器支持的, 优先 NTLM)",

	// running
	"--parallel":        "同时搬家的帐号数",
	"--conns":           "每个帐号的连接数",
	"--per-host":        "到同一台旧服务器的最大连接数",
	"--retry-for":       "连接或邮件反复失败且没有进展时, 重试多久后放弃",
	"--connect-for":     "帐号在搬过任何邮件之前, 尝试连接服务器多久",
	"--retry-wait":      "失败后的第一次等待; 之后加倍 (带随机抖动), 最长 30s",
	"--idle-timeout":    "服务器在应答前可以沉默多久, 超过后断开并重新连接",
	"--connect-timeout": "服务器接受连接可以用多久",
	"--login-timeout":   "连接后 TLS, 问候和登录可以用多久",
	"--rerun":           "为已经搬家成功的帐号复制新邮件, 与 banjia job sync 相同",

	// notices
	"--smtp":               "通过邮件通知成员和管理员: smtps://USER@HOST:465 (TLS) 或 smtp://USER@HOST:587 (STARTTLS); 密码来自 BANJIA_SMTP_PASSWORD 或 --smtp-password-file",
	"--smtp-password-file": "从这个文件读取 SMTP 密码",
	"--smtp-from":          "发件人地址 (默认: SMTP 登录名; 大多数服务商拒绝其他地址: relay not allowed)",
	"--notify-admin":       "管理员地址: 每个任务结束时收到一封汇总 (数量和失败的帐号), 使用 banjia job notices --daily 时运行期间每天一封",
	"--smtp-insecure":      "不验证 SMTP 服务器的证书",
	"--smtp-plain":         "允许不加密的 smtp:// (同一台机器上的中继)",
	"--sms-command":        "运行这个命令发送提醒短信: COMMAND 手机号或地址 内容",
	"--sms-webhook":        "以 JSON 把 {\"to\", \"text\", \"job\", \"account\"} POST 到这个 URL 来发送提醒短信",
	"--smtp-wait":          "结束时等待邮件发出的最长时间; 没发出的留在发件箱 (banjia outbox) 等下次运行",

	// serve
	"--listen":              "自助页面, 管理后台, API 和 /metrics 的地址",
	"--admin-user":          "管理后台的管理员用户名",
	"--admin-password-file": "从这个文件读取管理员密码 (或设置 BANJIA_ADMIN_PASSWORD)",
	"--admin-token-file":    "从这个文件读取 API 令牌 (或设置 BANJIA_ADMIN_TOKEN)",
	"--admin-token-name":    "API 令牌在事件日志中的名字",
	"--admins-file":         "更多管理员, 各自以自己的名字记入事件日志: 使用 bcrypt 的 htpasswd 文件 (htpasswd -nB NAME)",
	"--viewers-file":        "只能查看任务, 帐号和事件日志, 不能更改的后台用户: 与 --admins-file 格式相同的 htpasswd 文件",
	"--trusted-proxy":       "serve 前面的反向代理 (地址或 CIDR, 可重复): 对它转发的请求, 登录锁定按 X-Forwarded-For 中的客户端计算",
	"--tls-cert":            "用这个证书 (PEM) 提供 HTTPS",
	"--tls-key":             "以及这个私钥",
	"--secure-cookies":      "在普通 HTTP 上也把 Cookie 标为 Secure (位于 TLS 代理之后时)",
	"--public-url":          "成员访问自助页面的地址, 用于邀请邮件中的链接, 例如 https://move.example.com/ (没有它时, 只有 --listen 是回环地址才使用它作为链接, 否则拒绝发送邀请)",
}
