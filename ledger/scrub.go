package ledger

import (
	"bytes"
	"encoding/json"

	"github.com/payouts/payouts/internal/pan"
)

// ScrubPAN replaces every card number in s with its masked form
// (424242******4242). It is pan.Scrub, the product's one card-number rule,
// kept under this name for the callers that scrub what they hand to the
// ledger.
func ScrubPAN(s string) string { return pan.Scrub(s) }

// scrubWebhookBody returns a stored copy of a webhook body without any card
// number that still parses, with every identifier Pike or the runner uses
// to match it intact. Scrubbing the raw text would also mask an opaque
// session id that happens to be 16 Luhn-valid digits ("7000000000000013"),
// or a numeric field, and make the copy useless or unparsable — the news
// lost after Pike was told 200. So the JSON is scrubbed value by value
// (a number only if it is a card number, replaced by its masked text), and
// Pike's ids are kept as they are: they are opaque, the key to every
// question we ask Pike, and never a card number we were given. Metadata and
// references are scrubbed like any text: ours are refused at validation if
// a card number could be read in them, so scrubbing never changes them,
// while another merchant's copy may carry anything. A body that is not
// JSON is scrubbed as text.
func scrubWebhookBody(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return []byte(pan.Scrub(string(body)))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(scrubJSON(v)); err != nil {
		return []byte(pan.Scrub(string(body)))
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// identifying are the JSON keys whose values are identifiers, kept as they
// are in a stored webhook.
var identifying = map[string]bool{"id": true, "session_id": true}

// scrubJSON scrubs the string values of a decoded JSON value.
func scrubJSON(v any) any {
	switch x := v.(type) {
	case string:
		return pan.Scrub(x)
	case json.Number:
		// A card number sent as a bare number becomes its masked text:
		// the copy stays valid JSON.
		if s := string(x); pan.Contains(s) {
			return pan.Scrub(s)
		}
	case map[string]any:
		for k, e := range x {
			if !identifying[k] {
				x[k] = scrubJSON(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = scrubJSON(e)
		}
	}
	return v
}
