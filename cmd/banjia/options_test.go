package main

import (
	"testing"
	"time"

	"github.com/banjia-mail/banjia/state"
)

func TestPeriodStart(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"all": {}, "2y": time.Date(2024, 11, 23, 12, 0, 0, 0, time.UTC), "1y": time.Date(2025, 11, 23, 12, 0, 0, 0, time.UTC),
		"3m": time.Date(2026, 8, 23, 12, 0, 0, 0, time.UTC), "30d": time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC),
	}
	for p, want := range cases {
		got, err := state.PeriodStart(p, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", p, got, err, want)
		}
	}
	if _, err := state.PeriodStart("5w", now); err == nil {
		t.Error("5w accepted")
	}
}

func TestJobNameLast(t *testing.T) {
	got := jobNameLast([]string{"banjia", "--state", "s", "job", "create", "acme", "--from", "x"})
	want := "banjia --state s job create --from x acme"
	if s := join(got); s != want {
		t.Fatalf("%q", s)
	}
	if s := join(jobNameLast([]string{"banjia", "job", "pause", "acme"})); s != "banjia job pause acme" {
		t.Fatalf("%q", s)
	}
}

func join(a []string) string {
	out := ""
	for i, s := range a {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}
