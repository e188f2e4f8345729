package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/internal/sealscan"
	"github.com/banjia-mail/banjia/migrate"
)

// TestCutoverFromDashboardAndAPI: a job created through the API with its
// own retention shows its phase on the dashboard, the job page and the
// API; the Sync button copies the mail that reached the old mailboxes
// since, the API's sync does it again; the Close button asks first, then
// wipes every password, after which the API's sync is refused with the
// reason and the phase reads closed.
func TestCutoverFromDashboardAndAPI(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 3, messages: 20, engine: migrate.Config{Accounts: 2, Lanes: 1}})
	var out map[string]any
	create := map[string]any{"id": "cut", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": s.w.CSV(), "start": true, "keep_credentials": "365d"}
	if code := s.api("POST", "/api/jobs", create, &out); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "want at most 90d") {
		t.Fatalf("a retention of a year: %d %v", code, out)
	}
	create["keep_credentials"] = "7d"
	if code := s.api("POST", "/api/jobs", create, &out); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	settled := func(phase string, syncs float64) func() bool {
		return func() bool {
			var j map[string]any
			s.api("GET", "/api/jobs/cut", nil, &j)
			return j["state"] == "completed" && j["running"] == false && j["phase"] == phase && j["syncs"] == syncs
		}
	}
	waitFor(t, "the first pass", 2*time.Minute, settled("first_pass", 0))
	s.api("GET", "/api/jobs/cut", nil, &out)
	if out["keep_credentials"] != "7d" || out["phase_text"] != "first pass" {
		t.Fatalf("job after the first pass: %v", out)
	}

	// Mail reaches the old mailboxes after the first pass.
	for i, u := range s.w.Users {
		msg := dovecot.Message{Body: []byte(fmt.Sprintf("From: a@elsewhere.test\r\nTo: %s\r\nSubject: late %d\r\nMessage-ID: <late-%d@test>\r\n\r\nafter the MX switch\r\n", u.Old, i, i)),
			Date: time.Date(2026, 12, 3, 10, 0, i, 0, time.UTC)}
		if err := s.w.Src.Deliver(u.Old, "INBOX", []dovecot.Message{msg}); err != nil {
			t.Fatal(err)
		}
	}

	admin := s.client("en")
	admin.get("/admin/login")
	if code, body := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 ||
		!strings.Contains(body, `id="phase-cut">first pass<`) || !strings.Contains(body, `id="sync-cut"`) {
		t.Fatalf("dashboard: %d %s", code, body)
	}
	// The new job form takes the retention too, and refuses a bad one.
	if _, body := admin.get("/admin/jobs/new?mode=member"); !strings.Contains(body, `id="f-keep-credentials" value="14d"`) {
		t.Fatalf("new job form: %s", body)
	}
	form := url.Values{"id": {"formed"}, "mode": {"member"}, "domain": {"old.test"}, "new_domain": {"new.test"},
		"source": {s.endpointURL(s.w.Src.IMAPAddr)}, "target": {s.endpointURL(s.w.Dst.IMAPAddr)}, "keep_credentials": {"-3d"}}
	if code, body := admin.post("/admin/jobs", form); code != http.StatusBadRequest || !strings.Contains(body, "keep credentials -3d: want more than 0") {
		t.Fatalf("form with a bad retention: %d %s", code, body)
	}
	form.Set("keep_credentials", "36h")
	if code, body := admin.post("/admin/jobs", form); code != 200 {
		t.Fatalf("form: %d %s", code, body)
	}
	if s.api("GET", "/api/jobs/formed", nil, &out); out["keep_credentials"] != "36h" {
		t.Fatalf("job made with the form: %v", out)
	}
	if code, body := admin.get("/admin/jobs/cut"); code != 200 || !strings.Contains(body, `id="job-phase">first pass<`) || !strings.Contains(body, `id="close-cut"`) {
		t.Fatalf("job page: %d %s", code, body)
	}
	if code, body := admin.post("/admin/jobs/cut/sync", url.Values{}); code != 200 || !strings.Contains(body, "Job cut is syncing") {
		t.Fatalf("sync button: %d %s", code, body)
	}
	waitFor(t, "the sync", 2*time.Minute, settled("synced", 1))
	after := s.w.Sources()
	for _, u := range s.w.Users {
		migratetest.SameMail(t, u.Old, after[u.Old], s.w.Target(u))
	}
	if code, body := admin.get("/admin/jobs/cut"); code != 200 || !strings.Contains(body, `id="job-phase">synced at `) {
		t.Fatalf("job page after the sync: %d %s", code, body)
	}
	// Again, through the API: nothing new, nothing copied.
	before := s.w.TotalTarget()
	if code := s.api("POST", "/api/jobs/cut/sync", nil, &out); code != http.StatusOK {
		t.Fatalf("API sync: %d %v", code, out)
	}
	waitFor(t, "the second sync", 2*time.Minute, settled("synced", 2))
	if n := s.w.TotalTarget(); n != before {
		t.Fatalf("a sync with nothing new changed the target from %d to %d messages", before, n)
	}

	// Close: the button asks first.
	code, body := admin.post("/admin/jobs/cut/close", url.Values{})
	if code != 200 || !strings.Contains(body, `id="close-confirm"`) || !strings.Contains(body, "every stored password") {
		t.Fatalf("close button: %d %s", code, body)
	}
	if s.jobPhase("cut") != "synced" {
		t.Fatal("the job was closed before the admin confirmed")
	}
	if code, body := admin.post("/admin/jobs/cut/close", url.Values{"confirm": {"1"}}); code != 200 || !strings.Contains(body, "Job cut closed: every stored password is wiped") ||
		strings.Contains(body, `id="sync-cut"`) || strings.Contains(body, `id="close-cut"`) {
		t.Fatalf("close confirmed: %d %s", code, body)
	}
	code = s.api("POST", "/api/jobs/cut/sync", nil, &out)
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "job cut was closed at") || !strings.Contains(fmt.Sprint(out["error"]), "no longer starts or syncs") {
		t.Fatalf("sync after close: %d %v", code, out)
	}
	s.api("GET", "/api/jobs/cut", nil, &out)
	if out["phase"] != "closed" || !strings.HasPrefix(fmt.Sprint(out["phase_text"]), "closed at ") || out["closed"] == nil {
		t.Fatalf("job after close: %v", out)
	}
	var pws []string
	for _, u := range s.w.Users {
		pws = append(pws, u.OldPW, u.NewPW)
	}
	if got, err := sealscan.Recoverable(s.w.Path, pws); err != nil || len(got) > 0 {
		t.Fatalf("passwords readable from the state file after close: %q (%v)", got, err)
	}
	s.noSecrets()
}

func (s *site) jobPhase(id string) string {
	var j map[string]any
	s.api("GET", "/api/jobs/"+id, nil, &j)
	p, _ := j["phase"].(string)
	return p
}
