package graph_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
)

// TestBatchHoldsTheMailbox: Graph runs up to 4 requests of a $batch at
// once, so the folder tree's $batch waits until none of the mailbox's
// requests is in flight: with four sessions streaming slow $values from a
// mailbox, its folder tree read three times over gets no request refused
// for concurrency, and every message still arrives. A session opened after
// the first sends nothing before its first $value.
func TestBatchHoldsTheMailbox(t *testing.T) {
	srv := graphtest.New(t)
	srv.Latency = 30 * time.Millisecond
	mb := seed(srv, "busy@contoso.com", 40, 5, 0)
	e := srv.Endpoint("busy@contoso.com")
	ctx := context.Background()
	first := open(t, e)
	fs, err := first.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var inbox mail.Folder
	for _, f := range fs {
		if f.Name == "INBOX" {
			inbox = f
		}
	}
	msgs, err := first.Messages(ctx, inbox)
	if err != nil || len(msgs) != len(mb.want["INBOX"]) || len(msgs) < 8 {
		t.Fatalf("INBOX: %d listed (want %d), %v", len(msgs), len(mb.want["INBOX"]), err)
	}
	before := srv.Stats()
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := 0; i < 4; i++ {
		s := open(t, e)
		wg.Go(func() {
			err := s.Fetch(ctx, inbox, msgs, func(b *mail.Body) error {
				_, err := io.Copy(io.Discard, b)
				mu.Lock()
				got++
				mu.Unlock()
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	if st := srv.Stats(); st.Requests["batch"] != before.Requests["batch"] || st.Requests["folder"] != before.Requests["folder"] {
		t.Fatalf("opening four more sessions sent requests: %v, before %v", st.Requests, before.Requests)
	}
	time.Sleep(100 * time.Millisecond) // the fetches are under way
	for k := 0; k < 3; k++ {
		if _, err := first.Folders(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	st := srv.Stats()
	t.Logf("requests %v, refused %d, max in flight %v", st.Requests, st.Refused, st.MaxInFlight)
	if st.Refused != 0 {
		t.Fatalf("%d requests refused for concurrency", st.Refused)
	}
	// One $batch per level of the tree, each time.
	if st.Requests["batch"] != 4*before.Requests["batch"] {
		t.Fatalf("%d batches for four readings of the tree, one of which took %d", st.Requests["batch"], before.Requests["batch"])
	}
	if got != 4*len(msgs) {
		t.Fatalf("%d fetched, want %d", got, 4*len(msgs))
	}
}

// TestKnownFoldersStale: the well-known folders' ids are kept between
// runs; when the tree no longer holds the kept inbox (a mailbox recreated
// under the same name), they are asked for again and INBOX is still found.
func TestKnownFoldersStale(t *testing.T) {
	srv := graphtest.New(t)
	day := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	inbox := &graphtest.Folder{Name: "Inbox", WellKnown: "inbox", Messages: []*graphtest.Message{{MIME: []byte("Subject: a\r\n\r\na\r\n"), Received: day}}}
	srv.AddMailbox(&graphtest.Mailbox{Mail: "re@contoso.com", Folders: []*graphtest.Folder{inbox, {Name: "Sent Items", WellKnown: "sentitems"}}})
	e := srv.Endpoint("re@contoso.com")
	ctx := context.Background()
	names := func() []string {
		t.Helper()
		fs, err := open(t, e).Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return out
	}
	if got := names(); len(got) != 2 || got[0] != "INBOX" {
		t.Fatalf("folders %q", got)
	}
	asked := srv.Stats().Requests["folder"]
	if got := names(); len(got) != 2 || got[0] != "INBOX" || srv.Stats().Requests["folder"] != asked {
		t.Fatalf("second reading: folders %q, well-known lookups %d (want none more than %d)", got, srv.Stats().Requests["folder"], asked)
	}
	inbox.ID = "AQMkADrecreated-inbox"
	if got := names(); len(got) != 2 || got[0] != "INBOX" || srv.Stats().Requests["folder"] <= asked {
		t.Fatalf("after the inbox changed: folders %q, well-known lookups %d (want more than %d)", got, srv.Stats().Requests["folder"], asked)
	}
}
