package web

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/banjia-mail/banjia/state"
)

// The audit page (搬家查询): the event log filtered by job, account, time
// range, kind, result and who acted, a page at a time, and exported whole
// as CSV or JSON from the dashboard and the API.

func (s *Server) auditRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/events", s.admin(s.auditPage))
	mux.HandleFunc("GET /admin/audit", s.admin(s.auditPage))
	mux.HandleFunc("GET /admin/audit.csv", s.admin(s.auditExport("csv")))
	mux.HandleFunc("GET /admin/audit.json", s.admin(s.auditExport("json")))
	mux.HandleFunc("GET /api/audit", s.api(s.apiAudit))
}

// tokenActor is the API token as the event log names it.
func (s *Server) tokenActor() string {
	name := s.cfg.AdminTokenName
	if name == "" {
		name = "api"
	}
	return state.TokenActor(name)
}

// auditFilters are the names the page's form, its links and the API read.
var auditFilters = []string{"job", "account", "since", "until", "kind", "result", "who"}

// auditPageSize is a page's length unless the request says (n).
const auditPageSize = 100

// auditQuery reads the filters, the page (from) and its length (n).
func auditQuery(r *http.Request) (state.EventQuery, error) {
	v := r.URL.Query()
	q, err := state.ParseEventQuery(v.Get, timeNow(), time.Local)
	if err != nil {
		return q, err
	}
	q.From = v.Get("from")
	q.Limit = auditPageSize
	if n := v.Get("n"); n != "" {
		if q.Limit, err = strconv.Atoi(n); err != nil || q.Limit < 1 || q.Limit > state.MaxEventPage {
			return q, fmt.Errorf("n %q: want a page length from 1 to %d", n, state.MaxEventPage)
		}
	}
	return q, nil
}

// auditView is the audit page.
type auditView struct {
	Form    map[string]string // the filters as given
	Jobs    []string
	Kinds   []string
	Results []string
	Rows    []auditRow
	Count   int
	Took    string // how long the page took to find, shown to the admin
	Next    string // the following (older) page's URL
	CSV     string // the export links, same filters
	JSON    string
}

type auditRow struct {
	*state.Event
	Who    string
	Result string
}

// auditKinds are the kinds offered in the form (any other can be typed in
// the API or the CLI).
var auditKinds = []string{"job", "account", "admin", "job.created", "job.started", "job.paused", "job.resumed", "job.ended", "job.completed",
	"account.started", "account.copying", "account.succeeded", "account.partial", "account.failed", "account.abandoned", "account.paused", "account.resumed",
	"account.enrolled", "message.failed", "folder.failed", "warning"}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, ss *session) {
	lang := langOf(r, s.cfg.Lang)
	v := auditView{Form: map[string]string{}, Kinds: auditKinds, Results: state.Results}
	keep := url.Values{}
	for _, k := range auditFilters {
		if x := r.URL.Query().Get(k); x != "" {
			v.Form[k] = x
			keep.Set(k, x)
		}
	}
	if jobs, err := s.store.Jobs(); err == nil {
		for _, j := range jobs {
			v.Jobs = append(v.Jobs, j.ID)
		}
	}
	v.CSV, v.JSON = "/admin/audit.csv?"+keep.Encode(), "/admin/audit.json?"+keep.Encode()
	q, err := auditQuery(r)
	pv := view{CSRF: ss.csrf, Admin: true, Data: &v, Refresh: r.URL.Query().Get("from") == ""}
	if err != nil {
		pv.Error = err.Error()
		s.render(w, r, "audit", http.StatusBadRequest, pv)
		return
	}
	t0 := time.Now()
	page, err := s.store.QueryEvents(q)
	if err != nil {
		pv.Error = err.Error()
		s.render(w, r, "audit", http.StatusBadRequest, pv)
		return
	}
	v.Took = time.Since(t0).Round(10 * time.Microsecond).String()
	for _, e := range page.Events {
		v.Rows = append(v.Rows, auditRow{Event: onPage(lang, e), Who: state.Actor(e.Who).Text(lang), Result: e.Result()})
	}
	v.Count = len(v.Rows)
	if page.Next != "" {
		next := url.Values{}
		for k, x := range keep {
			next[k] = x
		}
		next.Set("from", page.Next)
		if n := r.URL.Query().Get("n"); n != "" {
			next.Set("n", n)
		}
		v.Next = "/admin/audit?" + next.Encode()
	}
	s.render(w, r, "audit", http.StatusOK, pv)
}

