package main

import (
	"encoding/csv"
	"strconv"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/internal/migratetest"
	"github.com/banjia-mail/banjia/state"
)

// TestRefusedFolderIsNeverSuccess: the target (a real Dovecot) refuses to
// create one folder ("~home": names may not begin with '~'). The account
// does not read 搬家成功: it finishes with failures, the folder fails once
// with the server's own words, `job start` exits 3, `job report` lists
// every message left behind, and once the admin has fixed the cause (here
// a rename) `job retry` copies exactly those messages, once, and exits 0.
func TestRefusedFolderIsNeverSuccess(t *testing.T) {
	// The source keeps "~home"; the target, as Dovecot does by default,
	// refuses it.
	w := newCLIWorld(t, migratetest.Options{Accounts: 2, Messages: 40, BadPassword: -1, SourceConfig: migratetest.ListEscape})
	u := w.Users[0]
	w.AddRefusedFolder(u)
	refused := migratetest.RefusedMail
	before := w.Sources()
	w.create(t)
	var said strings.Builder // everything the commands printed, for the secrets check
	out, err := w.banjia(t, "job", "start", w.Job)
	said.WriteString(out)
	if code := exitCode(err); code != 3 {
		t.Fatalf("job start: exit code %d (%v), want 3\n%s", code, err, out)
	}
	for _, want := range []string{"finished with failures", `3 messages: folder "~home" not copied`, "Begins with '~'", "banjia job report"} {
		if !strings.Contains(out, want) {
			t.Errorf("job start output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, u.Old+" -> "+u.New+"  succeeded") {
		t.Errorf("the account with a refused folder reads succeeded:\n%s", out)
	}
	logs := w.mustBanjia(t, "logs", "--job", w.Job)
	if n := strings.Count(logs, "folder.failed"); n != 1 {
		t.Errorf("%d folder.failed events, want 1 (one per folder, not per message):\n%s", n, logs)
	}
	if strings.Contains(logs, "message.failed") {
		t.Errorf("a refused folder logged one failure per message:\n%s", logs)
	}

	rep := w.mustBanjia(t, "job", "report", w.Job, "--csv")
	said.WriteString(rep)
	rows, err := csv.NewReader(strings.NewReader(rep)).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v\n%s", err, rep)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != "account,folder,uid,date,size,reason" {
		t.Fatalf("report: want a header and 3 rows:\n%s", rep)
	}
	for i, r := range rows[1:] {
		if r[0] != u.Old || r[1] != "~home" || r[2] != []string{"1", "2", "3"}[i] || r[4] != strconv.Itoa(len(refused[i])) || !strings.Contains(r[5], "Begins with '~'") {
			t.Errorf("report row %d: %q", i+1, r)
		}
	}

	// verify sees the same from the servers themselves.
	out, err = w.banjia(t, "job", "verify", w.Job, "--account", u.Old, "--deep")
	said.WriteString(out)
	if code := exitCode(err); code != 3 || !strings.Contains(out, `DIFF u00@old.test "~home" -> "~home": source 3, target 0, 3 missing (the target folder does not exist)`) {
		t.Errorf("job verify before the fix: exit code %d (%v), want 3 and the folder named\n%s", code, err, out)
	}

	// The admin fixes the cause: the folder goes to another name.
	store, err := state.Open(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	job, err := store.Job(w.Job)
	if err != nil {
		t.Fatal(err)
	}
	job.Options.Renames = map[string]string{"~home": "home"}
	if err := store.PutJob(job); err != nil {
		t.Fatal(err)
	}
	store.Close()
	at := w.TotalTarget()
	out, err = w.banjia(t, "job", "retry", w.Job)
	said.WriteString(out)
	if code := exitCode(err); code != 0 {
		t.Fatalf("job retry: exit code %d (%v), want 0\n%s", code, err, out)
	}
	if n := w.TotalTarget(); n != at+len(refused) {
		t.Errorf("retry added %d messages to the target, want %d", n-at, len(refused))
	}
	want := before[u.Old]
	want["home"] = want["~home"]
	delete(want, "~home")
	migratetest.SameMail(t, u.Old, want, w.Target(u))
	if rep := w.mustBanjia(t, "job", "report", w.Job); !strings.Contains(rep, "every selected message is on the target") {
		t.Errorf("report after the retry:\n%s", rep)
	}
	if st := w.mustBanjia(t, "job", "accounts", w.Job); strings.Count(st, "succeeded") != 2 {
		t.Errorf("accounts after the retry:\n%s", st)
	}
	// The verify logs in with the kept passwords: its words are checked
	// for secrets too.
	out, _ = w.banjia(t, "job", "verify", w.Job, "--json")
	said.WriteString(out)
	said.WriteString(w.mustBanjia(t, "job", "report", w.Job, "--json"))
	for _, u := range w.Users {
		for _, pw := range []string{u.OldPW, u.NewPW} {
			if strings.Contains(said.String(), pw) {
				t.Errorf("a password is in the output of start, report, verify or retry")
			}
		}
	}
}
