package pike_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/payouts/payouts/pike"
)

// A caller decides what to do after an error by its class alone. Above all,
// an error it cannot explain is never taken for "not paid": ClassUnknown
// means ask Pike with session/status (or resend the same request with the
// same idempotency key) before doing anything else.
func ExampleClassify() {
	next := func(err error) string {
		switch pike.Classify(err) {
		case pike.ClassNone:
			return "record Pike's answer"
		case pike.ClassRetryable:
			return "not applied: resend with the same idempotency key"
		case pike.ClassDefinitive:
			if errors.Is(err, pike.ErrCredentials) {
				return "stop the run: fix the credentials"
			}
			return "refused: record the failure; a resend gets the same answer"
		default: // pike.ClassUnknown
			return "may have been applied: ask session/status"
		}
	}
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"answer", nil},
		{"status 503", &pike.APIError{Method: pike.MethodStatus, HTTPStatus: 503}},
		{"confirm 502", &pike.APIError{Method: pike.MethodConfirm, HTTPStatus: 502}},
		{"confirm key reused", &pike.APIError{Method: pike.MethodConfirm, HTTPStatus: 400, Code: pike.CodeIdempotencyKeyExists}},
		{"start bad card", &pike.APIError{Method: pike.MethodStartPayout, HTTPStatus: 400, Code: pike.CodeCardNumberNotExist}},
		{"confirm bad key", &pike.APIError{Method: pike.MethodConfirm, HTTPStatus: 401, Code: pike.CodeAuthentication}},
		{"unexplained", errors.New("connection reset by peer")},
	} {
		fmt.Printf("%-18s %-10s %s\n", tt.name, pike.Classify(tt.err), next(tt.err))
	}
	// Output:
	// answer             none       record Pike's answer
	// status 503         retryable  not applied: resend with the same idempotency key
	// confirm 502        unknown    may have been applied: ask session/status
	// confirm key reused unknown    may have been applied: ask session/status
	// start bad card     definitive refused: record the failure; a resend gets the same answer
	// confirm bad key    definitive stop the run: fix the credentials
	// unexplained        unknown    may have been applied: ask session/status
}

// A client needs Pike's server root, the partner's project id and a signer
// holding the partner's private key. Here a local server stands in for Pike
// and answers session/status.
func ExampleNewClient() {
	key, err := pike.LoadPrivateKey("testdata/fixed_key_pkcs8.pem")
	if err != nil {
		log.Fatal(err)
	}
	signer, err := pike.NewSigner(key)
	if err != nil {
		log.Fatal(err)
	}
	fakePike := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.Method, r.URL.Path, "project:", r.Header.Get(pike.HeaderProject), "signed:", r.Header.Get(pike.HeaderSign) != "")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"ok","session":{"id":"ps_3230","status":"in_progress","next_action":"confirm",
			"payments":[{"id":"po_1313","status":"pending","amount_details":{"amount":10000,"currency":"usd"}}]}}`)
	}))
	defer fakePike.Close()

	client, err := pike.NewClient(fakePike.URL, "project-42", signer)
	if err != nil {
		log.Fatal(err)
	}
	s, err := client.Status(context.Background(), "ps_3230")
	if err != nil {
		log.Fatal(err)
	}
	p := s.Payout()
	fmt.Println(s.ID, s.Status, s.NextAction, p.Status, p.AmountDetails.Amount, p.AmountDetails.Currency)
	// Output:
	// POST /api/v1/session/status project: project-42 signed: true
	// ps_3230 in_progress confirm pending 10000 usd
}

// The webhook handler verifies Pike's signature over the raw body, parses
// it and hands it on; it answers 200 only once the callback has stored it.
// A body whose signature does not verify gets 401 and reaches no callback.
func ExampleNewWebhookHandler() {
	pikeKey, err := pike.LoadPublicKey("testdata/fixed_pub_pkix.pem")
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := pike.NewVerifier(pikeKey)
	if err != nil {
		log.Fatal(err)
	}
	h := pike.NewWebhookHandler(verifier, func(ctx context.Context, d pike.Delivery) error {
		// Store d durably here (the body and its hash) before returning nil.
		fmt.Println("stored", d.Webhook.Type, d.Webhook.Session.ID, d.Webhook.Session.Payout().Status)
		return nil
	})

	body, _ := os.ReadFile("testdata/webhook_ready_to_confirm_v1.json")
	sig, _ := os.ReadFile("testdata/webhook_ready_to_confirm_v1.sig.b64")
	for _, sig := range []string{strings.TrimSpace(string(sig)), "Zm9yZ2Vk"} {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/pike", bytes.NewReader(body))
		req.Header.Set(pike.HeaderSign, sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// stored ready_to_confirm ps_3230 pending
	// 200
	// 401
}
