package web

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/banjia-mail/banjia/migrate"
	"github.com/banjia-mail/banjia/state"
)

// A job's page shows one page of its accounts (pageSize rows) under the
// job's totals, which the state keeps per job (state.Totals): a job of
// 100,000 accounts renders as fast as one of 100.
//
// The page then updates itself by asking /admin/jobs/{id}/live for what
// changed on it (live.js): it sends the hash of the header it shows and
// of each row, and the newest event it knows; the answer carries only the
// parts whose hash differs, rendered by the same templates as the page,
// and the events since. A quiet second costs a request of about a
// kilobyte and an answer of a few bytes; a running job's, the rows that
// moved. The page's script needs no wording or markup of its own, and the
// content policy (default-src 'self') stays as it is.

// pageSize is how many accounts a job's page lists.
const pageSize = 100

// eventsShown is how many of a job's newest events its page lists.
const eventsShown = 200

// jobView is a job's page: the table row, one page of the accounts
// (filtered by state), its events.
type jobView struct {
	Row      jobRow
	Filter   string
	States   []string
	Accounts []accountRow
	Events   []*state.Event
	// Retryable counts the accounts that failed or finished with
	// failures; CanRetry: the Retry button is offered (the job is not
	// paused or ended).
	Retryable int
	CanRetry  bool
	Verify    *verification // the last verification, if any

	// Page (from 1) of Pages; Total accounts pass the filter; First and
	// Last number the rows shown (1-based).
	Page, Pages, Total, First, Last int
	Links                           []pageLink
	// Head is the page's header (totals, buttons, filters, page links),
	// rendered before the rest for its hash HeadHash.
	Head     template.HTML
	HeadHash string
	// Feed is where the page asks for what changed; EventSeq the newest
	// event of any job when the page was made.
	Feed     string
	EventSeq uint64
}

// accountRow is an account on its job's page.
type accountRow struct {
	state.Account
	// Waiting: listed in a member-triggered job, its member has not typed
	// the old password yet; it has no counts to show.
	Waiting bool
	// Cells is the row's content and Hash its hash, for the live updates.
	Cells template.HTML
	Hash  string
	Class string
}

// pageLink is one link of the pager; Page 0 is a gap (…).
type pageLink struct {
	Page    int
	Href    string
	Current bool
	Name    string // "prev", "next" or the number
}

var accountStates = []string{"all", "not_started", "in_progress", "paused", "succeeded", "partial", "failed", "abandoned"}

func accountIn(st state.AccountState, filter string) bool {
	switch filter {
	case "", "all":
		return true
	case "in_progress":
		return st == state.AccountRunning || st == state.AccountPreparing
	}
	return string(st) == filter
}

// filterStates are the states a filter of the page shows (nil: all).
func filterStates(filter string) []state.AccountState {
	switch filter {
	case "", "all":
		return nil
	case "in_progress":
		return []state.AccountState{state.AccountPreparing, state.AccountRunning}
	}
	return []state.AccountState{state.AccountState(filter)}
}

// errNoJob answers a page or feed of a job that does not exist.
var errNoJob = errors.New("no such job")

// jobPageView builds a job's page for the request's filter and page.
func (s *Server) jobPageView(r *http.Request, ss *session) (view, error) {
	id := r.PathValue("id")
	q := r.URL.Query()
	filter := q.Get("state")
	if filter == "" {
		filter = "all"
	}
	if err := checkStateFilter(filter); err != nil {
		return view{}, err
	}
	page := 1
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return view{}, fmt.Errorf("page %q: want a page number from 1", p)
		}
		page = n
	}
	sm, err := s.m.Summary(id)
	if err != nil {
		if errors.Is(err, state.ErrNotFound) {
			return view{}, errNoJob
		}
		return view{}, err
	}
	v := jobView{Row: rowOf(sm, s.m.Err(id)), Filter: filter, States: accountStates}
	v.Total = v.Row.All
	if filter != "all" {
		v.Total = v.Row.N[filter]
	}
	v.Pages = max(1, (v.Total+pageSize-1)/pageSize)
	v.Page = min(page, v.Pages)
	accts, err := s.m.AccountPage(id, filterStates(filter), (v.Page-1)*pageSize, pageSize)
	if err != nil {
		return view{}, err
	}
	if len(accts) > 0 {
		v.First, v.Last = (v.Page-1)*pageSize+1, (v.Page-1)*pageSize+len(accts)
	}
	v.Links = pager(id, filter, v.Page, v.Pages)
	v.Retryable = v.Row.Failures
	switch sm.Job.State {
	case state.JobRunning, state.JobCompleted:
		v.CanRetry = v.Retryable > 0
	}
	v.Verify = s.verifies.get(id)
	pv := view{CSRF: ss.csrf, Admin: true, Viewer: ss.viewer, Lang: langOf(r, s.cfg.Lang), Refresh: true}
	if err := s.jobParts(&pv, &v, &sm.Job, accts); err != nil {
		return view{}, err
	}
	v.Feed = "/admin/jobs/" + url.PathEscape(id) + "/live?" + url.Values{"state": {filter}, "page": {strconv.Itoa(v.Page)}}.Encode()
	pv.Data = v
	return pv, nil
}

