// Package sourcetest is the conformance suite every source runs (IMAP now;
// POP3, Exchange and Graph as they land): the same table proves they list,
// order, stream and leave the mailbox alone in the same way.
package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources"
)

// Message is what the fixture put in a folder, in delivery order.
type Message struct {
	Body  []byte
	Flags []string
	Date  time.Time
}

// Fixture is the mailbox a source under test must show.
type Fixture struct {
	// Folders maps "/"-separated folder names to their messages.
	Folders map[string][]Message
	// Special maps folder names to the special use the source must report
	// ("" to skip the check).
	Special map[string]string
	// FlagsKept says the source reports flags (POP3 does not).
	FlagsKept bool
	// DatesListed says Messages reports dates; otherwise they come with the
	// body (POP3 reads them from the headers).
	DatesListed bool
}

// Run runs the suite. open returns a fresh session each time it is called.
func Run(t *testing.T, fx Fixture, open func(t *testing.T) sources.Source) {
	ctx := context.Background()
	t.Run("folders", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		folders, err := s.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := byName(folders)
		for name := range fx.Folders {
			f, ok := got[name]
			if !ok {
				t.Fatalf("folder %q missing; have %v", name, names(folders))
			}
			if f.Validity == 0 {
				t.Errorf("folder %q has no validity", name)
			}
			if want, ok := fx.Special[name]; ok && want != f.SpecialUse {
				t.Errorf("folder %q special use %q, want %q", name, f.SpecialUse, want)
			}
		}
	})
	t.Run("messages ascending with size, flags, date", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		folders := mustFolders(t, s)
		for name, want := range fx.Folders {
			msgs, err := s.Messages(ctx, folders[name])
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(want) {
				t.Fatalf("%q: %d messages, want %d", name, len(msgs), len(want))
			}
			for i, m := range msgs {
				if i > 0 && m.UID != 0 && m.UID <= msgs[i-1].UID {
					t.Fatalf("%q: keys not ascending at %d", name, i)
				}
				if m.UID == 0 && m.Key == "" {
					t.Fatalf("%q: message %d has no key", name, i)
				}
				if m.Size != int64(len(want[i].Body)) {
					t.Errorf("%q %d: size %d, want %d", name, i, m.Size, len(want[i].Body))
				}
				if fx.DatesListed && !m.Date.Equal(want[i].Date) {
					t.Errorf("%q %d: date %v, want %v", name, i, m.Date, want[i].Date)
				}
				if fx.FlagsKept && strings.Join(sorted(m.Flags), " ") != strings.Join(sorted(want[i].Flags), " ") {
					t.Errorf("%q %d: flags %v, want %v", name, i, m.Flags, want[i].Flags)
				}
			}
		}
	})
	t.Run("fetch streams exact bytes and leaves flags alone", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		folders := mustFolders(t, s)
		for name, want := range fx.Folders {
			f := folders[name]
			msgs, err := s.Messages(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			err = s.Fetch(ctx, f, msgs, func(b *mail.Body) error {
				got, err := io.ReadAll(b)
				if err != nil {
					return err
				}
				if int64(len(got)) != b.Size {
					t.Errorf("%q: body of %d bytes announced as %d", name, len(got), b.Size)
				}
				if !bytes.Equal(got, want[i].Body) {
					t.Errorf("%q %d: body differs", name, i)
				}
				if !b.Date.Equal(want[i].Date) {
					t.Errorf("%q %d: date %v, want %v", name, i, b.Date, want[i].Date)
				}
				i++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if i != len(want) {
				t.Fatalf("%q: fetched %d of %d", name, i, len(want))
			}
			after, err := s.Messages(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for k := range after {
				if strings.Join(sorted(after[k].Flags), " ") != strings.Join(sorted(msgs[k].Flags), " ") {
					t.Fatalf("%q %d: fetching changed flags %v -> %v", name, k, msgs[k].Flags, after[k].Flags)
				}
			}
		}
	})
	t.Run("fetch of a subset, an unknown key and an error from the callback", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		folders := mustFolders(t, s)
		for name, want := range fx.Folders {
			if len(want) < 3 {
				continue
			}
			f := folders[name]
			msgs, err := s.Messages(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			gone := msgs[1]
			if gone.UID != 0 {
				gone.UID = msgs[len(msgs)-1].UID + 1000
			} else {
				gone.Key = "no-such-key"
			}
			subset := []mail.Message{msgs[0], gone, msgs[2]}
			var got [][]byte
			err = s.Fetch(ctx, f, subset, func(b *mail.Body) error {
				data, err := io.ReadAll(b)
				got = append(got, data)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || !bytes.Equal(got[0], want[0].Body) || !bytes.Equal(got[1], want[2].Body) {
				t.Fatalf("%q: subset fetch returned %d bodies", name, len(got))
			}
			stop := errors.New("stop here")
			if err := s.Fetch(ctx, f, msgs, func(*mail.Body) error { return stop }); !errors.Is(err, stop) {
				t.Fatalf("callback error not returned: %v", err)
			}
			return
		}
	})
}

func mustFolders(t *testing.T, s sources.Source) map[string]mail.Folder {
	t.Helper()
	folders, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return byName(folders)
}

// byName keys folders by their "/"-separated name.
func byName(folders []mail.Folder) map[string]mail.Folder {
	out := map[string]mail.Folder{}
	for _, f := range folders {
		name := f.Name
		if f.Delim != 0 && f.Delim != '/' {
			name = strings.ReplaceAll(name, string(f.Delim), "/")
		}
		out[name] = f
	}
	return out
}

func names(folders []mail.Folder) []string {
	var out []string
	for _, f := range folders {
		out = append(out, f.Name)
	}
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
