package migrate

import (
	"testing"
	"time"
)

// TestPatience: giving up needs both the tries and the time without
// progress; progress starts both again.
func TestPatience(t *testing.T) {
	cases := []struct {
		name     string
		min      int
		budget   time.Duration
		idle     time.Duration // since the last progress when the failures come
		failures int
		want     bool
	}{
		{"three quick failures on a flaky link", 3, 5 * time.Minute, time.Second, 3, false},
		{"many quick failures", 3, 5 * time.Minute, 10 * time.Second, 40, false},
		{"budget spent but too few tries", 3, time.Minute, 2 * time.Minute, 2, false},
		{"budget spent and enough tries", 3, time.Minute, 2 * time.Minute, 3, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPatience(c.min, c.budget)
			p.since = time.Now().Add(-c.idle)
			got := false
			for i := 0; i < c.failures; i++ {
				got = p.failed()
			}
			if got != c.want {
				t.Fatalf("after %d failures %v after progress: give up %v, want %v", c.failures, c.idle, got, c.want)
			}
		})
	}
	p := newPatience(1, time.Minute)
	p.since = time.Now().Add(-2 * time.Minute)
	p.progress()
	if p.failed() {
		t.Fatal("gave up right after progress")
	}
}

// TestBackoff: waits double from the base with jitter (half to all of the
// step), stop at the limit, and a server's hint wins.
func TestBackoff(t *testing.T) {
	base, limit := 250*time.Millisecond, 4*time.Second
	for n, step := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		for i := 0; i < 200; i++ {
			if d := backoff(base, limit, n+1, 0); d < step/2 || d > step {
				t.Fatalf("failure %d: waited %v, want %v-%v", n+1, d, step/2, step)
			}
		}
	}
	if d := backoff(base, limit, 1000, 0); d > limit || d < limit/2 {
		t.Fatalf("after many failures: %v", d)
	}
	if d := backoff(base, limit, 1, 7*time.Second); d != 7*time.Second {
		t.Fatalf("hint ignored: %v", d)
	}
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		seen[backoff(base, limit, 3, 0)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("no jitter: %d distinct waits of 50", len(seen))
	}
}