// jobParts renders a job page's account rows and header into v, each
// with its hash, for the page and its live updates.
func (s *Server) jobParts(pv *view, v *jobView, job *state.Job, accts []state.Account) error {
	t := s.pages["job"]
	for i := range accts {
		a := accountRow{Account: accts[i], Waiting: job.AwaitingMember(&accts[i])}
		if a.State == state.AccountFailed || a.State == state.AccountPartial {
			a.Class = "bad"
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "acct-cells", rowData{Lang: pv.Lang, A: a}); err != nil {
			return err
		}
		a.Cells = template.HTML(buf.String())
		a.Hash = hashOf(a.Class, buf.Bytes())
		v.Accounts = append(v.Accounts, a)
	}
	pv.Data = *v
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "live-head", *pv); err != nil {
		return err
	}
	v.Head, v.HeadHash = template.HTML(buf.String()), hashOf("", buf.Bytes())
	return nil
}

// rowData is what the acct-cells template renders.
type rowData struct {
	Lang string
	A    accountRow
}

func hashOf(class string, b []byte) string {
	h := fnv.New32a()
	h.Write([]byte(class))
	h.Write(b)
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

// pager links the first and last pages, two either side of the current
// one, and the previous and next.
func pager(id, filter string, page, pages int) []pageLink {
	if pages <= 1 {
		return nil
	}
	href := func(p int) string {
		return "/admin/jobs/" + url.PathEscape(id) + "?" + url.Values{"state": {filter}, "page": {strconv.Itoa(p)}}.Encode()
	}
	var out []pageLink
	if page > 1 {
		out = append(out, pageLink{Page: page - 1, Href: href(page - 1), Name: "prev"})
	}
	last := 0
	for p := 1; p <= pages; p++ {
		if p != 1 && p != pages && (p < page-2 || p > page+2) {
			continue
		}
		if last != 0 && p > last+1 {
			out = append(out, pageLink{})
		}
		out = append(out, pageLink{Page: p, Href: href(p), Current: p == page, Name: strconv.Itoa(p)})
		last = p
	}
	if page < pages {
		out = append(out, pageLink{Page: page + 1, Href: href(page + 1), Name: "next"})
	}
	return out
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request, ss *session) {
	pv, err := s.jobPageView(r, ss)
	switch {
	case errors.Is(err, errNoJob):
		http.NotFound(w, r)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v := pv.Data.(jobView)
	if v.Events, err = s.store.LatestEvents(r.PathValue("id"), eventsShown); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for i, e := range v.Events {
		v.Events[i] = onPage(pv.Lang, e)
	}
	v.EventSeq = s.store.EventSeq()
	pv.Data = v
	if r.Header.Get("X-Partial") == "" {
		pv.Error, pv.Notice = s.sess.takeFlash(ss)
	}
	s.render(w, r, "job", http.StatusOK, pv)
}

// liveRow is a row of the page that changed: its place, id, class and
// cells, and its new hash.
type liveRow struct {
	I     int           `json:"i"`
	ID    string        `json:"id"`
	Class string        `json:"cls"`
	Hash  string        `json:"h"`
	Cells template.HTML `json:"html"`
}

type liveEvent struct {
	Seq  uint64        `json:"seq"`
	HTML template.HTML `json:"html"`
}

// liveOut is what changed on a job's page.
type liveOut struct {
	Head     template.HTML `json:"head,omitempty"`
	HeadHash string        `json:"head_h,omitempty"`
	Rows     []liveRow     `json:"rows,omitempty"`
	N        int           `json:"n"` // rows on the page now
	Events   []liveEvent   `json:"events,omitempty"`
	EventSeq uint64        `json:"after"`
}

// jobLive answers a job page's script with what changed since the hashes
// it sends (head=, rows= in the page's order) and the events after
// after=.
func (s *Server) jobLive(w http.ResponseWriter, r *http.Request, ss *session) {
	pv, err := s.jobPageView(r, ss)
	switch {
	case errors.Is(err, errNoJob):
		writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	v := pv.Data.(jobView)
	q := r.URL.Query()
	out := liveOut{N: len(v.Accounts)}
	if q.Get("head") != v.HeadHash {
		out.Head, out.HeadHash = v.Head, v.HeadHash
	}
	known := strings.Split(q.Get("rows"), ",")
	for i, a := range v.Accounts {
		if i < len(known) && known[i] == a.Hash {
			continue
		}
		out.Rows = append(out.Rows, liveRow{I: i, ID: a.ID, Class: a.Class, Hash: a.Hash, Cells: a.Cells})
	}
	out.EventSeq = s.store.EventSeq()
	if after, err := strconv.ParseUint(q.Get("after"), 10, 64); err == nil && after < out.EventSeq {
		evs, err := s.store.Events(r.PathValue("id"), after, 0)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		// Newest first, as the table lists them.
		t := s.pages["job"]
		for i := len(evs) - 1; i >= 0 && len(out.Events) < eventsShown; i-- {
			var buf bytes.Buffer
			if err := t.ExecuteTemplate(&buf, "event-cells", onPage(pv.Lang, evs[i])); err != nil {
				writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
				return
			}
			out.Events = append(out.Events, liveEvent{Seq: evs[i].Seq, HTML: template.HTML(buf.String())})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// summary is the job of the request's path, summed, or an API error.
func (s *Server) summary(w http.ResponseWriter, r *http.Request) (*migrate.Summary, bool) {
	sm, err := s.m.Summary(r.PathValue("id"))
	if errors.Is(err, state.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no job " + strconv.Quote(r.PathValue("id"))})
		return nil, false
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return nil, false
	}
	return sm, true
}
