package state

import (
	"fmt"
	"strings"
	"time"
)

// Who acted, as the event log (搬家查询) keeps it in Event.Who: a kind and
// a name, "kind:name", so that the log can be filtered by either, and
// shown in the reader's language. The kinds are the doors an action comes
// through:
//
//	admin:NAME    a dashboard admin ("admin:" for the one configured admin)
//	token:NAME    the JSON API with the named token
//	cli:USER@HOST a banjia command, by the operating system's user and host
//	member:ADDR   a member in the portal, by the new address
//	banjia        the engine itself
type Actor string

// Engine is the engine acting on its own: copying, finishing, retrying.
const Engine Actor = "banjia"

// Actor kinds, as filters name them.
const (
	ActorAdmin  = "admin"
	ActorToken  = "token"
	ActorCLI    = "cli"
	ActorMember = "member"
	ActorEngine = "banjia"
)

// AdminActor is a dashboard admin ("" is the one configured admin).
func AdminActor(name string) string { return ActorAdmin + ":" + name }

// TokenActor is the API used with the named token.
func TokenActor(name string) string { return ActorToken + ":" + name }

// CLIActor is a command run by user on host.
func CLIActor(user, host string) string { return ActorCLI + ":" + user + "@" + host }

// MemberActor is a member in the portal, by the new address.
func MemberActor(address string) string { return ActorMember + ":" + address }

// Kind is the door the actor came through; "" for a value recorded before
// actors were (or any other text).
func (a Actor) Kind() string {
	if a == Engine {
		return ActorEngine
	}
	k, _, ok := strings.Cut(string(a), ":")
	switch {
	case !ok:
		return ""
	case k == ActorAdmin, k == ActorToken, k == ActorCLI, k == ActorMember:
		return k
	}
	return ""
}

// Name is who the actor is within its kind.
func (a Actor) Name() string {
	if a.Kind() == "" || a == Engine {
		return ""
	}
	_, n, _ := strings.Cut(string(a), ":")
	return n
}

// String is the actor in English, as event messages name it.
func (a Actor) String() string { return a.Text("en") }

// Text is the actor as a person reads it, in lang.
func (a Actor) Text(lang string) string {
	zh := Lang(lang) == "zh"
	n := a.Name()
	switch a.Kind() {
	case ActorEngine:
		if zh {
			return "banjia（系统）"
		}
		return "banjia"
	case ActorAdmin:
		switch {
		case zh && n == "":
			return "管理员（管理后台）"
		case zh:
			return "管理员 " + n + "（管理后台）"
		case n == "":
			return "the admin (dashboard)"
		}
		return "admin " + n + " (dashboard)"
	case ActorToken:
		if zh {
			return "API 令牌 " + n
		}
		return "API token " + n
	case ActorCLI:
		if zh {
			return n + "（命令行）"
		}
		return n + " (command line)"
	case ActorMember:
		if zh {
			return "成员 " + n + "（自助页面）"
		}
		return "member " + n + " (portal)"
	}
	return string(a)
}

// Matches says whether the actor is the one a filter names: a whole value
// ("admin:alice", "banjia"), a kind ("admin", "cli"), or part of a name
// ("alice", "ops@").
func (a Actor) Matches(filter string) bool {
	f := strings.ToLower(strings.TrimSpace(filter))
	switch {
	case f == "":
		return true
	case strings.EqualFold(string(a), f):
		return true
	case f == ActorAdmin || f == ActorToken || f == ActorCLI || f == ActorMember || f == ActorEngine:
		return a.Kind() == f
	case strings.Contains(f, ":"):
		return false
	}
	return a.Kind() != "" && strings.Contains(strings.ToLower(a.Name()), f)
}

// Event results, as the log is filtered by them.
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultPartial = "partial"
	ResultWarning = "warning"
	ResultInfo    = "info"
)

// Results lists the results in the order filters offer them.
var Results = []string{ResultOK, ResultFailed, ResultPartial, ResultWarning, ResultInfo}

// Result says how what the event records went, from its kind.
func (e *Event) Result() string {
	switch {
	case strings.HasSuffix(e.Kind, ".failed"):
		return ResultFailed
	case strings.HasSuffix(e.Kind, ".partial"):
		return ResultPartial
	case e.Kind == "warning":
		return ResultWarning
	case e.Kind == "account.succeeded", e.Kind == "account.synced", e.Kind == "job.completed", e.Kind == "job.synced":
		return ResultOK
	}
	return ResultInfo
}

