package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/payouts/payouts/pike"
)

// IDFormat is how the sandbox spells session and payout ids. Pike's ids
// are opaque strings: its examples show both ps_3230 and bare digits.
type IDFormat int

// ID formats.
const (
	// IDPrefixed: ps_1, po_1 (the default).
	IDPrefixed IDFormat = iota
	// IDDigits: 1, 2, … from separate counters, so a session and a payout
	// may share an id.
	IDDigits
	// IDOpaque: 24 lower-case hex characters, no order, no prefix.
	IDOpaque
)

// TimeFormat is how the sandbox writes timestamps. Pike writes
// 2024-05-27T02:03:00.000000Z; older examples use +03:00 offsets; RFC 3339
// allows any fraction or none.
type TimeFormat int

// Time formats.
const (
	// TimeMicroZ: 2024-05-27T02:03:00.000000Z (the default).
	TimeMicroZ TimeFormat = iota
	// TimeOffset: 2024-05-27T05:03:00.000000+03:00.
	TimeOffset
	// TimeSeconds: 2024-05-27T02:03:00Z, no fraction.
	TimeSeconds
	// TimeNano: 2024-05-27T02:03:00.123456789Z, as many digits as needed.
	TimeNano
	// TimeMixed: each timestamp in one of the forms above, chosen by the
	// timestamp itself.
	TimeMixed
)

// ParseIDFormat returns the IDFormat named prefixed, digits or opaque: the
// spellings of `payouts sandbox --ids`, kept here so the names and the
// formats cannot drift apart.
func ParseIDFormat(name string) (IDFormat, error) {
	f, ok := map[string]IDFormat{"prefixed": IDPrefixed, "digits": IDDigits, "opaque": IDOpaque}[name]
	if !ok {
		return 0, fmt.Errorf("%q: use prefixed, digits or opaque", name)
	}
	return f, nil
}

// ParseTimeFormat returns the TimeFormat named micro, offset, seconds, nano
// or mixed: the spellings of `payouts sandbox --times`.
func ParseTimeFormat(name string) (TimeFormat, error) {
	f, ok := map[string]TimeFormat{"micro": TimeMicroZ, "offset": TimeOffset, "seconds": TimeSeconds, "nano": TimeNano, "mixed": TimeMixed}[name]
	if !ok {
		return 0, fmt.Errorf("%q: use micro, offset, seconds, nano or mixed", name)
	}
	return f, nil
}

var plus3 = time.FixedZone("+03:00", 3*60*60)

// stamp writes t in format f.
func stamp(t time.Time, f TimeFormat) pike.Time {
	if f == TimeMixed {
		f = TimeFormat(t.Nanosecond() / 1000 % 4) // TimeMicroZ … TimeNano
	}
	switch f {
	case TimeOffset:
		return pike.Time{Raw: t.In(plus3).Format("2006-01-02T15:04:05.000000-07:00")}
	case TimeSeconds:
		return pike.Time{Raw: t.UTC().Format("2006-01-02T15:04:05Z07:00")}
	case TimeNano:
		return pike.Time{Raw: t.UTC().Format(time.RFC3339Nano)}
	}
	return pike.NewTime(t)
}

// sessionID and payoutID spell the n-th id in the configured format.
func (s *Sandbox) sessionID(n int64) string { return s.id("ps_", n) }
func (s *Sandbox) payoutID(n int64) string  { return s.id("po_", n) }

func (s *Sandbox) id(prefix string, n int64) string {
	switch s.cfg.IDs {
	case IDDigits:
		return fmt.Sprint(n)
	case IDOpaque:
		sum := sha256.Sum256(fmt.Appendf(nil, "%s%d/%d", prefix, n, s.cfg.Seed))
		return hex.EncodeToString(sum[:12])
	}
	return fmt.Sprintf("%s%d", prefix, n)
}

// notFound is the answer to a call about a session this project does not
// have: one it never made, or another merchant's. Pike documents neither
// the code nor the HTTP status; Config.UnknownSession chooses them.
func (s *Sandbox) notFound(id string) *apiError {
	a := s.cfg.UnknownSession
	if a.Code == "" {
		a.Code = pike.CodeSessionNotFound
	}
	if a.HTTPStatus == 0 {
		a.HTTPStatus = http.StatusNotFound
	}
	return errorf(a.HTTPStatus, a.Code, "session %q not found", id)
}

// unknownField is added to every JSON object with Config.ExtraFields: Pike
// says new fields may appear at any time.
const unknownField = "x_pike_future_field"

// dress applies the wire switches that are not in the data itself
// (Config.ExtraFields, Config.V2MixedNames) to a JSON body. It is
// deterministic, so a replayed answer stays byte-identical.
func (s *Sandbox) dress(body []byte) []byte {
	if !s.cfg.ExtraFields && !s.cfg.V2MixedNames {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return body
	}
	x = s.dressValue(x)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	if err := enc.Encode(x); err != nil {
		return body
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func (s *Sandbox) dressValue(x any) any {
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			x[k] = s.dressValue(v)
		}
		if s.cfg.V2MixedNames {
			// The Bank 131 SDK's v2 fixture: the v1 array name with v2
			// names inside each element.
			if v, ok := x["payout_list"]; ok {
				delete(x, "payout_list")
				x["payments"] = v
			}
		}
		if s.cfg.ExtraFields {
			x[unknownField] = map[string]any{"since": "2031-01-01", "values": []any{json.Number("1"), "two", nil, true}}
		}
		return x
	case []any:
		for i, v := range x {
			x[i] = s.dressValue(v)
		}
	}
	return x
}

// dressStored dresses an answer's body.
func (s *Sandbox) dressStored(res *stored) *stored {
	if !s.cfg.ExtraFields && !s.cfg.V2MixedNames {
		return res
	}
	return &stored{status: res.status, body: s.dress(res.body)}
}
