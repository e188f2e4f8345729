package graph_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/graph"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
)

// TestTenant500 reads an emulated tenant of 500 small mailboxes, 40 at a
// time with two sessions each, under Graph's strict limits (4 requests at
// once per mailbox, the request budget): every mailbox exact, nothing
// refused for concurrency, one $value per message. It logs the wall time
// and the emulator's request counts.
func TestTenant500(t *testing.T) {
	if testing.Short() {
		t.Skip("500 mailboxes")
	}
	const boxes, perFolder = 500, 10
	srv := graphtest.New(t)
	day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	want := make([]map[string][]byte, boxes)
	for i := 0; i < boxes; i++ {
		want[i] = map[string][]byte{}
		var inbox, sent []*graphtest.Message
		for k := 0; k < 2*perFolder; k++ {
			body := []byte(fmt.Sprintf("From: a@b.test\r\nSubject: %d/%d\r\n\r\n%s\r\n", i, k, bytes.Repeat([]byte("x"), 200+k*37)))
			m := &graphtest.Message{MIME: body, Received: day.Add(time.Duration(k) * time.Minute), Read: k%2 == 0}
			if k < perFolder {
				inbox = append(inbox, m)
			} else {
				sent = append(sent, m)
			}
		}
		box := srv.AddMailbox(&graphtest.Mailbox{Mail: fmt.Sprintf("u%03d@contoso.com", i), UPN: fmt.Sprintf("u%03d@contoso.onmicrosoft.com", i),
			Folders: []*graphtest.Folder{{Name: "Inbox", WellKnown: "inbox", Messages: inbox}, {Name: "Sent Items", WellKnown: "sentitems", Messages: sent}}})
		for _, f := range box.Folders {
			for _, m := range f.Messages {
				want[i][m.ID] = m.MIME
			}
		}
	}
	ctx := context.Background()
	start := time.Now()
	if _, err := graph.Users(ctx, srv.Endpoint(""), "contoso.com"); err != nil {
		t.Fatal(err)
	}
	var copied atomic.Int64
	sem := make(chan struct{}, 40)
	var wg sync.WaitGroup
	for i := 0; i < boxes; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e := srv.Endpoint(fmt.Sprintf("u%03d@contoso.com", i))
			lister, err := sources.Open(ctx, e)
			if err != nil {
				t.Error(err)
				return
			}
			defer lister.Close()
			fs, err := lister.Folders(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			got := map[string][]byte{}
			var mu sync.Mutex
			for _, f := range fs {
				msgs, err := lister.Messages(ctx, f)
				if err != nil {
					t.Error(err)
					return
				}
				half := len(msgs) / 2
				var fwg sync.WaitGroup
				for _, share := range [][]mail.Message{msgs[:half], msgs[half:]} {
					fwg.Add(1)
					go func() {
						defer fwg.Done()
						s, err := sources.Open(ctx, e)
						if err != nil {
							t.Error(err)
							return
						}
						defer s.Close()
						if err := s.Fetch(ctx, f, share, func(b *mail.Body) error {
							data, err := io.ReadAll(b)
							if err == nil && int64(len(data)) != b.Size {
								err = fmt.Errorf("%d bytes announced as %d", len(data), b.Size)
							}
							mu.Lock()
							got[b.Key] = data
							mu.Unlock()
							return err
						}); err != nil {
							t.Error(err)
						}
					}()
				}
				fwg.Wait()
			}
			if len(got) != len(want[i]) {
				t.Errorf("mailbox %d: %d messages, want %d", i, len(got), len(want[i]))
			}
			for id, body := range want[i] {
				if !bytes.Equal(got[id], body) {
					t.Errorf("mailbox %d: message %s differs", i, id)
				}
			}
			copied.Add(int64(len(got)))
		}()
	}
	wg.Wait()
	st := srv.Stats()
	total := 0
	for _, n := range st.ByMailbox {
		total += n
	}
	n := copied.Load()
	t.Logf("%d mailboxes, %d messages in %v; requests %v (%d mailbox requests, %.2f per message; $value %.2f per message); refused %d, over budget %d, throttled %d, tokens %d",
		boxes, n, time.Since(start).Round(time.Millisecond), st.Requests, total, float64(total)/float64(n), float64(st.Requests["value"])/float64(n), st.Refused, st.OverBudget, st.Throttled, st.Tokens)
	if n != boxes*2*perFolder {
		t.Fatalf("%d messages read, want %d", n, boxes*2*perFolder)
	}
	if st.Refused != 0 {
		t.Fatalf("%d requests refused for concurrency", st.Refused)
	}
	if float64(st.Requests["value"]) > 1.1*float64(n) {
		t.Fatalf("%d $value requests for %d messages", st.Requests["value"], n)
	}
}
