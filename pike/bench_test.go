package pike_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/payouts/payouts/pike"
)

var benchBody = []byte(`{"session_id":"ps_3230","payment_method":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"4242424242424242"}}},"participant_details":{"recipient":{"full_name":"Ivanov Ivan"}},"metadata":"b1/EMP-0042-2026-11"}`)

func BenchmarkSign(b *testing.B) {
	s := fixedSigner(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	v := fixedVerifier(b)
	sig := mustSign(b, fixedSigner(b), benchBody)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(benchBody, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip is one StartPayout through the client to a loopback
// server that verifies the signature (as Pike does) and answers: marshal,
// sign, HTTP, verify, parse.
func BenchmarkRoundTrip(b *testing.B) {
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%dxGOMAXPROCS", par), func(b *testing.B) {
			v := fixedVerifier(b)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if err := v.Verify(body, r.Header.Get(pike.HeaderSign)); err != nil {
					reply(w, 401, `{"status":"error","error":{"code":"authentication_error"}}`)
					return
				}
				reply(w, 200, okSession)
			}))
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			c := newClient(b, srv.URL, pike.WithHTTPClient(&http.Client{Transport: tr}), pike.WithMaxInFlight(16))
			req := payoutRequest()
			b.ReportAllocs()
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.StartPayout(context.Background(), "bench-key", req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
