package ews_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/sources/ews"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
)

// TestConcurrency: every session of one admin shares MaxConcurrent, so a
// delegated job stays under Exchange's EWSMaxConcurrency; above it, the
// requests Exchange refuses are waited out and retried.
func TestConcurrency(t *testing.T) {
	srv := ewstest.New(t)
	srv.MaxConcurrency, srv.Latency = 4, 3*time.Millisecond
	srv.AddAccount(&ewstest.Account{Name: "migadmin", Password: "Adm1n!", Impersonate: true})
	var members []string
	want := 0
	for i := 0; i < 8; i++ {
		m := fmt.Sprintf("c%d@contoso.com", i)
		Seed(srv, m, 20, int64(200+i), 0)
		members = append(members, m)
		want += 20
	}
	saved := ews.MaxConcurrent
	defer func() { ews.MaxConcurrent = saved }()

	for _, limit := range []int{4, 16} {
		ews.MaxConcurrent = limit
		srv.ResetStats()
		var mu sync.Mutex
		read := 0
		var wg sync.WaitGroup
		errs := make(chan error, len(members))
		for _, m := range members {
			wg.Add(1)
			go func(m string) {
				defer wg.Done()
				n, err := readMailbox(srv.Endpoint(`CONTOSO\migadmin`, "Adm1n!", m))
				mu.Lock()
				read += n
				mu.Unlock()
				if err != nil {
					errs <- fmt.Errorf("%s: %w", m, err)
				}
			}(m)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		st := srv.Stats()
		t.Logf("limit %d: %d messages, at most %d requests in flight, %d refused", limit, read, st.MaxInFlight, st.OverConcurrency)
		if read != want {
			t.Fatalf("limit %d: read %d of %d", limit, read, want)
		}
		if limit == 4 && (st.MaxInFlight > 4 || st.OverConcurrency != 0) {
			t.Fatalf("within the server's limit: %d in flight, %d refused", st.MaxInFlight, st.OverConcurrency)
		}
		if limit == 16 && st.OverConcurrency == 0 {
			t.Fatalf("over the server's limit and never refused (%d in flight)", st.MaxInFlight)
		}
	}
}

// readMailbox reads every message of a mailbox in one session.
func readMailbox(e mail.Endpoint) (int, error) {
	ctx := context.Background()
	s, err := sources.Open(ctx, e)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	folders, err := s.Folders(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range folders {
		if f.System != "" {
			continue
		}
		msgs, err := s.Messages(ctx, f)
		if err != nil {
			return n, err
		}
		err = s.Fetch(ctx, f, msgs, func(b *mail.Body) error {
			_, err := io.Copy(io.Discard, b)
			n++
			return err
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
