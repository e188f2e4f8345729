package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/state"
)

// TestSystemFoldersOption: the new-job form offers to copy Exchange's
// system folders, unchecked; a job created with it checked keeps them
// (its settings page says so) and one created without it does not.
func TestSystemFoldersOption(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 2, messages: 1})
	admin := s.client("en")
	admin.get("/admin/login")
	if code, body := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != http.StatusOK {
		t.Fatalf("admin sign-in: %d\n%s", code, body)
	}
	if _, page := admin.get("/admin/jobs/new"); !strings.Contains(page, `name="system_folders" id="f-system-folders" >`) || !strings.Contains(page, "Also copy Exchange&#39;s system folders (Outbox, Sync Issues)") {
		t.Fatalf("the form offers no unchecked system folders option:\n%s", page)
	}
	for i, keep := range []bool{true, false} {
		u := s.w.Users[i]
		id := fmt.Sprintf("sys%d", i)
		form := url.Values{"id": {id}, "mode": {"passwords"}, "source": {s.endpointURL(s.w.Src.IMAPAddr)},
			"target": {s.endpointURL(s.w.Dst.IMAPAddr)}, "accounts": {fmt.Sprintf("%s,%s,%s,%s\n", u.Old, u.New, u.OldPW, u.NewPW)}, "period": {"all"}}
		if keep {
			form.Set("system_folders", "on")
		}
		if code, body := admin.post("/admin/jobs", form); code != http.StatusOK {
			t.Fatalf("create %s: %d\n%s", id, code, body)
		}
		job, err := s.w.Store.Job(id)
		if err != nil {
			t.Fatal(err)
		}
		if job.Options.KeepSystemFolders != keep {
			t.Errorf("%s: KeepSystemFolders %v, want %v", id, job.Options.KeepSystemFolders, keep)
		}
		want := map[bool]string{true: `<td id="set-system-folders">yes</td>`, false: `<td id="set-system-folders">no</td>`}[keep]
		if _, page := admin.get("/admin/jobs/" + id + "/settings"); !strings.Contains(page, want) {
			t.Errorf("%s: settings page lacks %s", id, want)
		}
	}

	// The report page counts folders left behind apart from failures:
	// a job whose only rows are those reads as no failure.
	a, err := s.w.Store.Account("sys1", s.w.Users[1].Old)
	if err != nil {
		t.Fatal(err)
	}
	a.LeftBehind = []state.LeftFolder{{Folder: "Outbox", Reason: "Exchange system folder"}, {Folder: "Sync Issues", Reason: "Exchange system folder"}}
	if err := s.w.Store.PutAccounts("sys1", a); err != nil {
		t.Fatal(err)
	}
	_, page := admin.get("/admin/jobs/sys1/report")
	if strings.Contains(page, `id="report-count"`) || !strings.Contains(page, `id="report-none"`) || !strings.Contains(page, "not failed: 2 folders") {
		t.Fatalf("report of a job that only left system folders behind:\n%s", page)
	}
}
