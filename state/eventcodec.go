package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// An event is stored compactly: a version byte, the time as Unix
// nanoseconds (a varint), then job, account, kind, who and message, each
// a length and its bytes. Its sequence number is its key. Any field Event
// gains later rides along as JSON after them, so a new field is kept
// without a new format. Records written before this format are JSON and
// are read as such (their first byte is '{').
//
// Half the size of the JSON record, and read without a JSON decoder:
// filtering a long log by kind or actor decodes every event in its range.
// Format 2 adds the line's code (Why) after the message, in the same
// compact form (reasonCodec); format 1 records are read as before.

const (
	eventFormat1 = 1
	eventFormat  = 2
)

// eventFields are the fields the compact form holds itself.
var eventFields = []string{"Seq", "Time", "Job", "Account", "Kind", "Message", "Who", "Why"}

func encodeEvent(e *Event) ([]byte, error) {
	b := make([]byte, 0, 32+len(e.Job)+len(e.Account)+len(e.Kind)+len(e.Who)+len(e.Message))
	b = append(b, eventFormat)
	b = binary.AppendVarint(b, e.Time.UnixNano())
	for _, s := range []string{e.Job, e.Account, e.Kind, e.Who, e.Message} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = appendWhy(b, e.Why)
	rest, err := eventRest(e)
	if err != nil {
		return nil, err
	}
	return append(b, rest...), nil
}

// eventRest is the JSON of the fields the compact form does not hold
// (none today: empty).
func eventRest(e *Event) ([]byte, error) {
	whole, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(whole, &m); err != nil {
		return nil, err
	}
	for _, f := range eventFields {
		delete(m, f)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

var errEventRecord = errors.New("event record cut short")

// decodeEvent reads a stored event of key k.
func decodeEvent(k, v []byte) (*Event, error) {
	var e Event
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
		}
		e.Seq = binary.BigEndian.Uint64(k)
		return &e, nil
	}
	if len(v) == 0 || (v[0] != eventFormat && v[0] != eventFormat1) {
		return nil, fmt.Errorf("event %d: unknown record format", binary.BigEndian.Uint64(k))
	}
	p := v[1:]
	ns, n := binary.Varint(p)
	if n <= 0 {
		return nil, fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), errEventRecord)
	}
	p = p[n:]
	fields := []*string{&e.Job, &e.Account, &e.Kind, &e.Who, &e.Message}
	for _, f := range fields {
		l, n := binary.Uvarint(p)
		if n <= 0 || uint64(len(p)-n) < l {
			return nil, fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), errEventRecord)
		}
		*f = string(p[n : n+int(l)])
		p = p[n+int(l):]
	}
	if v[0] == eventFormat {
		var err error
		if e.Why, p, err = readWhy(p); err != nil {
			return nil, fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
		}
	}
	if len(p) > 0 {
		// Fields added after this format; the compact ones win.
		var extra Event
		if err := json.Unmarshal(p, &extra); err != nil {
			return nil, fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
		}
		extra.Job, extra.Account, extra.Kind, extra.Who, extra.Message, extra.Why = e.Job, e.Account, e.Kind, e.Who, e.Message, e.Why
		e = extra
	}
	e.Seq = binary.BigEndian.Uint64(k)
	e.Time = time.Unix(0, ns).UTC()
	return &e, nil
}
