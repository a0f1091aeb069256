package batch_test

import (
	"testing"
)

// BenchmarkSignRSA2048 is the limit under every request: RSA-2048
// PKCS#1 v1.5 signatures of a request-sized body with the partner's key,
// on one goroutine ("serial") and on every core at once ("parallel"),
// reported as sign/s to set beside `openssl speed rsa2048` (and its
// -multi N) on the same machine:
//
//	go test -run '^$' -bench SignRSA2048 -count 5 ./batch/
func BenchmarkSignRSA2048(b *testing.B) {
	body := []byte(`{"session_id":"ps_3230","payment_method":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"4242424242424242"}}},"participant_details":{"recipient":{"full_name":"Ivanov Ivan"}},"metadata":"b1/EMP-0042-2026-11"}`)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := partnerKey.Sign(body); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sign/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := partnerKey.Sign(body); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sign/s")
	})
}
