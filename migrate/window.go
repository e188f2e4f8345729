package migrate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/banjia-mail/banjia/state"
	"github.com/banjia-mail/banjia/wording"
)

// Window is the daily span of clock time, in a time zone, during which a
// job copies: a shared uplink or an old server busy by day gets the night.
// From == To is the whole day.
type Window struct {
	From, To time.Duration // since midnight
	Zone     *time.Location
	text     string
}

// ParseWindow reads "22:00-07:00" in zone (an IANA name such as
// Asia/Shanghai; "" is the machine's own).
func ParseWindow(s, zone string) (*Window, error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return nil, fmt.Errorf("window %q: want HH:MM-HH:MM, such as 22:00-07:00", s)
	}
	w := &Window{text: strings.TrimSpace(s)}
	var err error
	if w.From, err = clock(from); err != nil {
		return nil, fmt.Errorf("window %q: %v", s, err)
	}
	if w.To, err = clock(to); err != nil {
		return nil, fmt.Errorf("window %q: %v", s, err)
	}
	w.Zone = time.Local
	if zone != "" {
		if w.Zone, err = time.LoadLocation(zone); err != nil {
			return nil, fmt.Errorf("time zone %q: not known (use a name such as Asia/Shanghai or UTC)", zone)
		}
	}
	return w, nil
}

func clock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

func (w *Window) String() string { return w.text + " (" + w.Zone.String() + ")" }

// sinceMidnight is t's clock time in the window's zone. A day with a
// daylight-saving change is taken at its clock face, as a person would.
func (w *Window) sinceMidnight(t time.Time) time.Duration {
	t = t.In(w.Zone)
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
}

// Open reports whether t is inside the window.
func (w *Window) Open(t time.Time) bool {
	c := w.sinceMidnight(t)
	switch {
	case w.From == w.To:
		return true
	case w.From < w.To:
		return c >= w.From && c < w.To
	default: // across midnight
		return c >= w.From || c < w.To
	}
}

// Next is how long from t until Open changes (at most a day).
func (w *Window) Next(t time.Time) time.Duration {
	if w.From == w.To {
		return 24 * time.Hour
	}
	c := w.sinceMidnight(t)
	edge := w.To
	if !w.Open(t) {
		edge = w.From
	}
	d := edge - c
	if d <= 0 {
		d += 24 * time.Hour
	}
	return d
}

// MaxRateMBps bounds a rate cap given in MB/s: 100 GB/s is past any link.
const MaxRateMBps = 100000

// CheckSchedule says why a job's window or rate caps are refused, or nil.
func CheckSchedule(o state.Options) error {
	if o.Window != "" || o.TimeZone != "" {
		if o.Window == "" {
			return fmt.Errorf("time zone %q given without a window (such as 22:00-07:00)", o.TimeZone)
		}
		if _, err := ParseWindow(o.Window, o.TimeZone); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		name string
		v    int64
	}{{"largest rate", o.MaxRate}, {"largest rate per old server", o.MaxRatePerHost}} {
		if c.v < 0 || c.v > MaxRateMBps<<20 {
			return fmt.Errorf("%s: want 0 (no cap) up to %d MB/s", c.name, MaxRateMBps)
		}
		if c.v > 0 && c.v < 16<<10 {
			return fmt.Errorf("%s %d bytes/s: want at least 16 KB/s (0.016 MB/s)", c.name, c.v)
		}
	}
	return nil
}

// RateBytes turns a cap in MB/s into bytes per second.
func RateBytes(mbps float64) int64 {
	if mbps > MaxRateMBps || mbps < 0 {
		return -1
	}
	return int64(mbps * (1 << 20))
}

// jobWindow is the job's window, or nil when it copies at any time.
func jobWindow(job *state.Job) *Window {
	if job.Options.Window == "" {
		return nil
	}
	w, err := ParseWindow(job.Options.Window, job.Options.TimeZone)
	if err != nil {
		// Checked when the job was made; a zone this machine lacks
		// copies at any time rather than never.
		return nil
	}
	return w
}

// checkWindow looks at the window now: outside it, accounts stop at a
// message boundary (as on a pause) and Run waits; inside it, Run goes on.
// It returns how long until the next look.
func (r *Runner) checkWindow(job *state.Job, w *Window) time.Duration {
	now := r.cfg.Now()
	open := w.Open(now)
	r.mu.Lock()
	first := !r.windowSeen
	changed := r.outside == open || first
	r.windowSeen = true
	r.outside = !open
	if changed && !open {
		r.stopRound()
	}
	r.mu.Unlock()
	switch {
	case changed && !open:
		r.eventOf(job.ID, "", "job.window", wording.New("ev.window.out", "job", job.ID, "window", fmt.Sprint(w), "at", now.Add(w.Next(now)).In(w.Zone).Format("15:04")))
	case changed && !first:
		r.eventOf(job.ID, "", "job.window", wording.New("ev.window.in", "job", job.ID, "window", fmt.Sprint(w)))
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return min(w.Next(now), r.cfg.WindowCheck)
}

// watchWindow keeps looking at the window while Run runs: at each edge,
// and at least every WindowCheck (a clock that jumps, a test's clock).
func (r *Runner) watchWindow(ctx context.Context, job *state.Job, w *Window, wait time.Duration) {
	for {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		wait = r.checkWindow(job, w)
	}
}
