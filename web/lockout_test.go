package web

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// TestLockoutForgetsOldKeys: every name a guesser types is a key; keys
// whose failures and locks are over are dropped once there are many, and
// a lock still in force is kept.
func TestLockoutForgetsOldKeys(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLockout(2, 15*time.Minute, 15*time.Minute, 10*time.Second)
	l.now = func() time.Time { return now }
	l.fail("login:victim@1.2.3.4")
	if !l.fail("login:victim@1.2.3.4") {
		t.Fatal("two failures did not lock")
	}
	for i := 0; i < maxLockKeys; i++ {
		l.fail(fmt.Sprintf("login:guess%d@5.6.7.8", i))
	}
	now = now.Add(10 * time.Minute) // the guesses' window is not over: nothing goes
	l.fail("login:fresh@9.9.9.9")
	l.fail("login:fresh@9.9.9.9") // locked until +25 min
	if n := len(l.fails); n < maxLockKeys {
		t.Fatalf("dropped keys still in their window: %d left", n)
	}
	now = now.Add(6 * time.Minute) // window over for the guesses, and for the lock
	l.fail("login:late@5.6.7.8")
	if n := len(l.fails) + len(l.until); n > 4 {
		t.Fatalf("%d keys kept after their window", n)
	}
	if l.locked("login:fresh@9.9.9.9") == 0 {
		t.Fatal("pruning dropped a lock in force")
	}
	if l.locked("login:victim@1.2.3.4") != 0 {
		t.Fatal("a lock outlived its time")
	}
	if !l.fail("login:late@5.6.7.8") || l.locked("login:late@5.6.7.8") == 0 {
		t.Fatal("a fresh key does not count any more")
	}
}

func TestClientIP(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	for _, c := range []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:5000", "198.51.100.7", "192.0.2.1"},                          // not a proxy: the header is anyone's
		{"10.0.0.1:5000", "", "10.0.0.1"},                                        // a proxy with no header
		{"10.0.0.1:5000", "198.51.100.7", "198.51.100.7"},                        // one proxy
		{"10.0.0.1:5000", "203.0.113.9, 198.51.100.7, 10.0.0.2", "198.51.100.7"}, // the nearest untrusted hop, not what the client wrote
		{"10.0.0.1:5000", "junk, 198.51.100.7", "198.51.100.7"},
		{"10.0.0.1:5000", "198.51.100.7, junk", "10.0.0.1"}, // nothing left of an unreadable hop is believed
		{"[::1]:5000", "2001:db8::5", "2001:db8::5"},
		{"10.0.0.1:5000", "10.0.0.3, 10.0.0.2", "10.0.0.3"}, // proxies all the way: the farthest
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.clientIP(r); got != c.want {
			t.Errorf("%s with X-Forwarded-For %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

// TestSpreadLimitSlowsNeverLocks: failures for one name from many clients
// never lock the name; past the all-clients limit each attempt waits, from
// a fortieth of the bound, doubling, never past it, and the wait ends
// with the window. The notice comes once, when the limit is reached.
func TestSpreadLimitSlowsNeverLocks(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLockout(2, 15*time.Minute, 15*time.Minute, 8*time.Second) // all-clients limit 20
	l.now = func() time.Time { return now }
	var told []int
	l.spread = func(key string, n int) { told = append(told, n) }
	key := "any:admin:admin"
	var waits []time.Duration
	for i := 0; i < 30; i++ {
		if l.fail(fmt.Sprintf("admin:admin@10.0.0.%d", i), key) && l.locked(key) > 0 {
			t.Fatal("the all-clients key was locked")
		}
		waits = append(waits, l.delay(key))
	}
	if l.locked(key) != 0 {
		t.Fatal("the all-clients key is locked")
	}
	for i, w := range waits[:19] {
		if w != 0 {
			t.Fatalf("failure %d: wait %v before the limit", i+1, w)
		}
	}
	if waits[19] != 200*time.Millisecond || waits[20] != 400*time.Millisecond || waits[29] != 8*time.Second {
		t.Fatalf("waits past the limit: %v", waits[19:])
	}
	if len(told) != 1 || told[0] != 20 {
		t.Fatalf("notices: %v", told)
	}
	now = now.Add(16 * time.Minute)
	if d := l.delay(key); d != 0 {
		t.Fatalf("a wait after the window: %v", d)
	}
}
