package web

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// The dashboard over a job's shards (banjia serve --shards DIR): the job
// list and job pages of banjia serve, built from the shards' merged
// statuses and behind the same sign-in, with none of the forms that change
// anything. The shards' state files may be on a read-only volume, and an
// order given here would race the one the shards' order file holds: pause,
// resume and end stay with banjia job pause|resume|end --shards DIR, which
// the pages name.

func init() {
	words["en"]["shards.readonly"] = "The merged view of the shards in %s: it shows and changes nothing. Pause, resume or end a job with banjia job pause|resume|end JOB --shards %s"
	words["zh"]["shards.readonly"] = "%s 中各分片的合并视图：只能查看，不能更改。暂停、继续或结束任务请用 banjia job pause|resume|end 任务名 --shards %s"
	words["en"]["shards.readonly.job"] = "The merged view of the shards in %s: it shows and changes nothing. Pause, resume or end this job with banjia job pause|resume|end %s --shards %s"
	words["zh"]["shards.readonly.job"] = "%s 中各分片的合并视图：只能查看，不能更改。暂停、继续或结束此任务请用 banjia job pause|resume|end %s --shards %s"
}

// shardDash serves the dashboard pages of a ShardView.
type shardDash struct {
	v *ShardView
	// s lends its sessions, lockout, sign-in and templates; it has no
	// Manager and so runs and records nothing.
	s *Server
}

func newShardDash(v *ShardView) (*shardDash, error) {
	cfg := Config{AdminUser: v.AdminUser, AdminPassword: v.AdminPassword, AdminToken: v.Token, Admins: v.Admins,
		Viewers: v.Viewers, Lang: v.Lang, SecureCookies: v.SecureCookies, TrustedProxies: v.TrustedProxies, Log: v.Log,
		MaxFailures: 5, FailWindow: 15 * time.Minute, LockFor: 15 * time.Minute, MaxSpreadDelay: DefaultMaxSpreadDelay,
		MaxBody: DefaultMaxBody, MaxUpload: DefaultMaxBody}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, sess: &sessions{m: map[string]*session{}}, started: time.Now(),
		lock: newLockout(cfg.MaxFailures, cfg.FailWindow, cfg.LockFor, cfg.MaxSpreadDelay)}
	s.lock.spread = s.spreadGuessing
	if err := s.parse(); err != nil {
		return nil, err
	}
	return &shardDash{v: v, s: s}, nil
}

// routes adds the sign-in, the job list and the job pages to mux. Nothing
// here takes a POST but signing in and out: a pause or end sent to these
// pages finds no route.
func (d *shardDash) routes(mux *http.ServeMux) {
	s := d.s
	static, _ := fs.Sub(assets, "static")
	page := func(h http.HandlerFunc) http.Handler { return s.headers(s.limitBody(h)) }
	mux.Handle("GET /static/", s.headers(http.StripPrefix("/static/", http.FileServerFS(static))))
	mux.Handle("GET /{$}", page(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
	}))
	mux.Handle("GET /admin/login", page(s.adminLoginPage))
	mux.Handle("POST /admin/login", page(s.adminLogin))
	mux.Handle("POST /logout", page(s.logout))
	mux.Handle("GET /admin", page(s.admin(d.jobs)))
	mux.Handle("GET /admin/jobs/{id}", page(s.admin(d.job)))
}

// summaryOf sums a merged status as the state file sums one job.
func summaryOf(st *migrate.Status) *migrate.Summary {
	sm := &migrate.Summary{Job: st.Job, Attached: st.Attached, Outside: st.Outside, ETA: st.ETA}
	sm.Job.SourceAdminSecret, sm.Job.TargetAdminSecret = nil, nil
	sm.Totals.N = map[state.AccountState]int{}
	for i := range st.Accounts {
		sm.Totals.Count(&st.Accounts[i], 1)
	}
	return sm
}

func (d *shardDash) jobs(w http.ResponseWriter, r *http.Request, ss *session) {
	v := view{CSRF: ss.csrf, Admin: true, Viewer: true, Shards: true, Refresh: true}
	ids, err := d.v.Jobs()
	if err != nil {
		// Before the shards publish their first status, or while the
		// volume is away: the page says so and keeps asking.
		v.Error = err.Error()
	}
	var rows []jobRow
	for _, id := range ids {
		st, err := d.v.Status(id)
		if err != nil {
			// One shard unreadable for now: the job's line says why.
			rows = append(rows, jobRow{Job: state.Job{ID: id}, N: map[string]int{}, Err: err.Error()})
			continue
		}
		rows = append(rows, rowOf(summaryOf(st), nil))
	}
	sort.SliceStable(rows, func(i, k int) bool { return rows[i].Job.Created.After(rows[k].Job.Created) })
	v.Data = rows
	if r.Header.Get("X-Partial") == "" {
		v.Notice = tr(langOf(r, d.s.cfg.Lang), "shards.readonly", d.v.Dir, d.v.Dir)
	}
	d.s.render(w, r, "dashboard", http.StatusOK, v)
}

// job is a job's page over its shards: the merged accounts, filtered and
// paged as banjia serve's job page pages them. It refreshes whole (no
// live feed): the shards' events are not merged here.
func (d *shardDash) job(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	q := r.URL.Query()
	filter := q.Get("state")
	if filter == "" {
		filter = "all"
	}
	if err := checkStateFilter(filter); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	page := 1
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			http.Error(w, "page "+strconv.Quote(p)+": want a page number from 1", http.StatusBadRequest)
			return
		}
		page = n
	}
	st, err := d.v.Status(id)
	if errors.Is(err, state.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sm := summaryOf(st)
	jv := jobView{Row: rowOf(sm, nil), Filter: filter, States: accountStates}
	var in []state.Account
	for _, a := range st.Accounts {
		if accountIn(a.State, filter) {
			a.SourceSecret, a.TargetSecret = nil, nil
			in = append(in, a)
		}
	}
	jv.Total = len(in)
	jv.Pages = max(1, (jv.Total+pageSize-1)/pageSize)
	jv.Page = min(page, jv.Pages)
	lo := (jv.Page - 1) * pageSize
	hi := min(lo+pageSize, len(in))
	if hi > lo {
		jv.First, jv.Last = lo+1, hi
	}
	jv.Links = pager(id, filter, jv.Page, jv.Pages)
	jv.Retryable = jv.Row.Failures
	pv := view{CSRF: ss.csrf, Admin: true, Viewer: true, Shards: true, Lang: langOf(r, d.s.cfg.Lang), Refresh: true}
	if err := d.s.jobParts(&pv, &jv, &sm.Job, in[lo:hi]); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	pv.Data = jv
	if r.Header.Get("X-Partial") == "" {
		pv.Notice = tr(pv.Lang, "shards.readonly.job", d.v.Dir, id, d.v.Dir)
	}
	d.s.render(w, r, "job", http.StatusOK, pv)
}
