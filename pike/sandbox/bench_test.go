package sandbox_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// benchSandbox is a sandbox without webhooks whose payouts never become
// ready during the benchmark, so only request handling is measured.
func benchSandbox(b *testing.B) (*sandbox.Sandbox, *pike.Signer) {
	keys(b)
	signer, err := pike.NewSigner(partnerKey)
	if err != nil {
		b.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Config{PartnerKey: &partnerKey.PublicKey, SigningKey: pikeKey, Project: project, ReadyDelay: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sb.Close)
	return sb, signer
}

// BenchmarkServeHTTP measures the sandbox's own cost per call (signature
// verification included), in process, with pre-signed bodies.
func BenchmarkServeHTTP(b *testing.B) {
	sb, signer := benchSandbox(b)
	init := encode(b, pike.V1, payoutReq("bench", sandbox.CardVisa, 100, "rub"))
	cases := []struct {
		name, path string
		body       []byte
	}{
		{"create", pike.MethodSessionCreate, []byte(`{"amount_details":{"amount":100,"currency":"rub"}}`)},
		{"init", pike.MethodInitPayout, init},
		{"status", pike.MethodStatus, []byte(`{"session_id":"ps_1"}`)},
	}
	for _, c := range cases {
		sig, err := signer.Sign(c.body)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/api/v1/"+c.path, bytes.NewReader(c.body))
				req.Header.Set(pike.HeaderProject, project)
				req.Header.Set(pike.HeaderSign, sig)
				w := httptest.NewRecorder()
				sb.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("HTTP %d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkInitPayoutRoundTrip is one client call over loopback: encode,
// RSA-sign, POST, verify, apply, answer.
func BenchmarkInitPayoutRoundTrip(b *testing.B) {
	sb, signer := benchSandbox(b)
	srv := httptest.NewServer(sb)
	defer srv.Close()
	i := 0
	for b.Loop() {
		i++
		body := encode(b, pike.V1, payoutReq(fmt.Sprint("rt-", i), sandbox.CardVisa, 100, "rub"))
		sig, err := signer.Sign(body)
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/"+pike.MethodInitPayout, bytes.NewReader(body))
		req.Header.Set(pike.HeaderProject, project)
		req.Header.Set(pike.HeaderSign, sig)
		req.Header.Set(pike.HeaderIdempotencyKey, fmt.Sprint("k-", i))
		r, err := do(b, http.DefaultClient, req)
		if err != nil || r.HTTPStatus != http.StatusOK {
			b.Fatalf("HTTP %d %v", r.HTTPStatus, err)
		}
	}
}
