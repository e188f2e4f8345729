package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Sessions live in memory: a restart signs everyone out, which is the
// safe side for a tool that runs for days. The portal keeps no user table
// of its own; a member session exists only after the new mail server
// accepted the member's login.

const (
	sessionCookie = "banjia_session"
	sessionTTL    = 12 * time.Hour
)

type session struct {
	id    string
	csrf  string
	admin bool
	// adminName is who signed in to the dashboard ("" with the API token).
	adminName string
	viewer    bool   // signed in as a viewer: looks, changes nothing
	member    string // the new address, once signed in
	job       string // the member's job
	sealed    []byte // the member's new password, sealed, until the account holds it
	expires   time.Time
	// A message for the next page (after a redirect), kept here rather
	// than in the URL, where anyone could write one.
	flashErr, flashNote string
}

type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[c.Value]
	if ss == nil || time.Now().After(ss.expires) {
		delete(s.m, c.Value)
		return nil
	}
	return ss
}

// ensure returns the request's session, creating an anonymous one (which
// carries the CSRF token of the sign-in forms).
func (s *sessions) ensure(w http.ResponseWriter, r *http.Request, secure bool) *session {
	if ss := s.get(r); ss != nil {
		return ss
	}
	return s.create(w, secure, nil)
}

// create starts a new session; from's signed-in state is not carried
// over, so a session id known before sign-in is worthless after it.
func (s *sessions) create(w http.ResponseWriter, secure bool, old *session) *session {
	ss := &session{id: randomToken(), csrf: randomToken(), expires: time.Now().Add(sessionTTL)}
	s.mu.Lock()
	if old != nil {
		delete(s.m, old.id)
	}
	// Expired sessions go when new ones come.
	for id, o := range s.m {
		if time.Now().After(o.expires) {
			delete(s.m, id)
		}
	}
	s.m[ss.id] = ss
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ss.id, Path: "/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
	return ss
}

func (s *sessions) flash(ss *session, errMsg, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.flashErr, ss.flashNote = errMsg, note
}

func (s *sessions) takeFlash(ss *session) (errMsg, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	errMsg, note = ss.flashErr, ss.flashNote
	ss.flashErr, ss.flashNote = "", ""
	return errMsg, note
}

func (s *sessions) drop(w http.ResponseWriter, ss *session, secure bool) {
	if ss != nil {
		s.mu.Lock()
		delete(s.m, ss.id)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// csrfOK checks a form's (or a script's header) CSRF token against the
// session's.
func csrfOK(r *http.Request, ss *session) bool {
	if ss == nil {
		return false
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}

// lockout counts failed sign-ins and password checks per key and locks a
// key out after too many in a window. A key names what is tried and from
// where ("login:ADDRESS@CLIENT", "admin:NAME@CLIENT"), so a stranger who types
// wrong passwords locks out only himself, not the member or the admin.
// Two wider keys bound what many tries can do: "ip:CLIENT" (every name one
// client tries, locked at 4 times the limit: a shared office NAT) and
// "any:NAME" (one name tried from every client, at 10 times: a spread-out
// guesser). The "any:" key is never locked: a guesser with a dozen
// addresses would lock the real admin or member out. Past its limit every
// attempt for the name waits instead, longer with each failure up to
// maxDelay, which bounds the guesses a second; the right password still
// works. Success clears only the narrow key.
type lockout struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	lock   time.Duration
	// maxDelay is the longest wait an "any:" key past its limit imposes.
	maxDelay time.Duration
	fails    map[string][]time.Time
	until    map[string]time.Time
	now      func() time.Time
	// spread, when set, is told (outside the lock) when an "any:" key
	// reaches its limit: the attempts start to wait.
	spread func(key string, failures int)
}

func newLockout(max int, window, lock, maxDelay time.Duration) *lockout {
	return &lockout{max: max, window: window, lock: lock, maxDelay: maxDelay, fails: map[string][]time.Time{},
		until: map[string]time.Time{}, now: time.Now}
}

func (l *lockout) limit(k string) int {
	switch {
	case strings.HasPrefix(k, "ip:"):
		return l.max * 4
	case strings.HasPrefix(k, "any:"):
		return l.max * 10
	}
	return l.max
}

// locked says how long the first locked key stays locked.
func (l *lockout) locked(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		if u, ok := l.until[k]; ok {
			if now.Before(u) {
				return u.Sub(now)
			}
			delete(l.until, k)
		}
	}
	return 0
}

// delay is how long an attempt on these keys waits before it is checked:
// nothing until an "any:" key reaches its limit within the window, then
// from a fortieth of maxDelay, doubling with each failure, up to maxDelay.
func (l *lockout) delay(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var d time.Duration
	for _, k := range keys {
		if !strings.HasPrefix(k, "any:") {
			continue
		}
		n := 0
		for _, t := range l.fails[k] {
			if now.Sub(t) < l.window {
				n++
			}
		}
		over := n - l.limit(k)
		if over < 0 {
			continue
		}
		kd := l.maxDelay / 40
		for i := 0; i < over && kd < l.maxDelay; i++ {
			kd *= 2
		}
		d = max(d, min(kd, l.maxDelay))
	}
	return d
}

// fail records a failure against every key and says whether one of them
// is now locked.
func (l *lockout) fail(keys ...string) bool {
	l.mu.Lock()
	now := l.now()
	if len(l.fails)+len(l.until) > maxLockKeys {
		l.prune(now)
	}
	lockedNow := false
	var spread []string
	var spreadN []int
	for _, k := range keys {
		var recent []time.Time
		for _, t := range l.fails[k] {
			if now.Sub(t) < l.window {
				recent = append(recent, t)
			}
		}
		recent = append(recent, now)
		limit := l.limit(k)
		if len(recent) > limit+64 {
			// Past the limit only the count up to the longest wait matters.
			recent = recent[len(recent)-limit-64:]
		}
		l.fails[k] = recent
		switch {
		case strings.HasPrefix(k, "any:"):
			if len(recent) == limit {
				spread, spreadN = append(spread, k), append(spreadN, len(recent))
			}
		case len(recent) >= limit:
			l.until[k] = now.Add(l.lock)
			delete(l.fails, k)
			lockedNow = true
		}
	}
	tell := l.spread
	l.mu.Unlock()
	if tell != nil {
		for i, k := range spread {
			tell(k, spreadN[i])
		}
	}
	return lockedNow
}

// maxLockKeys is how many keys the lockout holds before it drops those
// whose failures and locks are over: every name a guesser types is a key.
const maxLockKeys = 10000

// prune drops keys with no failure in the window and no lock in force.
func (l *lockout) prune(now time.Time) {
	for k, ts := range l.fails {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= l.window {
			delete(l.fails, k)
		}
	}
	for k, u := range l.until {
		if !now.Before(u) {
			delete(l.until, k)
		}
	}
}

func (l *lockout) succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if !strings.HasPrefix(k, "ip:") && !strings.HasPrefix(k, "any:") {
			delete(l.fails, k)
		}
	}
}
