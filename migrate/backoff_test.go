package migrate

import (
	"testing"
	"time"
)

// TestBackoffBounds: whatever the count, the base or a server's hint, a
// wait stays between half a step and the limit, a count of zero or less
// waits like the first failure, and a shift that overflows is the limit,
// not a zero or negative wait (a lane would spin).
func TestBackoffBounds(t *testing.T) {
	cases := []struct {
		name        string
		base, limit time.Duration
		n           int
		lo, hi      time.Duration
	}{
		{"first failure", time.Second, time.Minute, 1, 500 * time.Millisecond, time.Second},
		{"no failure counted yet", time.Second, time.Minute, 0, 500 * time.Millisecond, time.Second},
		{"negative count", time.Second, time.Minute, -3, 500 * time.Millisecond, time.Second},
		{"tenth failure reaches the limit", time.Second, time.Minute, 10, 30 * time.Second, time.Minute},
		{"base above the limit", time.Hour, time.Minute, 1, 30 * time.Second, time.Minute},
		{"shift overflows", 1 << 50, time.Minute, 40, 30 * time.Second, time.Minute},
		// The doubling stops after 16 steps, so that the shift cannot overflow.
		{"count far past the last doubling", time.Millisecond, time.Hour, 1 << 30, time.Millisecond << 15, time.Millisecond << 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := 0; i < 300; i++ {
				if d := backoff(c.base, c.limit, c.n, 0); d < c.lo || d > c.hi {
					t.Fatalf("backoff(%v, %v, %d) = %v, want %v-%v", c.base, c.limit, c.n, d, c.lo, c.hi)
				}
			}
		})
	}
}

// TestBackoffGrowth: the longest wait seen doubles with each failure until
// the limit, and never shrinks as failures go on.
func TestBackoffGrowth(t *testing.T) {
	base, limit := 100*time.Millisecond, 3*time.Second
	longest := func(n int) time.Duration {
		var m time.Duration
		for i := 0; i < 400; i++ {
			m = max(m, backoff(base, limit, n, 0))
		}
		return m
	}
	prev := time.Duration(0)
	for n := 1; n <= 8; n++ {
		step := min(base<<(n-1), limit)
		got := longest(n)
		// 400 draws from [step/2, step]: the longest is within 2% of step
		// but for a chance far below 1e-6.
		if got > step || got < step*98/100 {
			t.Fatalf("failure %d: longest wait %v, want about %v", n, got, step)
		}
		if got < prev*98/100 {
			t.Fatalf("failure %d: longest wait %v shrank from %v", n, got, prev)
		}
		prev = got
	}
}

// TestBackoffServerWait: a wait the server asked for is taken as it is,
// even beyond the limit (waiting less would only be refused again), and a
// zero or negative hint means none was given.
func TestBackoffServerWait(t *testing.T) {
	base, limit := time.Second, 4*time.Second
	for _, hint := range []time.Duration{time.Millisecond, 3 * time.Second, 10 * time.Minute} {
		for n := 1; n < 5; n++ {
			if d := backoff(base, limit, n, hint); d != hint {
				t.Fatalf("hint %v after %d failures: waited %v", hint, n, d)
			}
		}
	}
	for _, hint := range []time.Duration{0, -time.Second} {
		if d := backoff(base, limit, 1, hint); d < base/2 || d > base {
			t.Fatalf("hint %v: waited %v, want the ordinary %v-%v", hint, d, base/2, base)
		}
	}
}
