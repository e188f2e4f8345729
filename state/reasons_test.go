package state

import (
	"encoding/binary"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/wording"
)

// TestReasonsOldAndNew: a reason stored with its code reads in either
// language after a round trip through the file; an account, folder and
// event written before the codes (only the English text) read as written;
// a reason changed as plain text over an old code shows the new text.
func TestReasonsOldAndNew(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutJob(&Job{ID: "j", State: JobRunning, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	coded := &Account{ID: "new@old", State: AccountFailed}
	coded.SetReason(wording.New("net.resolve", "host", "nx.invalid"))
	old := &Account{ID: "old@old", State: AccountFailed, Reason: "login as old@old at imap.old:993 refused: wrong user name"}
	stale := &Account{ID: "stale@old", State: AccountAbandoned}
	stale.SetReason(wording.New("target.quota"))
	stale.Reason = "the job was ended before this account finished"
	if err := s.PutAccounts("j", coded, old, stale); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][2]string{
		"new@old":   {`cannot resolve host "nx.invalid": check the server name`, `域名解析失败: 无法解析主机 "nx.invalid", 请检查服务器名称`},
		"old@old":   {old.Reason, old.Reason},
		"stale@old": {stale.Reason, stale.Reason},
	} {
		a, err := s.Account("j", id)
		if err != nil {
			t.Fatal(err)
		}
		if a.Reason != want[0] {
			t.Errorf("%s: stored Reason %q, want the English %q", id, a.Reason, want[0])
		}
		if got := a.ReasonIn("en"); got != want[0] {
			t.Errorf("%s (en): %q, want %q", id, got, want[0])
		}
		if got := a.ReasonIn("zh-CN"); got != want[1] {
			t.Errorf("%s (zh): %q, want %q", id, got, want[1])
		}
	}

	why := wording.New("ev.account.failed", "id", "new@old").Because(wording.New("net.resolve", "host", "nx.invalid"))
	if err := s.AddEvents(&Event{Job: "j", Kind: "account.failed", Message: why.String(), Why: &why},
		&Event{Job: "j", Kind: "account.failed", Message: "old@old failed: login refused"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events("j", 0, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events: %v %d", err, len(evs))
	}
	if got := evs[0].Text("zh"); got != `new@old 搬家失败: 域名解析失败: 无法解析主机 "nx.invalid", 请检查服务器名称` {
		t.Errorf("coded event (zh): %q", got)
	}
	if got := evs[0].Text("en"); got != evs[0].Message {
		t.Errorf("coded event (en): %q, want its Message %q", got, evs[0].Message)
	}
	if got := evs[1].Text("zh"); got != "old@old failed: login refused" {
		t.Errorf("old event (zh): %q", got)
	}

	cp := &Checkpoint{Folder: "Archive", FolderReason: "create target folder \"Archive\" refused by the server"}
	if got := cp.FolderReasonIn("zh"); got != cp.FolderReason {
		t.Errorf("old folder reason (zh): %q", got)
	}
	cp.SetFolderReason(wording.New("cmd.refused", "op", `create target folder "Archive"`, "reply", "Invalid mailbox name"))
	if got := cp.FolderReasonIn("zh"); got != `create target folder "Archive" 被服务器拒绝 (服务器回复: "Invalid mailbox name")` {
		t.Errorf("coded folder reason (zh): %q", got)
	}
	cp.NoteReason(wording.New("target.toolarge", "reply", "Message too large"))
	if got := cp.WhyOf(`message too large for the target server (the server said: "Message too large")`).In("zh"); got != `邮件超过新邮箱服务器允许的大小 (服务器回复: "Message too large")` {
		t.Errorf("message reason (zh): %q", got)
	}
	if got := cp.WhyOf("some old reason").In("zh"); got != "some old reason" {
		t.Errorf("old message reason (zh): %q", got)
	}
}

// TestEventCodeRecord: an event's code survives its compact record, nested
// reasons and lists too; a record of the first compact format (no code)
// still reads; a record cut short is refused, not misread.
func TestEventCodeRecord(t *testing.T) {
	groups := wording.Reason{List: []wording.Reason{
		wording.New("group", "n", "2").Because(wording.New("target.toolarge", "reply", "too big")),
		wording.New("group.more", "n", "3"),
	}}
	why := wording.New("ev.account.partial", "id", "a@old").Because(
		wording.New("left", "to", "5", "imported", "3", "failed", "2", "left", "2").With("groups", groups))
	e := &Event{Time: time.Unix(1700000000, 5).UTC(), Job: "j", Account: "a@old", Kind: "account.partial", Message: why.String(), Who: "banjia", Why: &why}
	v, err := encodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	k := binary.BigEndian.AppendUint64(nil, 7)
	got, err := decodeEvent(k, v)
	if err != nil {
		t.Fatal(err)
	}
	e.Seq = 7
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
	if zh := got.Text("zh"); !strings.Contains(zh, "2封邮件不在新邮箱中 (2封邮件: 邮件超过新邮箱服务器允许的大小 (服务器回复: \"too big\"); 另有3种原因)") {
		t.Errorf("zh: %s", zh)
	}
	for cut := 1; cut < len(v); cut++ {
		if r, err := decodeEvent(k, v[:cut]); err == nil {
			t.Fatalf("a record cut at %d of %d bytes reads: %+v", cut, len(v), r)
		}
	}
	// The first compact format: the five strings, nothing after them.
	old := []byte{eventFormat1}
	old = binary.AppendVarint(old, e.Time.UnixNano())
	for _, s := range []string{"j", "a@old", "account.failed", "banjia", "a@old failed: login refused"} {
		old = appendString(old, s)
	}
	o, err := decodeEvent(k, old)
	if err != nil || o.Message != "a@old failed: login refused" || o.Why != nil || o.Text("zh") != o.Message {
		t.Fatalf("format 1: %+v %v", o, err)
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	why := wording.New("ev.account.failed", "id", "u01@old.test").Because(wording.New("login.refused", "user", "u01@old.test",
		"addr", "imap.old.test:993", "proto", "IMAP", "reply", "Authentication failed."))
	for _, c := range []struct {
		name string
		why  *wording.Reason
	}{{"text", nil}, {"code", &why}} {
		v, _ := encodeEvent(&Event{Time: time.Now(), Job: "j", Account: "u01@old.test", Kind: "account.failed", Message: why.String(), Who: "banjia", Why: c.why})
		k := binary.BigEndian.AppendUint64(nil, 1)
		b.Run(c.name, func(b *testing.B) {
			b.ReportMetric(float64(len(v)), "bytes")
			for i := 0; i < b.N; i++ {
				decodeEvent(k, v)
			}
		})
	}
}
