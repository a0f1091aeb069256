package sandbox_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

var fuzzPaths = []string{
	pike.MethodSessionCreate, pike.MethodStartPayout, "session/start", pike.MethodInitPayout,
	pike.MethodConfirm, pike.MethodCancel, pike.MethodStatus, pike.MethodWalletBalance,
}

// FuzzRequest feeds signed arbitrary bodies to every method: the sandbox
// must answer a well-formed envelope, never a 5xx, and never echo a card
// number outside the field it was sent in.
func FuzzRequest(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"amount_details":{"amount":100,"currency":"rub"},"customer":{"reference":"r"},"metadata":{"a":[1,2]}}`,
		`{"session_id":"ps_1","payment_method":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"4242424242424242"}}}}`,
		`{"payout_details":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"5555555555554444"}}},"amount_details":{"amount":1,"currency":"jpy"}}`,
		`{"payment_method":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"4000000000000036"}}},"amount_details":{"amount":1,"currency":"usd"}}`,
		`{"session_id":"ps_1"}`,
		`{"session_id":1}`,
		`{"amount_details":{"amount":1e30,"currency":"rub"}}`,
		`[]`, `null`, `"x"`, ``,
	}
	for i, s := range seeds {
		f.Add(uint8(i), uint8(i%2), []byte(s))
	}
	keys(f)
	signer, err := pike.NewSigner(partnerKey)
	if err != nil {
		f.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Config{PartnerKey: &partnerKey.PublicKey, SigningKey: pikeKey, Project: project})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(sb.Close)
	f.Fuzz(func(t *testing.T, path, version uint8, body []byte) {
		v := pike.V1 + pike.Version(version%2)
		sig, err := signer.Sign(body)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/api/"+v.String()+"/"+fuzzPaths[int(path)%len(fuzzPaths)], bytes.NewReader(body))
		req.Header.Set(pike.HeaderProject, project)
		req.Header.Set(pike.HeaderSign, sig)
		w := httptest.NewRecorder()
		sb.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("got HTTP %d %s", w.Code, w.Body)
		}
		var env pike.Response
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body)
		}
		if (env.Status == "ok") != (w.Code == 200) || (env.Status == "error" && (env.Error == nil || env.Error.Code == "")) {
			t.Fatalf("bad envelope for HTTP %d: %s", w.Code, w.Body)
		}
		var in struct {
			PM *pike.PayoutMethod `json:"payment_method"`
			PD *pike.PayoutMethod `json:"payout_details"`
		}
		_ = json.Unmarshal(body, &in)
		for _, m := range []*pike.PayoutMethod{in.PM, in.PD} {
			if m == nil || m.Card == nil || m.Card.BankCard == nil {
				continue
			}
			pan := m.Card.BankCard.Number
			if len(pan) >= 8 && bytes.Count(body, []byte(pan)) == 1 && bytes.Contains(w.Body.Bytes(), []byte(pan)) {
				t.Fatalf("the answer echoes the card number: %s", w.Body)
			}
		}
	})
}
