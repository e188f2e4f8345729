package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/state"
)

// TestNewAddressInTwoJobs: the dashboard refuses to add an account whose
// new address another job holds, saying which; and a member whose new
// address is in two jobs already (a state file from before that check) is
// not shown one of them at random: once the password is right, they are
// told to ask the admin, and both jobs' logs say what to fix.
func TestNewAddressInTwoJobs(t *testing.T) {
	s, store := pageSite(t)
	putJob(t, store, &state.Job{ID: "older", Mode: state.ModeMember, Domain: "old.test", NewDomain: "new.test", State: state.JobRunning},
		&state.Account{ID: "ann@old.test", State: state.AccountNotStarted})
	putJob(t, store, &state.Job{ID: "newer", Mode: state.ModePasswords, State: state.JobRunning},
		&state.Account{ID: "ann-work@old.test", Target: "ann@new.test", State: state.AccountRunning, Counts: state.Counts{ToImport: 4, Imported: 1}})
	putJob(t, store, &state.Job{ID: "third", Mode: state.ModeMember, Domain: "old.test", NewDomain: "new.test", State: state.JobRunning})

	admin := s.client("en")
	admin.get("/admin/login")
	if code, _ := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 {
		t.Fatalf("admin sign-in: %d", code)
	}
	_, page := admin.post("/admin/jobs/third/accounts", url.Values{"accounts": {"cy@old.test,cy@new.test\nann3@old.test,ann@new.test\n"}})
	if !strings.Contains(page, `id="error"`) || !strings.Contains(page, "line 2: ann@new.test is already the new address of ann-work@old.test in job newer (running)") {
		t.Fatalf("adding ann@new.test to a third job:\n%s", page)
	}
	if accts, _ := store.Accounts("third"); len(accts) != 0 {
		t.Fatalf("the refused CSV added %d accounts", len(accts))
	}

	ann := s.client("en")
	ann.get("/")
	if code, body := ann.post("/login", url.Values{"address": {"ann@new.test"}, "password": {"wrong"}}); code != http.StatusUnauthorized || strings.Contains(body, "more than one") {
		t.Fatalf("a wrong password: %d, and it tells about the jobs: %v", code, strings.Contains(body, "more than one"))
	}
	code, body := ann.post("/login", url.Values{"address": {"ann@new.test"}, "password": {"new-pw"}})
	if code != http.StatusConflict || !strings.Contains(body, "Your new mailbox is part of more than one move") {
		t.Fatalf("ann in two jobs: %d\n%s", code, body)
	}
	if _, body := ann.get("/me"); strings.Contains(body, `id="who"`) {
		t.Fatal("ann is signed in to one of the moves after all")
	}
	for _, job := range []string{"older", "newer"} {
		evs, _ := store.Events(job, 0, 0)
		found := false
		for _, e := range evs {
			found = found || e.Kind == "warning" && strings.Contains(e.Message, "ann@new.test signed in, but the new address is in 2 jobs that are not ended: older, newer")
		}
		if !found {
			t.Errorf("job %s's log does not say ann@new.test is in two jobs", job)
		}
	}
}
