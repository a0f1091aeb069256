package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/ledger"
)

func hook(sha, session string, verified bool) ledger.Webhook {
	return ledger.Webhook{Type: "ready_to_confirm", SessionID: session, SessionStatus: "in_progress", PayoutStatus: "pending",
		BodySHA256: sha, Body: []byte(`{"type":"ready_to_confirm","session":{"id":"` + session + `"}}`), Verified: verified}
}

func TestRecordWebhookDedupe(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		w1, isNew, err := db.RecordWebhook(ctx, hook("sha1", "ps_1", true))
		if err != nil || !isNew || w1.ID == 0 {
			t.Fatalf("first delivery: got %+v new %v, %v", w1, isNew, err)
		}
		w2, isNew, err := db.RecordWebhook(ctx, hook("sha1", "ps_1", true))
		if err != nil || isNew || w2.ID != w1.ID {
			t.Errorf("duplicate: got id %d new %v, %v; want id %d, false", w2.ID, isNew, err, w1.ID)
		}
		if ws, _ := db.WebhooksForSession(ctx, "ps_1"); len(ws) != 1 {
			t.Errorf("got %d stored webhooks, want 1", len(ws))
		}
		if _, _, err := db.RecordWebhook(ctx, ledger.Webhook{}); !errors.Is(err, ledger.ErrInvalidChange) {
			t.Errorf("no body hash: got %v, want ErrInvalidChange", err)
		}
	})
}

// A forged copy stored first must not hide the genuine webhook.
func TestRecordWebhookVerifiedUpgrade(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		forged, isNew, err := db.RecordWebhook(ctx, hook("sha2", "ps_2", false))
		if err != nil || !isNew || forged.Verified {
			t.Fatalf("got %+v new %v, %v", forged, isNew, err)
		}
		genuine, isNew, err := db.RecordWebhook(ctx, hook("sha2", "ps_2", true))
		if err != nil || !isNew || !genuine.Verified || genuine.ID != forged.ID {
			t.Errorf("verified copy: got verified %v new %v id %d, %v; want true, true, %d", genuine.Verified, isNew, genuine.ID, err, forged.ID)
		}
		if _, isNew, _ := db.RecordWebhook(ctx, hook("sha2", "ps_2", false)); isNew {
			t.Errorf("unverified copy after the verified one: got new, want duplicate")
		}
	})
}

func TestPendingWebhooks(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		a := walkTo(t, db, newBatch(t, db, "A", "RA")[0], ledger.StateCreated)
		b := walkTo(t, db, newBatch(t, db, "B", "RB")[0], ledger.StateCreated)
		ids := map[string]int64{}
		for _, h := range []struct{ sha, session string }{{"1", a.SessionID}, {"2", b.SessionID}, {"3", "ps_never_seen"}, {"4", a.SessionID}, {"5", ""}} {
			w, _, err := db.RecordWebhook(ctx, hook(h.sha, h.session, true))
			if err != nil {
				t.Fatal(err)
			}
			ids[h.sha] = w.ID
		}
		pendingIDs := func(batch string, after int64, limit int) []int64 {
			ws, err := db.PendingWebhooks(ctx, batch, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, w := range ws {
				out = append(out, w.ID)
			}
			return out
		}
		tests := []struct {
			name  string
			batch string
			after int64
			limit int
			want  []int64
		}{
			{"batch A and unknown sessions", "A", 0, 10, []int64{ids["1"], ids["3"], ids["4"], ids["5"]}},
			{"batch B and unknown sessions", "B", 0, 10, []int64{ids["2"], ids["3"], ids["5"]}},
			{"after an id", "A", ids["3"], 10, []int64{ids["4"], ids["5"]}},
			{"limit", "A", 0, 2, []int64{ids["1"], ids["3"]}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := pendingIDs(tt.batch, tt.after, tt.limit); !equalIDs(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
		if err := db.MarkWebhookApplied(ctx, ids["1"], "confirmed"); err != nil {
			t.Fatal(err)
		}
		if got, want := pendingIDs("A", 0, 10), []int64{ids["3"], ids["4"], ids["5"]}; !equalIDs(got, want) {
			t.Errorf("after applying: got %v, want %v", got, want)
		}
		if err := db.MarkWebhookApplied(ctx, 9999, "x"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown webhook: got %v, want ErrNotFound", err)
		}
		ws, _ := db.WebhooksForSession(ctx, a.SessionID)
		if len(ws) != 2 || !ws[0].Applied || ws[0].Result != "confirmed" || ws[1].Applied {
			t.Errorf("WebhooksForSession: got %+v", ws)
		}
		un, err := db.UnmatchedWebhooks(ctx, time.Time{})
		if err != nil || !equalIDs(webhookIDs(un), []int64{ids["3"], ids["5"]}) {
			t.Errorf("UnmatchedWebhooks: got %v, %v; want %v", webhookIDs(un), err, []int64{ids["3"], ids["5"]})
		}
		if un, _ := db.UnmatchedWebhooks(ctx, time.Now().Add(time.Hour)); len(un) != 0 {
			t.Errorf("UnmatchedWebhooks since the future: got %d, want 0", len(un))
		}
	})
}

func webhookIDs(ws []ledger.Webhook) []int64 {
	var out []int64
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRecordWebhookKeepsIdentifiersAndParses: the stored copy of a webhook
// has no card number (not even in metadata another merchant filled), still
// parses, and keeps Pike's ids — an opaque session id of 16 Luhn-valid
// digits — our reference and every number that is not a card number. (Scrubbing the raw text masked
// such an id and broke JSON around a numeric field, so a late success was
// lost after Pike had been told 200.)
func TestRecordWebhookKeepsIdentifiersAndParses(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		body := `{"type":"payment_finished","sent_at_ms":1764480000006,"session":{"id":"7000000000000013","status":"accepted",` +
			`"payments":[{"id":"4000000000000002","status":"succeeded","metadata":"b1:1:4111111111111111x","customer":{"reference":"R1"},` +
			`"amount_details":{"amount":1000,"currency":"rub"},"payment_method":{"type":"card","card":{"bank_card":{"number":"4242 4242 4242 4242"},"last4":"4242"}},` +
			`"note":"card 4242.4242.4242.4242","echo":4242424242424242}]}}`
		w, _, err := db.RecordWebhook(ctx, ledger.Webhook{BodySHA256: "kept-ids", Body: []byte(body), Verified: true})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(w.Body, &got); err != nil {
			t.Fatalf("stored copy does not parse: %v\n%s", err, w.Body)
		}
		stored := string(w.Body)
		for _, keep := range []string{`"id":"7000000000000013"`, `"id":"4000000000000002"`,
			`"reference":"R1"`, `"amount":1000`, `"last4":"4242"`} {
			if !strings.Contains(stored, keep) {
				t.Errorf("stored copy lost %s:\n%s", keep, stored)
			}
		}
		for _, card := range []string{"4242 4242 4242 4242", "4242.4242.4242.4242", "4242424242424242", "4111111111111111"} {
			if strings.Contains(stored, card) {
				t.Errorf("stored copy holds the card number %q:\n%s", card, stored)
			}
		}
	})
}
