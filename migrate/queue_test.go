package migrate

import (
	"context"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sinks"
)

func qb(folder string, n int) *batch {
	return &batch{target: sinks.Folder{Name: folder}, msgs: make([]mail.Message, n)}
}

// TestBatchQueuePicks: lanes keep to target folders of their own while
// another folder has work, and share one only when nothing else is left.
func TestBatchQueuePicks(t *testing.T) {
	type take struct {
		lane int
		want string // folder of the batch taken; "" for none (nothing queued)
	}
	cases := []struct {
		name   string
		queued []string
		takes  []take
	}{
		{"second lane goes to another folder", []string{"INBOX", "INBOX", "INBOX", "Sent", "Sent"},
			[]take{{0, "INBOX"}, {1, "Sent"}, {0, "INBOX"}, {1, "Sent"}, {0, "INBOX"}, {1, ""}}},
		{"a lane stays in its folder", []string{"INBOX", "Sent", "INBOX", "Sent"},
			[]take{{0, "INBOX"}, {1, "Sent"}, {1, "Sent"}, {0, "INBOX"}}},
		{"one folder left: lanes share it", []string{"INBOX", "INBOX", "INBOX"},
			[]take{{0, "INBOX"}, {1, "INBOX"}, {0, "INBOX"}, {1, ""}}},
		{"a free folder before the shared one", []string{"A", "A", "B", "C"},
			[]take{{0, "A"}, {1, "B"}, {2, "C"}, {1, "A"}, {0, ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := newBatchQueue(3)
			ctx := context.Background()
			for _, f := range tc.queued {
				if err := q.put(ctx, qb(f, 1)); err != nil {
					t.Fatal(err)
				}
			}
			q.close()
			places := make([]*lanePlace, 3)
			for i := range places {
				places[i] = &lanePlace{}
			}
			for i, tk := range tc.takes {
				b, more := q.tryTake(places[tk.lane])
				got := ""
				if b != nil {
					got = b.target.Name
				}
				if got != tk.want {
					t.Fatalf("take %d by lane %d: %q, want %q", i, tk.lane, got, tk.want)
				}
				if b == nil && more {
					t.Fatalf("take %d: empty closed queue says more may come", i)
				}
			}
		})
	}
}

// TestBatchQueueRunsAhead: the listing may queue a second folder's batches
// while the first folder's wait, but not more folders than lanes.
func TestBatchQueueRunsAhead(t *testing.T) {
	q := newBatchQueue(2)
	ctx := context.Background()
	for _, f := range []string{"A", "A", "B", "B"} {
		if err := q.put(ctx, qb(f, 1)); err != nil {
			t.Fatal(err)
		}
	}
	third := make(chan error, 1)
	go func() { third <- q.put(ctx, qb("C", 1)) }()
	select {
	case err := <-third:
		t.Fatalf("a third folder was queued beside two waiting ones (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	p := &lanePlace{}
	q.tryTake(p)
	q.tryTake(p) // A is all with the lane now
	select {
	case err := <-third:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the third folder was not queued once the first was taken")
	}
	stopped, stop := context.WithCancelCause(ctx)
	stop(errStopped)
	if err := q.put(stopped, qb("D", 1)); err != errStopped {
		t.Fatalf("put after stop: %v", err)
	}
	q.close()
	done := make(chan struct{})
	go func() {
		for {
			if _, ok, _ := q.take(ctx, p); !ok {
				close(done)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("take did not end once the queue was closed and empty")
	}
	select {
	case <-q.finished():
	case <-time.After(5 * time.Second):
		t.Fatal("finished not closed")
	}
}