// auditExport writes every event the filters pick, oldest first, as a
// file to download; the page's from and n are not used.
func (s *Server) auditExport(format string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, _ *session) {
		s.exportEvents(w, r, format)
	}
}

// apiAudit is the audit log in the API: one page as JSON ({"events": [...],
// "next": "..."}), or with format=csv or format=json every event the
// filters pick, as a download.
func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, _ string) {
	if f := r.URL.Query().Get("format"); f != "" {
		if f != "csv" && f != "json" {
			writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("format %q: want csv or json", f)})
			return
		}
		s.exportEvents(w, r, f)
		return
	}
	q, err := auditQuery(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	page, err := s.store.QueryEvents(q)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	out := struct {
		Events []EventOut `json:"events"`
		Next   string     `json:"next,omitempty"`
	}{Events: []EventOut{}, Next: page.Next}
	lang := langOf(r, s.cfg.Lang)
	for _, e := range page.Events {
		out.Events = append(out.Events, EventJSON(lang, e))
	}
	writeJSON(w, http.StatusOK, out)
}

// EventOut is an event as the exports and the API give it (and banjia
// logs --format json).
type EventOut struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Job     string    `json:"job,omitempty"`
	Account string    `json:"account,omitempty"`
	Kind    string    `json:"kind"`
	Result  string    `json:"result"`
	Who     string    `json:"who,omitempty"`
	WhoText string    `json:"who_text,omitempty"`
	Message string    `json:"message"`
	// Code and Args are Message as a catalogue code, for programs that
	// word it themselves; Message is in the language asked for.
	Code string            `json:"code,omitempty"`
	Args map[string]string `json:"args,omitempty"`
}

// EventJSON is an event as the exports give it, the actor also in lang.
func EventJSON(lang string, e *state.Event) EventOut {
	out := EventOut{Seq: e.Seq, Time: e.Time, Job: e.Job, Account: e.Account, Kind: e.Kind, Result: e.Result(), Who: e.Who, Message: e.Text(lang)}
	if e.Why != nil {
		out.Code, out.Args = e.Why.Code, e.Why.Args
	}
	if e.Who != "" {
		out.WhoText = state.Actor(e.Who).Text(lang)
	}
	return out
}

func (s *Server) exportEvents(w http.ResponseWriter, r *http.Request, format string) {
	q, err := auditQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q.From, q.Limit, q.Oldest = "", 0, true
	lang := langOf(r, s.cfg.Lang)
	name := "banjia-events"
	if q.Job != "" {
		name += "-" + q.Job
	}
	h := w.Header()
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+"."+format))
	var write func(*state.Event) error
	var finish func() error
	switch format {
	case "csv":
		h.Set("Content-Type", "text/csv; charset=utf-8")
		// Excel reads a CSV without the BOM as the locale's code page.
		io.WriteString(w, "\ufeff")
		cw := csv.NewWriter(w)
		cw.Write(EventCSVHeader)
		write = func(e *state.Event) error { return cw.Write(EventCSVRecord(lang, e)) }
		finish = func() error { cw.Flush(); return cw.Error() }
	default:
		h.Set("Content-Type", "application/json")
		io.WriteString(w, "[")
		first := true
		enc := json.NewEncoder(w)
		write = func(e *state.Event) error {
			if !first {
				io.WriteString(w, ",")
			}
			first = false
			return enc.Encode(EventJSON(lang, e))
		}
		finish = func() error { _, err := io.WriteString(w, "]\n"); return err }
	}
	// The response has begun: an error now can only cut it short.
	if err := s.store.EachEvent(q, write); err != nil {
		s.cfg.Log.Error("export", "err", err)
		return
	}
	finish()
}

// EventCSVHeader and EventCSVRecord are the CSV export's columns.
var EventCSVHeader = []string{"seq", "time", "job", "account", "kind", "result", "who", "who_text", "message"}

// EventCSVRecord is one event as a CSV row, the actor also in lang.
func EventCSVRecord(lang string, e *state.Event) []string {
	return []string{strconv.FormatUint(e.Seq, 10), e.Time.Format(time.RFC3339), e.Job, e.Account, e.Kind, e.Result(),
		e.Who, state.Actor(e.Who).Text(lang), e.Text(lang)}
}

// memberHistory is what happened to a member's own account, newest first:
// the portal shows when and by whom, in the member's words, not the
// admin's reasons (they name the old server's addresses and replies).
func (s *Server) memberHistory(job *state.Job, a *state.Account) []auditRow {
	if a == nil {
		return nil
	}
	page, err := s.store.QueryEvents(state.EventQuery{Job: job.ID, Account: a.ID, Limit: 50})
	if err != nil {
		return nil
	}
	var out []auditRow
	for _, e := range page.Events {
		if memberKinds[e.Kind] {
			out = append(out, auditRow{Event: e, Who: e.Who, Result: e.Result()})
		}
	}
	return out
}

