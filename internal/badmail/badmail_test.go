package badmail

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestCorpus(t *testing.T) {
	c := New()
	if n := c.Len(); n < 100 {
		t.Fatalf("%d items, want at least 100", n)
	}
	if !reflect.DeepEqual(c, New()) {
		t.Fatal("two corpora differ: the generator is not deterministic")
	}
	names := map[string]bool{}
	for _, m := range c.Messages {
		if m.Name == "" || names[m.Name] {
			t.Errorf("message name %q empty or repeated", m.Name)
		}
		names[m.Name] = true
		if m.Date.IsZero() || len(m.Folder) == 0 {
			t.Errorf("%s: no date or folder", m.Name)
		}
		if m.Want == Fail && m.Why == "" {
			t.Errorf("%s: expected to fail without a reason word", m.Name)
		}
	}
	for _, f := range c.Folders {
		if f.Name == "" || names[f.Name] {
			t.Errorf("folder name %q empty or repeated", f.Name)
		}
		names[f.Name] = true
		for _, l := range f.Levels {
			// "." is the maildir source's delimiter: a level holding it
			// could not be told from two levels.
			if l == "" || strings.Contains(l, ".") {
				t.Errorf("folder %s: level %q is empty or holds the source delimiter", f.Name, l)
			}
		}
		if len(f.Probes) == 0 {
			t.Errorf("folder %s: no probe message", f.Name)
		}
	}
	// The kinds the suite promises are there.
	has := func(what string, ok func(Message) bool) {
		t.Helper()
		for _, m := range c.Messages {
			if ok(m) {
				return
			}
		}
		t.Errorf("no message with %s", what)
	}
	lineOver := func(b []byte, n int) bool {
		for _, l := range bytes.Split(b, []byte("\n")) {
			if len(l) >= n {
				return true
			}
		}
		return false
	}
	bare := func(b []byte, c byte) bool {
		for i, x := range b {
			if x == c && c == '\n' && (i == 0 || b[i-1] != '\r') {
				return true
			}
			if x == c && c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
				return true
			}
		}
		return false
	}
	has("bare LF only", func(m Message) bool { return bare(m.Body, '\n') && !bytes.Contains(m.Body, []byte("\r")) })
	has("bare CR only", func(m Message) bool { return bare(m.Body, '\r') && !bytes.Contains(m.Body, []byte("\n")) })
	has("NUL", func(m Message) bool { return bytes.IndexByte(m.Body, 0) >= 0 })
	has("a 10,000-character header line", func(m Message) bool { return lineOver(m.Body, 10000) && m.Name == "header-10k-line" })
	has("a 100,000-character header", func(m Message) bool { return lineOver(m.Body, 100000) && m.Name == "header-100k-unfolded" })
	has("zero bytes", func(m Message) bool { return len(m.Body) == 0 && m.Want == Fail })
	has("a size over the limit", func(m Message) bool { return len(m.Body) > Limit && m.Want == Fail })
	has("exactly the limit", func(m Message) bool { return len(m.Body) == Limit && m.Want == Exact })
	has("no Message-ID", func(m Message) bool {
		return !bytes.Contains(bytes.ToLower(m.Body), []byte("message-id")) && bytes.Contains(m.Body, []byte("Subject"))
	})
}
