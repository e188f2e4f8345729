package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// Per-account control, a job's settings (查看设置) and deleting a job, on
// the dashboard and in the API: each a migrate.Manager call, as the CLI's.

func init() {
	funcs["filterStates"] = accountFilterStates
	funcs["mb"] = func(b int64) int64 { return b >> 20 }
	funcs["mbs"] = func(b int64) string {
		if b <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f MB/s", float64(b)/(1<<20))
	}
	for lang, ws := range controlWords {
		for k, v := range ws {
			words[lang][k] = v
		}
	}
}

var controlWords = map[string]map[string]string{
	"en": {
		"settings":           "Settings",
		"settings.title":     "Settings of job %s",
		"acct.actions":       "Account actions",
		"acct.actions.f":     "Old addresses (one a line), or every account in a state.",
		"acct.addresses":     "Accounts",
		"acct.in.state":      "or every account that is",
		"acct.op.pause":      "Pause",
		"acct.op.resume":     "Resume",
		"acct.op.abandon":    "Abandon",
		"acct.op.retry":      "Retry",
		"acct.op.first":      "Move to the front",
		"acct.done":          "%s: %d accounts (%s)",
		"renames":            "Rename folders (one a line: OLD=NEW, '/' between levels)",
		"excludes":           "Leave folders behind (one pattern a line: Archive*, Spam?)",
		"set.mode":           "Mode",
		"set.source":         "Old server",
		"set.target":         "New server",
		"set.source.admin":   "Migration admin",
		"set.target.admin":   "Target admin",
		"set.insecure":       "TLS certificates not verified",
		"set.since":          "Mail since",
		"set.all":            "all",
		"set.skip.junk":      "Skip Junk and Trash",
		"set.skip.custom":    "Skip custom folders",
		"set.system.folders": "Copy Exchange's system folders",
		"set.dedupe":         "Copy a message filed in several folders once",
		"set.max.size":       "Largest message",
		"set.no.limit":       "no limit",
		"set.renames":        "Renamed folders",
		"set.excludes":       "Folders left behind",
		"set.none":           "none",
		"set.window":         "Copies only",
		"set.rate":           "Reads at most",
		"set.rate.v":         "%s for the job, %s per old server",
		"set.parallel":       "Parallel",
		"set.parallel.v":     "%d accounts at once, %d connections each, at most %d per old server",
		"set.created":        "Created",
		"set.enroll":         "Takes accounts until",
		"set.accounts":       "Accounts",
		"yes":                "yes",
		"no":                 "no",
		"delete.job":         "Delete the job",
		"delete.f":           "Removes the job, its accounts, progress, events and stored passwords from banjia. Mail already on the new server stays there.",
		"delete.confirm":     "I understand: this cannot be undone",
		"delete.unconfirmed": "Tick the box to confirm the deletion.",
		"deleted":            "Job %s deleted",
	},
	"zh": {
		"settings":           "查看设置",
		"settings.title":     "搬家任务 %s 的设置",
		"acct.actions":       "帐号操作",
		"acct.actions.f":     "原邮箱帐号 (每行一个), 或某一状态的全部帐号。",
		"acct.addresses":     "帐号",
		"acct.in.state":      "或全部处于此状态的帐号",
		"acct.op.pause":      "暂停",
		"acct.op.resume":     "继续",
		"acct.op.abandon":    "放弃",
		"acct.op.retry":      "重试",
		"acct.op.first":      "优先搬家",
		"acct.done":          "%s: %d 个帐号 (%s)",
		"renames":            "文件夹改名 (每行一个: 原名=新名, 层级用 '/' 分隔)",
		"excludes":           "不搬的文件夹 (每行一个模式: Archive*, Spam?)",
		"set.mode":           "搬家方式",
		"set.source":         "原邮箱服务器",
		"set.target":         "新邮箱服务器",
		"set.source.admin":   "迁移管理员",
		"set.target.admin":   "新服务器管理员",
		"set.insecure":       "不验证TLS证书",
		"set.since":          "搬家范围",
		"set.all":            "全部",
		"set.skip.junk":      "不搬垃圾箱和已删除",
		"set.skip.custom":    "不搬自定义文件夹",
		"set.system.folders": "搬 Exchange 的发件箱和同步问题",
		"set.dedupe":         "多个文件夹中的同一封邮件只搬一次",
		"set.max.size":       "最大邮件",
		"set.no.limit":       "不限",
		"set.renames":        "文件夹改名",
		"set.excludes":       "不搬的文件夹",
		"set.none":           "无",
		"set.window":         "搬家时段",
		"set.rate":           "读取速度上限",
		"set.rate.v":         "整个任务 %s, 每个原服务器 %s",
		"set.parallel":       "并行",
		"set.parallel.v":     "同时%d个帐号, 每个帐号%d个连接, 每个原服务器最多%d个连接",
		"set.created":        "创建时间",
		"set.enroll":         "接受新帐号至",
		"set.accounts":       "帐号数",
		"yes":                "是",
		"no":                 "否",
		"delete.job":         "删除搬家任务",
		"delete.f":           "从 banjia 中删除此任务及其帐号、进度、记录和保存的密码。已搬到新邮箱的邮件不受影响。",
		"delete.confirm":     "我明白: 删除后无法恢复",
		"delete.unconfirmed": "请勾选确认后再删除。",
		"deleted":            "搬家任务 %s 已删除",
	},
}