// memberKinds are the events a member reads of their own move.
var memberKinds = map[string]bool{
	"account.enrolled": true, "account.started": true, "account.resumed": true, "account.paused": true,
	"account.succeeded": true, "account.partial": true, "account.failed": true, "account.abandoned": true,
	"account.synced": true, "account.first": true, "account.copying": true,
}

// whoFor is an actor as a member reads it: an admin is the admin, whatever
// their name.
func whoFor(lang, who string) string {
	a := state.Actor(who)
	switch a.Kind() {
	case state.ActorAdmin, state.ActorToken, state.ActorCLI:
		return tr(lang, "who.admin")
	case state.ActorMember:
		return tr(lang, "who.you")
	}
	return tr(lang, "who.banjia")
}

func init() {
	funcs["who"] = whoFor
	for lang, ws := range auditWords {
		for k, w := range ws {
			words[lang][k] = w
		}
	}
}

var auditWords = map[string]map[string]string{
	"en": {
		"audit":        "Event log",
		"audit.filter": "Filter",
		"audit.clear":  "Clear",
		"audit.since":  "From",
		"audit.until":  "Until",
		"audit.kind":   "Kind",
		"audit.result": "Result",
		"audit.who":    "Who acted",
		"audit.any":    "any",
		"audit.hint":   "Times: 2026-01-31, 2026-01-31 08:00, or back from now: 24h, 7d. Who: admin, token, cli, member, banjia, or a name.",
		"audit.shown":  "%d events shown, found in %s",
		"audit.older":  "Older events ›",
		"audit.csv":    "Download CSV",
		"audit.json":   "Download JSON",
		"audit.none":   "No event matches.",
		"audit.job":    "filter, export ›",
		"result.ok":    "succeeded", "result.failed": "failed", "result.partial": "finished with failures",
		"result.warning": "warning", "result.info": "information",
		"history":              "Your move's history",
		"who.admin":            "your admin",
		"who.you":              "you",
		"who.banjia":           "banjia",
		"ev.account.enrolled":  "You typed the old password; the move was queued",
		"ev.account.started":   "The move started",
		"ev.account.resumed":   "The move went on",
		"ev.account.paused":    "The move was paused",
		"ev.account.succeeded": "The move succeeded",
		"ev.account.partial":   "The move finished; some messages were not moved",
		"ev.account.failed":    "The move stopped before it finished",
		"ev.account.abandoned": "The move was stopped",
		"ev.account.synced":    "New mail was copied",
		"ev.account.first":     "The move was put first in the queue",
		"ev.account.copying":   "Signed in to both mailboxes; copying began",
	},
	"zh": {
		"audit":        "搬家查询",
		"audit.filter": "查询",
		"audit.clear":  "清除",
		"audit.since":  "开始时间",
		"audit.until":  "结束时间",
		"audit.kind":   "事件类型",
		"audit.result": "结果",
		"audit.who":    "操作人",
		"audit.any":    "全部",
		"audit.hint":   "时间: 2026-01-31、2026-01-31 08:00, 或从现在往前: 24h、7d。操作人: admin、token、cli、member、banjia, 或名字。",
		"audit.shown":  "显示 %d 条事件, 查询用时 %s",
		"audit.older":  "更早的事件 ›",
		"audit.csv":    "下载 CSV",
		"audit.json":   "下载 JSON",
		"audit.none":   "没有符合条件的事件。",
		"audit.job":    "查询、导出 ›",
		"result.ok":    "成功", "result.failed": "失败", "result.partial": "部分失败",
		"result.warning": "警告", "result.info": "信息",
		"history":              "搬家记录",
		"who.admin":            "管理员",
		"who.you":              "您本人",
		"who.banjia":           "系统",
		"ev.account.enrolled":  "您输入了旧密码, 搬家已排队",
		"ev.account.started":   "开始搬家",
		"ev.account.resumed":   "继续搬家",
		"ev.account.paused":    "搬家已暂停",
		"ev.account.succeeded": "搬家成功",
		"ev.account.partial":   "搬家已结束, 部分邮件没有搬过来",
		"ev.account.failed":    "搬家失败",
		"ev.account.abandoned": "搬家已停止",
		"ev.account.synced":    "已同步新邮件",
		"ev.account.first":     "已优先搬家",
		"ev.account.copying":   "已登录新旧邮箱, 开始复制邮件",
	},
}