// EventQuery picks events of the log. Job, Account and the time range are
// cursor ranges over the log's indexes; kinds, results and actors are
// tested on the events in that range.
type EventQuery struct {
	Job     string `json:",omitempty"`
	Account string `json:",omitempty"` // within Job ("" job: any job)
	// Since (inclusive) and Until (exclusive) bound the events' times.
	Since time.Time `json:",omitempty"`
	Until time.Time `json:",omitempty"`
	// Kinds: "account.failed", or every kind under a prefix ("account",
	// "account.", "account.*").
	Kinds   []string `json:",omitempty"`
	Results []string `json:",omitempty"`
	Who     []string `json:",omitempty"` // see Actor.Matches
	// Oldest lists oldest first (an export); else newest first (a page).
	Oldest bool `json:",omitempty"`
	// From is the Next of the page before (EventPage.Next).
	From  string `json:",omitempty"`
	Limit int    `json:",omitempty"` // 0: every event (EachEvent); a page caps it
}

// Match tests an event against every part of the query but From and Limit:
// what the indexes find is tested again, and a follower of the live log
// tests what arrives.
func (q *EventQuery) Match(e *Event) bool {
	if q.Job != "" && e.Job != q.Job || q.Account != "" && e.Account != q.Account {
		return false
	}
	if !q.Since.IsZero() && e.Time.Before(q.Since) || !q.Until.IsZero() && !e.Time.Before(q.Until) {
		return false
	}
	return q.matchRest(e)
}

func (q *EventQuery) matchRest(e *Event) bool {
	if len(q.Kinds) > 0 && !anyOf(q.Kinds, func(k string) bool { return kindMatches(e.Kind, k) }) {
		return false
	}
	if len(q.Results) > 0 && !anyOf(q.Results, func(r string) bool { return strings.EqualFold(strings.TrimSpace(r), e.Result()) }) {
		return false
	}
	if len(q.Who) > 0 && !anyOf(q.Who, func(w string) bool { return Actor(e.Who).Matches(w) }) {
		return false
	}
	return true
}

func anyOf(list []string, f func(string) bool) bool {
	for _, s := range list {
		if f(s) {
			return true
		}
	}
	return false
}

func kindMatches(kind, filter string) bool {
	f := strings.ToLower(strings.TrimSpace(filter))
	f = strings.TrimSuffix(f, "*")
	if strings.HasSuffix(f, ".") {
		return strings.HasPrefix(kind, f)
	}
	return kind == f || strings.HasPrefix(kind, f+".")
}

// ParseEventQuery reads a query as the CLI's flags and the audit page's
// form give it, by name: job, account, since, until, kind, result, who.
// Lists are comma-separated; times are a date, a date and time (in loc),
// RFC 3339, or a span back from now ("24h", "7d").
func ParseEventQuery(get func(string) string, now time.Time, loc *time.Location) (EventQuery, error) {
	q := EventQuery{Job: strings.TrimSpace(get("job")), Account: strings.TrimSpace(get("account"))}
	var err error
	if q.Since, err = parseEventTime(get("since"), now, loc, false); err != nil {
		return q, fmt.Errorf("since: %w", err)
	}
	if q.Until, err = parseEventTime(get("until"), now, loc, true); err != nil {
		return q, fmt.Errorf("until: %w", err)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, fmt.Errorf("since %s is not before until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	q.Kinds = splitList(get("kind"))
	q.Who = splitList(get("who"))
	for _, r := range splitList(get("result")) {
		if !anyOf(Results, func(k string) bool { return strings.EqualFold(k, r) }) {
			return q, fmt.Errorf("result %q: want one of %s", r, strings.Join(Results, ", "))
		}
		q.Results = append(q.Results, strings.ToLower(r))
	}
	return q, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseEventTime reads a time bound; a bare date as an end (until) means
// the end of that day.
func parseEventTime(s string, now time.Time, loc *time.Location, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if loc == nil {
		loc = time.Local
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n && days >= 0 {
			return now.AddDate(0, 0, -days), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		if end {
			return t.AddDate(0, 0, 1), nil
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: give 2026-01-31, \"2026-01-31 08:00\", RFC 3339, or a span back from now such as 24h or 7d", s)
}
