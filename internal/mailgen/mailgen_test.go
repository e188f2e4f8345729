package mailgen

import (
	"bytes"
	"net/mail"
	"sort"
	"testing"
)

func TestDeterministicAndWellFormed(t *testing.T) {
	o := Options{Seed: 3, Messages: 400, MaxAttachment: 300 << 10, NoMessageIDEvery: 17, DuplicateIDEvery: 23}
	a, b := Mailbox("u@x.example", o), Mailbox("u@x.example", o)
	if len(a) != 400 {
		t.Fatalf("%d messages", len(a))
	}
	attachments, noID, sizes := 0, 0, []int{}
	prevID := ""
	for i := range a {
		if !bytes.Equal(a[i].Body, b[i].Body) || a[i].Folder != b[i].Folder || !a[i].Date.Equal(b[i].Date) {
			t.Fatalf("message %d differs between runs", i)
		}
		if bytes.Contains(bytes.ReplaceAll(a[i].Body, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("message %d has a bare LF", i)
		}
		m, err := mail.ReadMessage(bytes.NewReader(a[i].Body))
		if err != nil {
			t.Fatalf("message %d does not parse: %v", i, err)
		}
		id := m.Header.Get("Message-ID")
		switch {
		case i%23 == 0 && i > 0:
			if id != prevID && prevID != "" {
				t.Fatalf("message %d should reuse %q, has %q", i, prevID, id)
			}
		case i%17 == 16:
			if id != "" {
				t.Fatalf("message %d should have no Message-ID", i)
			}
			noID++
		}
		if id != "" {
			prevID = id
		}
		if len(a[i].Body) > 200<<10 {
			attachments++
			if len(a[i].Body) > 300<<10+20<<10 {
				t.Fatalf("message %d is %d bytes, above the attachment limit", i, len(a[i].Body))
			}
		}
		sizes = append(sizes, len(a[i].Body))
	}
	if attachments == 0 || noID == 0 {
		t.Fatalf("attachments %d, without Message-ID %d", attachments, noID)
	}
	sort.Ints(sizes)
	if med := sizes[len(sizes)/2]; med < 5000 || med > 20000 {
		t.Fatalf("median size %d", med)
	}
	other := Mailbox("v@x.example", o)
	if bytes.Equal(other[0].Body, a[0].Body) {
		t.Fatal("different users got the same mail")
	}
}
