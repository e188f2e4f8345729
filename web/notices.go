package web

import (
	"net/http"
	"strconv"

	"github.com/banjia-mail/banjia/migrate"
)

// PortalLink is the portal's address for the links in mails ("" when none
// can be trusted: see portalBase).
func (s *Server) PortalLink() string { return s.portalLink }

// outboxPage lists the notification mails not sent yet (the outbox): each
// with its recipients, tries and the last error, so an admin sees mail that
// waits for the SMTP server instead of wondering why none came.
func (s *Server) outboxPage(w http.ResponseWriter, r *http.Request, ss *session) {
	mails, err := s.m.Outbox(migrate.OutboxRequest{}, who(ss))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.render(w, r, "outbox", http.StatusOK, view{CSRF: ss.csrf, Admin: true, Data: mails})
}

// outboxForm is the outbox page's retry (one mail or all) and drop buttons.
func (s *Server) outboxForm(w http.ResponseWriter, r *http.Request, ss *session) {
	seq, _ := strconv.ParseUint(r.PostFormValue("seq"), 10, 64)
	req := migrate.OutboxRequest{Action: r.PathValue("op"), Seq: seq}
	if _, err := s.m.Outbox(req, who(ss)); err != nil {
		s.sess.flash(ss, err.Error(), "")
	}
	http.Redirect(w, r, "/admin/outbox", http.StatusSeeOther)
}

// apiOutbox is GET /api/outbox: the mails not sent yet, as JSON.
func (s *Server) apiOutbox(w http.ResponseWriter, r *http.Request, who string) {
	mails, err := s.m.Outbox(migrate.OutboxRequest{}, who)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, mails)
}

func init() {
	for k, v := range map[string][2]string{
		"outbox":             {"Outbox", "待发邮件"},
		"outbox.intro":       {"Notification mails the SMTP server has not taken yet. They are kept and tried again until it does.", "邮件服务器尚未接收的通知邮件。邮件会一直保留, 并不断重试, 直到发送成功。"},
		"outbox.empty":       {"Every notification mail was sent.", "所有通知邮件均已发送。"},
		"outbox.kind":        {"Kind", "类型"},
		"outbox.to":          {"To", "收件人"},
		"outbox.subject":     {"Subject", "主题"},
		"outbox.tries":       {"Tries", "尝试次数"},
		"outbox.next":        {"Next try", "下次尝试"},
		"outbox.error":       {"Last error", "最近的错误"},
		"outbox.now":         {"now", "立即"},
		"outbox.held":        {"held: refused for good", "已暂停: 被拒收"},
		"outbox.retry":       {"Send again", "重新发送"},
		"outbox.retry.all":   {"Send all again now", "全部立即重新发送"},
		"outbox.drop":        {"Drop", "删除"},
		"outbox.kind.member": {"member", "成员通知"}, "outbox.kind.digest": {"digest", "任务汇总"},
		"outbox.kind.progress": {"daily digest", "每日汇总"}, "outbox.kind.invite": {"invitation", "搬家邀请"},
		"outbox.kind.reminder": {"reminder", "提醒"},
		"upload":               {"or upload a file (.csv or .xlsx)", "或上传文件 (.csv 或 .xlsx)"},
		"upload.template":      {"Download the template", "下载模板文件"},
	} {
		words["en"][k], words["zh"][k] = v[0], v[1]
	}
}
