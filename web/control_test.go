package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/internal/sealscan"
	"github.com/banjia-mail/banjia/migrate"
)

// TestAccountControlAPIAndDashboard: while a job copies one account at a
// time, the API pauses the account copying and moves a waiting one to the
// front, the dashboard abandons another, the failed one is retried and then
// abandoned through the API; the paused account stays paused
// with the job running, resumes from the dashboard and finishes with every
// message on the target. The job's settings (查看设置) show its folder
// choices and limits and no secret; it cannot be deleted while it runs,
// and once deleted nothing of it, not even a sealed password on a freed
// page, is left in the state file.
func TestAccountControlAPIAndDashboard(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 4, messages: 300, bad: 3, engine: migrate.Config{Accounts: 1, Lanes: 1}})
	u := s.w.Users
	var out map[string]any
	code := s.api("POST", "/api/jobs", map[string]any{"id": "big", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": s.w.CSV(), "start": true,
		"renames": []string{"Nowhere=Somewhere"}, "excludes": []string{"Nothing*"}}, &out)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	// Bad folder choices are refused with the reason.
	code = s.api("POST", "/api/jobs", map[string]any{"id": "bad", "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
		"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": s.w.CSV(), "renames": []string{"NoEquals"}}, &out)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "want OLD=NEW") {
		t.Fatalf("a rename without '=': %d %v", code, out)
	}
	waitFor(t, "u00 copying", time.Minute, func() bool { return s.accounts("big")[u[0].Old].Counts.Imported > 20 })

	ctl := func(op string, body map[string]any) (int, map[string]any) {
		var res map[string]any
		return s.api("POST", "/api/jobs/big/accounts/"+op, body, &res), res
	}
	if code, res := ctl("first", map[string]any{"accounts": []string{u[3].Old}}); code != 200 {
		t.Fatalf("first: %d %v", code, res)
	}
	if code, res := ctl("pause", map[string]any{"accounts": []string{u[0].Old}}); code != 200 || fmt.Sprint(res["accounts"]) != "["+u[0].Old+"]" {
		t.Fatalf("pause: %d %v", code, res)
	}
	if code, res := ctl("pause", map[string]any{"state": "nonsense"}); code != http.StatusConflict || !strings.Contains(fmt.Sprint(res["error"]), "want one of") {
		t.Fatalf("pause of a state that does not exist: %d %v", code, res)
	}
	admin := s.client("en")
	admin.get("/admin/login")
	admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}})
	code, body := admin.get("/admin/jobs/big")
	if code != 200 || !strings.Contains(body, `id="acct-abandon"`) || !strings.Contains(body, `id="settings-link"`) {
		t.Fatalf("job page: %d %s", code, body)
	}
	code, body = admin.post("/admin/jobs/big/accounts/abandon", url.Values{"accounts": {u[1].Old}})
	if code != 200 || !strings.Contains(body, "Abandon: 1 accounts") {
		t.Fatalf("abandon from the dashboard: %d %s", code, body)
	}
	a0 := s.waitAccount("big", u[0].Old, "paused", 30*time.Second)
	at := a0.Counts.Imported
	if at >= 300 || int64(migratetest.Count(t, s.w.Dst, u[0].New, u[0].NewPW)) != at {
		t.Fatalf("paused u00: %d imported, %d on the target", at, migratetest.Count(t, s.w.Dst, u[0].New, u[0].NewPW))
	}
	s.waitAccount("big", u[3].Old, "succeeded", time.Minute)
	s.waitAccount("big", u[2].Old, "failed", time.Minute)
	if a := s.accounts("big")[u[1].Old]; a.State != "abandoned" || !strings.Contains(a.Reason, "abandoned by the admin (dashboard)") || a.Counts.Imported != 0 {
		t.Fatalf("abandoned u01: %+v", a)
	}
	// The paused account holds the job: running, and not deletable.
	if st := s.jobState("big"); st != "running" {
		t.Fatalf("job with an account paused: %s", st)
	}
	if a := s.accounts("big")[u[0].Old]; a.State != "paused" || a.Counts.Imported != at {
		t.Fatalf("paused u00 moved on: %+v", a)
	}
	if code := s.api("DELETE", "/api/jobs/big", nil, &out); code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "is running") {
		t.Fatalf("delete of a running job: %d %v", code, out)
	}
	var started []string
	var evs []map[string]any
	s.api("GET", "/api/jobs/big/events", nil, &evs)
	for _, e := range evs {
		if e["Kind"] == "account.started" {
			started = append(started, fmt.Sprint(e["Account"]))
		}
	}
	if strings.Join(started, " ") != u[0].Old+" "+u[3].Old+" "+u[2].Old {
		t.Fatalf("start order %v: want u00, u03 (moved to the front), u02", started)
	}

	// The failed account (a wrong old password) is retried by state while
	// the job runs, fails again, and is then abandoned.
	if code, res := ctl("retry", map[string]any{"state": "failed"}); code != 200 || fmt.Sprint(res["accounts"]) != "["+u[2].Old+"]" {
		t.Fatalf("retry: %d %v", code, res)
	}
	waitFor(t, "u02 to run again", time.Minute, func() bool {
		n := 0
		s.api("GET", "/api/jobs/big/events", nil, &evs)
		for _, e := range evs {
			if e["Kind"] == "account.started" && e["Account"] == u[2].Old {
				n++
			}
		}
		return n >= 2 && s.accounts("big")[u[2].Old].State == "failed"
	})
	if code, res := ctl("abandon", map[string]any{"state": "failed"}); code != 200 || fmt.Sprint(res["accounts"]) != "["+u[2].Old+"]" {
		t.Fatalf("abandon: %d %v", code, res)
	}
	if a := s.accounts("big")[u[2].Old]; a.State != "abandoned" || a.Reason != "abandoned by API token api" {
		t.Fatalf("abandoned through the API: %+v", a)
	}

	code, body = admin.post("/admin/jobs/big/accounts/resume", url.Values{"state": {"paused"}})
	if code != 200 || !strings.Contains(body, "Resume: 1 accounts") {
		t.Fatalf("resume from the dashboard: %d %s", code, body)
	}
	s.waitAccount("big", u[0].Old, "succeeded", time.Minute)
	migratetest.SameMail(t, u[0].Old, s.w.Sources()[u[0].Old], s.w.Target(u[0]))
	waitFor(t, "job completed", time.Minute, func() bool { return s.jobState("big") == "completed" && !s.m.Running("big") })

	// Settings: API and page, no secret.
	var set map[string]any
	if code := s.api("GET", "/api/jobs/big/settings", nil, &set); code != 200 {
		t.Fatalf("settings: %d %v", code, set)
	}
	if fmt.Sprint(set["renames"]) != "map[Nowhere:Somewhere]" || fmt.Sprint(set["excludes"]) != "[Nothing*]" || set["mode"] != "passwords" ||
		set["parallel"] != float64(1) || set["accounts"] != float64(4) || set["source"] != "imap+plain://"+s.w.Src.IMAPAddr {
		t.Fatalf("settings: %v", set)
	}
	code, body = admin.get("/admin/jobs/big/settings")
	for _, want := range []string{`id="set-renames"><div>Nowhere=Somewhere</div>`, `id="set-excludes"><div>Nothing*</div>`, "1 accounts at once", `id="delete-form"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("settings page lacks %q: %d %s", want, code, body)
		}
	}

	// The abandoned account's password is kept sealed (it can be retried
	// by name) until the job goes.
	pws := []string{u[1].OldPW}
	if got, err := sealscan.Recoverable(s.w.Path, pws); err != nil || len(got) != 1 {
		t.Fatalf("before the delete, the abandoned account's password is not found in the state file (%v, %v): the check below proves nothing", got, err)
	}
	code, body = admin.post("/admin/jobs/big/delete", url.Values{})
	if code != 200 || !strings.Contains(body, "Tick the box") {
		t.Fatalf("delete without confirmation: %d %s", code, body)
	}
	code, body = admin.post("/admin/jobs/big/delete", url.Values{"confirm": {"1"}})
	if code != 200 || !strings.Contains(body, "Job big deleted") {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code := s.api("GET", "/api/jobs/big", nil, &out); code != http.StatusNotFound {
		t.Fatalf("deleted job: %d", code)
	}
	if evs, _ := s.w.Store.Events("big", 0, 0); len(evs) != 0 {
		t.Fatalf("%d events of the deleted job left", len(evs))
	}
	if accts, _ := s.w.Store.Accounts("big"); len(accts) != 0 {
		t.Fatalf("%d accounts of the deleted job left", len(accts))
	}
	for _, uu := range u {
		pws = append(pws, uu.OldPW, uu.NewPW)
	}
	if got, err := sealscan.Recoverable(s.w.Path, pws); err != nil || len(got) != 0 {
		t.Fatalf("after the delete, passwords are still in the state file: %v, %v", got, err)
	}
	s.noSecrets()
}
