package state

import (
	"math/rand/v2"
	"sort"
	"testing"
)

func TestRangesAddRemove(t *testing.T) {
	cases := []struct {
		name string
		add  []uint32
		del  []uint32
		want string
	}{
		{"empty", nil, nil, ""},
		{"single", []uint32{5}, nil, "5"},
		{"adjacent merge", []uint32{1, 2, 3, 5, 4}, nil, "1:5"},
		{"gaps", []uint32{1, 3, 5}, nil, "1,3,5"},
		{"bridge", []uint32{1, 3, 2}, nil, "1:3"},
		{"out of order", []uint32{10, 1, 5, 2}, nil, "1:2,5,10"},
		{"remove middle", []uint32{1, 2, 3, 4, 5}, []uint32{3}, "1:2,4:5"},
		{"remove ends", []uint32{1, 2, 3}, []uint32{1, 3}, "2"},
		{"remove absent", []uint32{1, 2}, []uint32{7}, "1:2"},
		{"max uid", []uint32{4294967295, 4294967294}, nil, "4294967294:4294967295"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rs Ranges
			for _, u := range c.add {
				rs.Add(u)
			}
			for _, u := range c.del {
				rs.Remove(u)
			}
			if got := rs.String(); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			back, err := ParseRanges(rs.String())
			if err != nil || back.String() != c.want {
				t.Fatalf("round trip: %q, %v", back.String(), err)
			}
		})
	}
}

// TestRangesModel checks Ranges against a plain set over random operations.
func TestRangesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		var rs Ranges
		model := map[uint32]bool{}
		for op := 0; op < 200; op++ {
			u := uint32(rng.IntN(60) + 1)
			if rng.IntN(4) == 0 {
				rs.Remove(u)
				delete(model, u)
			} else if rng.IntN(3) == 0 {
				hi := u + uint32(rng.IntN(5))
				rs.AddRange(u, hi)
				for x := u; x <= hi; x++ {
					model[x] = true
				}
			} else {
				rs.Add(u)
				model[u] = true
			}
		}
		checkModel(t, rs, model)
	}
}

func checkModel(t *testing.T, rs Ranges, model map[uint32]bool) {
	t.Helper()
	if rs.Count() != int64(len(model)) {
		t.Fatalf("count %d, model %d (%s)", rs.Count(), len(model), rs)
	}
	for u := uint32(0); u < 80; u++ {
		if rs.Contains(u) != model[u] {
			t.Fatalf("contains(%d) = %v, model %v (%s)", u, rs.Contains(u), model[u], rs)
		}
	}
	for i := 1; i < len(rs); i++ {
		if uint64(rs[i-1].Hi)+1 >= uint64(rs[i].Lo) {
			t.Fatalf("ranges not disjoint and separated: %s", rs)
		}
	}
	var keys []int
	for k := range model {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	if len(keys) > 0 && rs.Max() != uint32(keys[len(keys)-1]) {
		t.Fatalf("max %d, want %d", rs.Max(), keys[len(keys)-1])
	}
}

func TestParseRangesErrors(t *testing.T) {
	for _, s := range []string{"0", "a", "1:", ":3", "1,,2", "4294967296", "-1"} {
		if _, err := ParseRanges(s); err == nil {
			t.Errorf("ParseRanges(%q) accepted", s)
		}
	}
}

func FuzzParseRanges(f *testing.F) {
	for _, s := range []string{"", "1", "1:5,7", "9:3", "1,1,1", "4294967295"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseRanges(s)
		if err != nil {
			return
		}
		again, err := ParseRanges(rs.String())
		if err != nil || again.String() != rs.String() || again.Count() != rs.Count() {
			t.Fatalf("not stable: %q -> %q -> %q (%v)", s, rs, again, err)
		}
	})
}
