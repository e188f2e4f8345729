package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/banjia-mail/banjia/state"
)

// words are every page's wording in English and Simplified Chinese; the
// state names and the counts line are the product's (R6-R8), from state.Word.
var words = map[string]map[string]string{
	"en": {
		"all":                  "all",
		"title":                "Mailbox move",
		"portal.title":         "Move your old mailbox here",
		"portal.intro":         "Sign in with your NEW mailbox's address and password.",
		"address":              "Address",
		"password":             "Password",
		"signin":               "Sign in",
		"signout":              "Sign out",
		"bad.login":            "The new mail server did not accept this address and password.",
		"not.member":           "%s is not part of any mailbox move. Ask your admin.",
		"locked":               "Too many failed attempts. Try again in %d minutes.",
		"csrf":                 "The form expired. Please try again.",
		"old.title":            "Your old mailbox",
		"old.intro":            "Type your OLD mailbox's address and password to start moving its mail here. Nothing is deleted from the old mailbox.",
		"old.authcode":         "Your old provider wants an authorization code (client password), not the web login password.",
		"old.address":          "Old address",
		"old.password":         "Old password or authorization code",
		"start":                "Start moving",
		"invite":               "Invite the members by mail",
		"invite.f":             "Send a reminder mail to all members listed",
		"invite.again":         "also to those invited before who have not started",
		"invited":              "%d members invited by mail",
		"retry":                "The move failed (see why above). Type the old password again to try again; what was copied stays copied.",
		"bad.old":              "The old mailbox did not accept this password, so nothing was started. Check the password (or authorization code) and try again.",
		"old.taken":            "%s is already being moved into another mailbox.",
		"old.domain":           "The old address must be at %s.",
		"closed":               "This move stopped taking new mailboxes on %s. Ask your admin.",
		"started":              "Your move has started.",
		"progress":             "Progress",
		"reason":               "Reason",
		"admin.title":          "Mailbox moves",
		"admin.login":          "Admin sign-in",
		"user":                 "User",
		"token":                "or API token",
		"bad.admin":            "Wrong admin user, password or token.",
		"viewer":               "You are signed in as a viewer: you can look, not change jobs. Ask an admin.",
		"jobs":                 "Jobs",
		"job":                  "Job",
		"state":                "State",
		"domain":               "Domain",
		"mode":                 "Mode",
		"pause":                "Pause",
		"resume":               "Resume",
		"end":                  "End",
		"start.job":            "Start",
		"new.job":              "New job",
		"create":               "Create and start",
		"check":                "Check connection",
		"events":               "Event log",
		"accounts":             "Accounts",
		"account":              "Account",
		"time":                 "Time",
		"what":                 "What happened",
		"add.accounts":         "Add accounts",
		"add":                  "Add",
		"csv":                  "CSV: old address, new address, old password[, new password]",
		"mode.member":          "members type their old password",
		"mode.passwords":       "admin supplies passwords",
		"mode.delegated":       "delegated admin (无感搬家)",
		"provider":             "Old provider",
		"source":               "Old server (e.g. imaps://imap.old.example:993)",
		"target":               "New server (e.g. imaps://imap.new.example:993)",
		"old.domain.f":         "Old domain",
		"new.domain.f":         "New domain",
		"target.admin":         "New server admin (master user, optional)",
		"target.admin.pw":      "Its password",
		"source.admin":         "Migration admin on the old server (delegated)",
		"source.admin.pw":      "Its password (for xoauth2 or Graph: the application's client secret)",
		"deleg.login":          "How the admin opens a member's mailbox",
		"deleg.login.authzid":  "as the member (SASL PLAIN authorization id: Exchange 2010-2019, Dovecot)",
		"deleg.login.template": "by a login name (template below)",
		"deleg.login.xoauth2":  "app-only token (Exchange Online)",
		"login.template":       "Login template ({user}, {alias}, {domain}, {admin})",
		"tenant":               "Tenant id (xoauth2)",
		"client.id":            "Application (client) id (xoauth2)",
		"check.account":        "Any old account, to check the connection",
		"check.pw":             "Its password",
		"period":               "Mail to move",
		"period.all":           "all", "period.2y": "2 years", "period.1y": "1 year", "period.3m": "3 months", "period.30d": "30 days",
		"skip.junk":         "Skip Junk and Trash",
		"skip.custom":       "Only INBOX and special folders",
		"max.size":          "Largest message (MB, 0: no limit)",
		"enroll.until":      "Takes new accounts until",
		"check.ok":          "Connection checked: the old server accepted the login.",
		"done":              "done",
		"lang":              "中文",
		"retry.failed":      "Retry failed",
		"retry.f":           "tries again, once you have fixed the cause, the accounts that failed or finished with failures (%d); what is already on the new server is not copied again",
		"retried":           "Retrying the accounts that failed or finished with failures (%d): %s",
		"not.copied":        "Not copied",
		"not.copied.line":   "Messages not copied: %d. Accounts that failed or finished with failures: %d.",
		"report.see":        "Every message and why",
		"report.csv":        "Download CSV",
		"report.title":      "Not copied: job %s",
		"report.count":      "Not copied: %d (messages, or folders and accounts that failed as a whole). Fix the cause, then press Retry failed on the job's page.",
		"report.more":       "Showing the first %d of %d; the CSV has them all.",
		"report.none":       "Every selected message is on the new server.",
		"report.every":      "all accounts",
		"back.job":          "Back to the job",
		"folder":            "Folder",
		"date":              "Date",
		"size":              "Size (bytes)",
		"verify":            "Verify",
		"verify.title":      "Compare old and new",
		"verify.f":          "Compares the old and the new server folder by folder; nothing is changed. Not while the job copies.",
		"verify.account":    "Only this account (old address; empty: every account that has started)",
		"verify.deep":       "deep: compare every message's bytes",
		"verify.started":    "Verification started; its result appears on this page.",
		"verify.running":    "Verifying since %s (%s)…",
		"verify.failed":     "The verification could not run: %s",
		"verify.none":       "Verified at %s: no account to check (none has started).",
		"verify.result":     "Verified at %s (%s): %d folders, %d differ",
		"verify.unchecked":  "accounts not checked: %d",
		"verify.ok":         "every folder holds its source's messages once",
		"verify.mode.quick": "quick: counts",
		"verify.mode.deep":  "deep: every message's bytes",
		"verify.by":         "Asked by %s",
	},
	"zh": {
		"all":                  "所有的",
		"title":                "邮箱搬家",
		"portal.title":         "把旧邮箱搬到这里",
		"portal.intro":         "请用新邮箱的帐号和密码登录。",
		"address":              "邮箱帐号",
		"password":             "密码",
		"signin":               "登录",
		"signout":              "退出",
		"bad.login":            "新邮箱服务器没有接受这个帐号和密码。",
		"not.member":           "%s 不在任何搬家任务中, 请联系管理员。",
		"locked":               "失败次数过多, 请%d分钟后再试。",
		"csrf":                 "表单已过期, 请重试。",
		"old.title":            "你的旧邮箱",
		"old.intro":            "输入需搬家的旧邮箱帐号及对应密码, 即可启动搬家。原邮箱内邮件不会删除。",
		"old.authcode":         "旧邮箱服务商要求输入客户端专用密码(授权码), 而不是网页登录密码。",
		"old.address":          "原邮箱帐号",
		"old.password":         "原邮箱密码或授权码",
		"start":                "启动搬家",
		"invite":               "发送提醒邮件",
		"invite.f":             "发送提醒邮件给所有搬家成员",
		"invite.again":         "也再次提醒已收到邮件但还未开始的成员",
		"invited":              "已向%d位成员发送提醒邮件",
		"retry":                "搬家失败 (原因见上)。重新输入旧密码即可再试一次, 已搬过的邮件不会重复。",
		"bad.old":              "旧邮箱没有接受这个密码, 搬家没有启动。请检查密码(或授权码)后重试。",
		"old.taken":            "%s 已经在搬往另一个邮箱。",
		"old.domain":           "原邮箱帐号必须是 %s 的帐号。",
		"closed":               "此搬家任务已于 %s 停止接受新帐号, 请联系管理员。",
		"started":              "搬家已启动。",
		"progress":             "进展情况",
		"reason":               "说明",
		"admin.title":          "邮箱搬家",
		"admin.login":          "管理员登录",
		"user":                 "管理员帐号",
		"token":                "或 API 令牌",
		"bad.admin":            "管理员帐号、密码或令牌错误。",
		"viewer":               "您以只读身份登录：可以查看，不能更改搬家任务。请联系管理员。",
		"jobs":                 "搬家任务",
		"job":                  "搬家任务",
		"state":                "任务状态",
		"domain":               "域名",
		"mode":                 "搬家方式",
		"pause":                "暂停",
		"resume":               "继续",
		"end":                  "结束",
		"start.job":            "启动",
		"new.job":              "新建搬家",
		"create":               "启动搬家",
		"check":                "连接",
		"events":               "搬家查询",
		"accounts":             "邮箱账号",
		"account":              "邮箱账号",
		"time":                 "时间",
		"what":                 "事件",
		"add.accounts":         "添加帐号",
		"add":                  "添加",
		"csv":                  "CSV: 原邮箱帐号, 新邮箱帐号, 原邮箱密码[, 新邮箱密码]",
		"mode.member":          "成员输入旧密码",
		"mode.passwords":       "管理员统一输入成员密码",
		"mode.delegated":       "exchange 邮箱无感搬家",
		"provider":             "原邮箱服务商",
		"source":               "原服务器地址 (例如 imaps://imap.old.example:993)",
		"target":               "新服务器地址 (例如 imaps://imap.new.example:993)",
		"old.domain.f":         "原域名",
		"new.domain.f":         "新域名",
		"target.admin":         "新服务器管理员 (可选)",
		"target.admin.pw":      "管理员密码",
		"source.admin":         "Exchange迁移管理员帐号 (无感搬家)",
		"source.admin.pw":      "管理员密码 (xoauth2 或 Graph: 应用的客户端密码)",
		"deleg.login":          "管理员打开成员邮箱的方式",
		"deleg.login.authzid":  "以成员身份 (SASL PLAIN 授权身份: Exchange 2010-2019, Dovecot)",
		"deleg.login.template": "按登录名模板 (见下)",
		"deleg.login.xoauth2":  "应用令牌 (Exchange Online)",
		"login.template":       "登录名模板 ({user}, {alias}, {domain}, {admin})",
		"tenant":               "租户 ID (xoauth2)",
		"client.id":            "应用 (客户端) ID (xoauth2)",
		"check.account":        "原邮箱帐号 (验证连接)",
		"check.pw":             "原邮箱密码",
		"period":               "搬家范围",
		"period.all":           "全部", "period.2y": "2年", "period.1y": "1年", "period.3m": "3个月", "period.30d": "30天",
		"skip.junk":         "不搬垃圾箱和已删除",
		"skip.custom":       "只搬收件箱和系统文件夹",
		"max.size":          "邮件大小上限 (MB, 0 为不限)",
		"enroll.until":      "接受新帐号至",
		"check.ok":          "验证成功: 原服务器接受了登录。",
		"done":              "完成",
		"lang":              "English",
		"retry.failed":      "重试失败的账号",
		"retry.f":           "排除原因后, 重新搬失败或部分失败的账号 (%d 个); 已搬到新邮箱的邮件不会重复",
		"retried":           "正在重试失败或部分失败的账号 (%d 个): %s",
		"not.copied":        "未搬过去的邮件",
		"not.copied.line":   "没有搬过去的邮件: %d 封。失败或部分失败的账号: %d 个。",
		"report.see":        "查看清单及原因",
		"report.csv":        "下载 CSV",
		"report.title":      "未搬过去的邮件: 搬家任务 %s",
		"report.count":      "共 %d 条没有搬过去 (邮件, 或整个失败的文件夹和账号)。排除原因后, 在搬家任务页面点击「重试失败的账号」。",
		"report.more":       "只显示前 %d 条 (共 %d 条), CSV 中有全部。",
		"report.none":       "所有选中的邮件都已搬到新邮箱。",
		"report.every":      "所有账号",
		"back.job":          "返回搬家任务",
		"folder":            "文件夹",
		"date":              "日期",
		"size":              "大小 (字节)",
		"verify":            "核对",
		"verify.title":      "核对新旧邮箱",
		"verify.f":          "逐个文件夹比较原邮箱和新邮箱, 不做任何修改。搬家进行中时不能核对。",
		"verify.account":    "只核对此账号 (原邮箱帐号; 留空: 所有已开始搬家的账号)",
		"verify.deep":       "深度核对: 逐封比较邮件内容",
		"verify.started":    "核对已开始, 结果将显示在本页。",
		"verify.running":    "正在核对 (开始于 %s, %s)…",
		"verify.failed":     "核对未能进行: %s",
		"verify.none":       "%s 核对: 没有可核对的账号 (尚无账号开始搬家)。",
		"verify.result":     "%s 核对完成 (%s): %d 个文件夹, %d 个不一致",
		"verify.unchecked":  "%d 个账号无法核对",
		"verify.ok":         "每个文件夹都与原邮箱一致, 每封邮件恰好一份",
		"verify.mode.quick": "快速: 比较数量",
		"verify.mode.deep":  "深度: 逐封比较内容",
		"verify.by":         "由 %s 发起",
	},
}

// tr returns the wording for key, formatted with args.
func tr(lang, key string, args ...any) string {
	w, ok := state.Word(lang, key)
	if !ok {
		w, ok = words[lang][key]
	}
	if !ok {
		w, ok = words["en"][key]
		if !ok {
			w = key
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(w, args...)
	}
	return w
}

// langOf picks the page language: ?lang=, then the lang cookie, then the
// browser's Accept-Language, then the server's default.
func langOf(r *http.Request, def string) string {
	if l := r.URL.Query().Get("lang"); l != "" {
		return norm(l)
	}
	if c, err := r.Cookie("lang"); err == nil && c.Value != "" {
		return norm(c.Value)
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		if tag == "" || tag == "*" {
			continue
		}
		l := strings.ToLower(tag)
		if strings.HasPrefix(l, "zh") {
			return "zh"
		}
		if strings.HasPrefix(l, "en") {
			return "en"
		}
	}
	return norm(def)
}

func norm(l string) string { return state.Lang(l) }
