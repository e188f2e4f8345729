package state

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Ranges is a set of UIDs kept as sorted, disjoint, non-adjacent inclusive
// ranges, so a folder of a million copied messages is one short string.
type Ranges []Range

// Range is an inclusive UID range.
type Range struct{ Lo, Hi uint32 }

// Contains reports whether uid is in the set.
func (rs Ranges) Contains(uid uint32) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Hi >= uid })
	return i < len(rs) && rs[i].Lo <= uid
}

// Count is the number of UIDs in the set.
func (rs Ranges) Count() int64 {
	var n int64
	for _, r := range rs {
		n += int64(r.Hi) - int64(r.Lo) + 1
	}
	return n
}

// Max is the largest UID in the set, or 0.
func (rs Ranges) Max() uint32 {
	if len(rs) == 0 {
		return 0
	}
	return rs[len(rs)-1].Hi
}

// Add puts uid in the set.
func (rs *Ranges) Add(uid uint32) { rs.AddRange(uid, uid) }

// AddRange puts lo..hi in the set, merging with neighbours.
func (rs *Ranges) AddRange(lo, hi uint32) {
	if lo > hi {
		lo, hi = hi, lo
	}
	s := *rs
	// First range that could touch [lo,hi]: its Hi+1 >= lo.
	i := sort.Search(len(s), func(i int) bool { return uint64(s[i].Hi)+1 >= uint64(lo) })
	j := i
	for j < len(s) && uint64(s[j].Lo) <= uint64(hi)+1 {
		if s[j].Lo < lo {
			lo = s[j].Lo
		}
		if s[j].Hi > hi {
			hi = s[j].Hi
		}
		j++
	}
	if i == j {
		s = append(s, Range{})
		copy(s[i+1:], s[i:])
		s[i] = Range{lo, hi}
	} else {
		s[i] = Range{lo, hi}
		s = append(s[:i+1], s[j:]...)
	}
	*rs = s
}

// Remove takes uid out of the set.
func (rs *Ranges) Remove(uid uint32) {
	s := *rs
	i := sort.Search(len(s), func(i int) bool { return s[i].Hi >= uid })
	if i == len(s) || s[i].Lo > uid {
		return
	}
	r := s[i]
	switch {
	case r.Lo == uid && r.Hi == uid:
		s = append(s[:i], s[i+1:]...)
	case r.Lo == uid:
		s[i].Lo++
	case r.Hi == uid:
		s[i].Hi--
	default:
		s = append(s, Range{})
		copy(s[i+2:], s[i+1:])
		s[i] = Range{r.Lo, uid - 1}
		s[i+1] = Range{uid + 1, r.Hi}
	}
	*rs = s
}

// String is the IMAP sequence-set form: "1:500,502,510:512".
func (rs Ranges) String() string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(r.Lo), 10))
		if r.Hi != r.Lo {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(r.Hi), 10))
		}
	}
	return b.String()
}

// ParseRanges reads the String form; ranges may come in any order.
func ParseRanges(s string) (Ranges, error) {
	var rs Ranges
	if s == "" {
		return rs, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil || a == 0 {
			return nil, fmt.Errorf("bad UID range %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b == 0 {
				return nil, fmt.Errorf("bad UID range %q", part)
			}
		}
		rs.AddRange(uint32(a), uint32(b))
	}
	return rs, nil
}

// MarshalText stores the set as its String form.
func (rs Ranges) MarshalText() ([]byte, error) { return []byte(rs.String()), nil }

// UnmarshalText reads the String form.
func (rs *Ranges) UnmarshalText(b []byte) error {
	r, err := ParseRanges(string(b))
	if err != nil {
		return err
	}
	*rs = r
	return nil
}