// accountStatesFor lists the states the account actions' filter offers.
func accountFilterStates() []string {
	out := []string{""}
	for _, st := range state.States {
		out = append(out, string(st))
	}
	return out
}

// settingsView is the settings page.
type settingsView struct {
	S       *migrate.Settings
	Renames []string
	Running bool
}

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	set, err := s.m.Settings(id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	v := view{CSRF: ss.csrf, Admin: true, Data: settingsView{S: set, Renames: set.RenameList(), Running: s.m.Running(id)}}
	v.Error, v.Notice = s.sess.takeFlash(ss)
	s.render(w, r, "settings", http.StatusOK, v)
}

// addressesOf reads the accounts a form or a request names: one a line,
// or separated by spaces or commas.
func addressesOf(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ' ' || r == ',' || r == '\t' })
}

func (s *Server) accountForm(w http.ResponseWriter, r *http.Request, ss *session) {
	id, op := r.PathValue("id"), r.PathValue("op")
	lang := langOf(r, s.cfg.Lang)
	req := migrate.AccountRequest{Op: op, Accounts: addressesOf(r.PostFormValue("accounts")), State: r.PostFormValue("state")}
	if len(req.Accounts) > 0 {
		// Names typed win over the state left selected.
		req.State = ""
	}
	ids, err := s.m.AccountControl(id, req, who(ss))
	if err != nil {
		s.sess.flash(ss, err.Error(), "")
	} else {
		s.sess.flash(ss, "", tr(lang, "acct.done", tr(lang, "acct.op."+op), len(ids), strings.Join(ids, ", ")))
	}
	http.Redirect(w, r, "/admin/jobs/"+url.PathEscape(id), http.StatusSeeOther)
}

func (s *Server) deleteForm(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	lang := langOf(r, s.cfg.Lang)
	if r.PostFormValue("confirm") == "" {
		s.sess.flash(ss, tr(lang, "delete.unconfirmed"), "")
		http.Redirect(w, r, "/admin/jobs/"+url.PathEscape(id)+"/settings", http.StatusSeeOther)
		return
	}
	if err := s.m.Delete(id, who(ss)); err != nil {
		s.sess.flash(ss, err.Error(), "")
		http.Redirect(w, r, "/admin/jobs/"+url.PathEscape(id)+"/settings", http.StatusSeeOther)
		return
	}
	s.sess.flash(ss, "", tr(lang, "deleted", id))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (s *Server) apiAccountControl(w http.ResponseWriter, r *http.Request, who string) {
	var req migrate.AccountRequest
	if err := readBody(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	if req.Op != "" && req.Op != r.PathValue("op") {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "the body's op and the URL's differ"})
		return
	}
	req.Op = r.PathValue("op")
	id := r.PathValue("id")
	ids, err := s.m.AccountControl(id, req, who)
	if err != nil {
		status := http.StatusConflict
		if errors.Is(err, state.ErrNotFound) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, apiError{Error: err.Error()})
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"op": req.Op, "accounts": ids})
}

func (s *Server) apiSettings(w http.ResponseWriter, r *http.Request, _ string) {
	set, err := s.m.Settings(r.PathValue("id"))
	if errors.Is(err, state.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, set)
}

func (s *Server) apiDelete(w http.ResponseWriter, r *http.Request, who string) {
	id := r.PathValue("id")
	if err := s.m.Delete(id, who); err != nil {
		status := http.StatusConflict
		if errors.Is(err, state.ErrNotFound) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": id})
}

// folderChoices reads the form's or the API's renames and excludes into
// the job's options.
func folderChoices(renames, excludes []string, o *state.Options) error {
	var err error
	if o.Renames, err = migrate.ParseRenames(renames); err != nil {
		return err
	}
	for _, e := range excludes {
		if e = strings.TrimSpace(e); e != "" {
			o.Excludes = append(o.Excludes, e)
		}
	}
	return migrate.CheckFolderChoices(*o)
}

// lines splits a textarea into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
