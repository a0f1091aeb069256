package pike_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/payouts/payouts/pike"
)

// FuzzParseWebhook: ParseWebhook never panics; what it accepts has a type
// and a session id, and survives a re-encode in either version unchanged
// in the fields the processor acts on.
func FuzzParseWebhook(f *testing.F) {
	for _, name := range []string{"webhook_ready_to_confirm_v1.json", "webhook_payment_finished_v2.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"x","session":{"id":"1","payout_list":[{"id":"2","status":"succeeded","amount_details":{"amount":1,"currency":"rub"}}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := pike.ParseWebhook(body)
		if err != nil {
			if !errors.Is(err, pike.ErrMalformedWebhook) || w != nil {
				t.Fatalf("got %v, %v: errors must wrap ErrMalformedWebhook and return no webhook", w, err)
			}
			return
		}
		if w.Type == "" || w.Session.ID == "" {
			t.Fatalf("accepted a webhook without type or session id: %+v", w)
		}
		for _, v := range []pike.Version{pike.V1, pike.V2} {
			enc, err := pike.MarshalVersion(*w, v)
			if err != nil {
				t.Fatalf("re-encode %v: %v", v, err)
			}
			back, err := pike.ParseWebhook(enc)
			if err != nil {
				t.Fatalf("re-parse %v of %s: %v", v, enc, err)
			}
			if back.Type != w.Type || back.Session.ID != w.Session.ID || back.Session.Status != w.Session.Status ||
				len(back.Session.Payouts) != len(w.Session.Payouts) {
				t.Fatalf("round trip %v changed the webhook:\n%+v\n%+v", v, w, back)
			}
			for i, p := range w.Session.Payouts {
				q := back.Session.Payouts[i]
				if p.ID != q.ID || p.Status != q.Status || p.Last4() != q.Last4() || (p.AmountDetails == nil) != (q.AmountDetails == nil) ||
					p.AmountDetails != nil && *p.AmountDetails != *q.AmountDetails {
					t.Fatalf("round trip %v changed payout %d:\n%+v\n%+v", v, i, p, q)
				}
			}
		}
	})
}

// FuzzVerify: Verify never panics, and nothing but the one signed body
// verifies (forging RSA-2048 is out of a fuzzer's reach, so a success on
// other bytes would be a bug in Verify).
func FuzzVerify(f *testing.F) {
	signer := fixedSigner(f)
	v := fixedVerifier(f)
	good := []byte(`{"type":"ready_to_confirm","session":{"id":"ps_1"}}`)
	sig := mustSign(f, signer, good)
	f.Add(good, sig)
	f.Add(good, "")
	f.Add([]byte{}, sig[:100])
	f.Add([]byte("{}"), "AAAA")
	f.Fuzz(func(t *testing.T, body []byte, s string) {
		err := v.Verify(body, s)
		if err == nil && !bytes.Equal(body, good) {
			t.Fatalf("Verify accepted %q with %q", body, s)
		}
		if err != nil && !errors.Is(err, pike.ErrBadSignature) && !errors.Is(err, pike.ErrMissingSignature) {
			t.Fatalf("got %v, want ErrBadSignature or ErrMissingSignature", err)
		}
	})
}
