package mailgen

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestDeterministic(t *testing.T) {
	o := Options{Seed: 3, Messages: 300, MaxAttachment: 300 << 10, NoMessageIDEvery: 17, DuplicateIDEvery: 23}
	a, b := Mailbox("u@x.example", o), Mailbox("u@x.example", o)
	if len(a) != 300 || len(b) != 300 {
		t.Fatalf("%d and %d messages, want 300", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Body, b[i].Body) || a[i].Folder != b[i].Folder || !a[i].Date.Equal(b[i].Date) ||
			strings.Join(a[i].Flags, " ") != strings.Join(b[i].Flags, " ") {
			t.Fatalf("message %d differs between two runs with the same options", i)
		}
	}
	if c := Mailbox("u@x.example", Options{Seed: 4, Messages: 1}); bytes.Equal(c[0].Body, a[0].Body) {
		t.Fatal("another seed gave the same first message")
	}
}

func TestDifferentUsersDifferentIDs(t *testing.T) {
	o := Options{Seed: 1, Messages: 200}
	seen := map[string]string{}
	for _, u := range []string{"u@x.example", "v@x.example", "u@y.example"} {
		for i, m := range Mailbox(u, o) {
			id := header(t, m.Body).Get("Message-ID")
			if other, ok := seen[id]; ok {
				t.Fatalf("%s message %d reuses Message-ID %s of %s", u, i, id, other)
			}
			seen[id] = u
		}
	}
}

func TestWellFormed(t *testing.T) {
	msgs := Mailbox("u@x.example", Options{Seed: 5, Messages: 2000})
	var sizes []int
	folders := map[string]int{}
	flags := map[string]int{}
	zh, alternative, qp := 0, 0, 0
	last := map[string]time.Time{}
	for i, m := range msgs {
		if bytes.Contains(bytes.ReplaceAll(m.Body, []byte("\r\n"), nil), []byte("\n")) ||
			bytes.Contains(bytes.ReplaceAll(m.Body, []byte("\r\n"), nil), []byte("\r")) {
			t.Fatalf("message %d has a bare LF or CR", i)
		}
		h := header(t, m.Body)
		for _, k := range []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"} {
			if h.Get(k) == "" {
				t.Fatalf("message %d has no %s", i, k)
			}
		}
		if _, err := mail.ParseAddress(h.Get("From")); err != nil {
			t.Fatalf("message %d From %q: %v", i, h.Get("From"), err)
		}
		d, err := h.Date()
		if err != nil || !d.Equal(m.Date) {
			t.Fatalf("message %d: Date header %v (%v), INTERNALDATE %v", i, d, err, m.Date)
		}
		if m.Date.Year() < 2016 || m.Date.Year() > 2025 {
			t.Fatalf("message %d dated %v", i, m.Date)
		}
		if prev, ok := last[m.Folder]; ok && m.Date.Before(prev) {
			t.Fatalf("message %d in %s goes back in time", i, m.Folder)
		}
		last[m.Folder] = m.Date
		subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
		if err != nil {
			t.Fatalf("message %d subject: %v", i, err)
		}
		if strings.ContainsFunc(subj, func(r rune) bool { return r > 0x2e80 }) {
			zh++
			if !strings.Contains(h.Get("Subject"), "=?UTF-8?b?") {
				t.Fatalf("message %d: Chinese subject %q is not RFC 2047 encoded", i, h.Get("Subject"))
			}
		}
		if strings.HasPrefix(h.Get("Content-Type"), "multipart/alternative") {
			alternative++
		}
		if h.Get("Content-Transfer-Encoding") == "quoted-printable" {
			qp++
		}
		folders[m.Folder]++
		for _, f := range m.Flags {
			flags[f]++
		}
		sizes = append(sizes, len(m.Body))
	}
	sort.Ints(sizes)
	if med := sizes[len(sizes)/2]; med < 7000 || med > 14000 {
		t.Errorf("median size %d, want about 10 KB", med)
	}
	if zh == 0 || alternative == 0 || qp == 0 {
		t.Errorf("Chinese subjects %d, multipart/alternative %d, quoted-printable %d: want some of each", zh, alternative, qp)
	}
	for f, n := range folders {
		if f != "INBOX" && n >= folders["INBOX"] {
			t.Errorf("%s has %d messages, INBOX only %d", f, n, folders["INBOX"])
		}
	}
	if len(folders) != len(DefaultFolders) {
		t.Errorf("messages in %d folders, want all %d", len(folders), len(DefaultFolders))
	}
	for _, f := range []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, "$Forwarded", "work"} {
		if flags[f] == 0 {
			t.Errorf("no message has %s", f)
		}
	}
}

func TestAttachments(t *testing.T) {
	const maxAttachment = 400 << 10
	msgs := Mailbox("u@x.example", Options{Seed: 6, Messages: 600, MaxAttachment: maxAttachment})
	with := 0
	for i, m := range msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if mt != "multipart/mixed" {
			continue
		}
		with++
		r := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := r.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if p.Header.Get("Content-Disposition") == "" {
				continue
			}
			raw, _ := io.ReadAll(p)
			if len(raw) < 200<<10-80 || len(raw) > maxAttachment {
				t.Errorf("message %d: attachment of %d bytes, want 200 KB..%d", i, len(raw), maxAttachment)
			}
		}
	}
	// About 5% of 600.
	if with < 10 || with > 60 {
		t.Errorf("%d of 600 messages have attachments, want about 30", with)
	}
	for i, m := range Mailbox("u@x.example", Options{Seed: 6, Messages: 600}) {
		if len(m.Body) > 200<<10 {
			t.Fatalf("message %d is %d bytes without attachments", i, len(m.Body))
		}
	}
}

func TestMessageIDRules(t *testing.T) {
	msgs := Mailbox("u@x.example", Options{Seed: 2, Messages: 500, NoMessageIDEvery: 7, DuplicateIDEvery: 10})
	prev := ""
	for i, m := range msgs {
		id := header(t, m.Body).Get("Message-ID")
		n := i + 1
		switch {
		case n%10 == 0:
			if id != prev {
				t.Fatalf("message %d has %q, want the previous %q", n, id, prev)
			}
		case n%7 == 0:
			if id != "" {
				t.Fatalf("message %d has Message-ID %q, want none", n, id)
			}
		default:
			if id == "" || id == prev {
				t.Fatalf("message %d has Message-ID %q (previous %q), want a new one", n, id, prev)
			}
		}
		if id != "" {
			prev = id
		}
	}
}

// Generation speed is a benchmark, not a timed test: a loaded machine made
// a 3-second limit fail for no fault of the generator.
func BenchmarkMailbox10k(b *testing.B) {
	for b.Loop() {
		Mailbox("u@x.example", Options{Seed: 1, Messages: 10000})
	}
}

func header(t *testing.T, body []byte) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("does not parse: %v", err)
	}
	return m.Header
}
