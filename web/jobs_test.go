package web_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCreateRefusalsLeaveNothing: the dashboard's form and the API create
// jobs through the same checks as banjia job create: a name that needs
// quoting is refused, and a CSV refused part-way leaves no half-made job,
// so the same name works once the CSV is fixed.
func TestCreateRefusalsLeaveNothing(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 2, messages: 1})
	u0, u1 := s.w.Users[0], s.w.Users[1]
	good := fmt.Sprintf("%s,%s,%s,%s\n", u0.Old, u0.New, u0.OldPW, u0.NewPW)
	bad := good + fmt.Sprintf("%s,%s\n", u1.Old, u1.New) // no passwords
	job := func(id, csv string) map[string]any {
		return map[string]any{"id": id, "mode": "passwords", "source": s.endpointURL(s.w.Src.IMAPAddr),
			"target": s.endpointURL(s.w.Dst.IMAPAddr), "accounts": csv}
	}
	var out map[string]any
	if code := s.api("POST", "/api/jobs", job("has space", good), &out); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "job name") {
		t.Fatalf("API, bad name: %d %v", code, out)
	}
	if code := s.api("POST", "/api/jobs", job("api", bad), &out); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "line 2") {
		t.Fatalf("API, bad CSV: %d %v", code, out)
	}
	if code := s.api("GET", "/api/jobs/api", nil, &out); code != http.StatusNotFound {
		t.Fatalf("API: a half-made job stayed behind: %d", code)
	}
	if code := s.api("POST", "/api/jobs", job("api", good), &out); code != http.StatusCreated {
		t.Fatalf("API, after the fix: %d %v", code, out)
	}
	// A new address is in one job at a time: the form's job below takes
	// the same members once this one is ended.
	if code := s.api("POST", "/api/jobs/api/end", nil, &out); code != http.StatusOK {
		t.Fatalf("API, end: %d %v", code, out)
	}

	admin := s.client("en")
	admin.get("/admin/login")
	if code, body := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != http.StatusOK {
		t.Fatalf("admin sign-in: %d\n%s", code, body)
	}
	admin.get("/admin/jobs/new")
	form := func(id, csv string) url.Values {
		return url.Values{"id": {id}, "mode": {"passwords"}, "source": {s.endpointURL(s.w.Src.IMAPAddr)},
			"target": {s.endpointURL(s.w.Dst.IMAPAddr)}, "accounts": {csv}, "period": {"all"}}
	}
	if code, body := admin.post("/admin/jobs", form("a/b", good)); code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(body), "job name") {
		t.Fatalf("form, bad name: %d\n%s", code, body)
	}
	if code, body := admin.post("/admin/jobs", form("form", bad)); code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(body), "line 2") {
		t.Fatalf("form, bad CSV: %d\n%s", code, body)
	}
	if code := s.api("GET", "/api/jobs/form", nil, &out); code != http.StatusNotFound {
		t.Fatalf("form: a half-made job stayed behind: %d", code)
	}
	if code, body := admin.post("/admin/jobs", form("form", good)); code != http.StatusOK || !strings.Contains(body, "form") {
		t.Fatalf("form, after the fix: %d\n%s", code, body)
	}
	if code := s.api("GET", "/api/jobs/form", nil, &out); code != http.StatusOK {
		t.Fatalf("form: the job was not created: %d", code)
	}
}
