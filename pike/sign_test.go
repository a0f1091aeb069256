package pike_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payouts/payouts/pike"
)

// TestSignFixedVector checks the Go signer byte for byte against a
// signature of "{}" made by openssl with the same key (PKCS#1 v1.5 is
// deterministic), for the key in both PEM forms.
func TestSignFixedVector(t *testing.T) {
	want := strings.TrimSpace(string(readTestdata(t, "empty_object.sig.b64")))
	if len(want) != 344 {
		t.Fatalf("test vector is %d chars, want 344 (RSA-2048 in Base64)", len(want))
	}
	for _, file := range []string{"fixed_key_pkcs8.pem", "fixed_key_pkcs1.pem"} {
		t.Run(file, func(t *testing.T) {
			key, err := pike.LoadPrivateKey(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			s, err := pike.NewSigner(key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Sign([]byte("{}"))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Sign({}) = %s, want %s", got, want)
			}
		})
	}
}

// TestVerifyOpenSSLFixtures verifies committed webhook bodies signed by
// openssl, with the public key in each accepted PEM form, and refuses them
// after any change.
func TestVerifyOpenSSLFixtures(t *testing.T) {
	pubs := []string{"fixed_pub_pkix.pem", "fixed_pub_pkcs1.pem", "fixed_cert.pem"}
	bodies := []string{"webhook_ready_to_confirm_v1", "webhook_payment_finished_v2"}
	for _, pub := range pubs {
		key, err := pike.LoadPublicKey(filepath.Join("testdata", pub))
		if err != nil {
			t.Fatalf("%s: %v", pub, err)
		}
		v, err := pike.NewVerifier(key)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range bodies {
			body := readTestdata(t, name+".json")
			sig := string(readTestdata(t, name+".sig.b64"))
			if err := v.Verify(body, sig); err != nil {
				t.Errorf("%s with %s: got %v, want nil", name, pub, err)
			}
			changed := append([]byte(nil), body...)
			changed[len(changed)/2] ^= 1
			if err := v.Verify(changed, sig); !errors.Is(err, pike.ErrBadSignature) {
				t.Errorf("%s changed, with %s: got %v, want ErrBadSignature", name, pub, err)
			}
		}
	}
}

func needOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not found: install it (apt-get install openssl) to run the signature interop test")
	}
	return path
}

// TestClientSignatureVerifiedByOpenSSL captures a request the client really
// sent and has openssl verify X-PARTNER-SIGN over the captured body.
func TestClientSignatureVerifiedByOpenSSL(t *testing.T) {
	openssl := needOpenSSL(t)
	s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) { reply(w, 200, okSession) })
	c := newClient(t, s.srv.URL)
	if _, err := c.StartPayout(context.Background(), "key-1", payoutRequest()); err != nil {
		t.Fatal(err)
	}
	req := s.requests()[0]
	sig, err := base64.StdEncoding.DecodeString(req.Header.Get(pike.HeaderSign))
	if err != nil {
		t.Fatalf("decode %s: %v", pike.HeaderSign, err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	body, sigFile := write("body.json", req.Body), write("sig.bin", sig)
	pub := filepath.Join("testdata", "fixed_pub_pkix.pem")
	out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", pub, "-signature", sigFile, body).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl verify: %v: %s", err, out)
	}
	// The same check must fail for other bytes, or it proves nothing.
	other := write("other.json", append(req.Body, ' '))
	out, err = exec.Command(openssl, "dgst", "-sha256", "-verify", pub, "-signature", sigFile, other).CombinedOutput()
	if err == nil || strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl verified a changed body: %s", out)
	}
}

// TestWebhookSignedByOpenSSL signs a webhook with a key openssl made just
// now and delivers it to the handler, which must accept it.
func TestWebhookSignedByOpenSSL(t *testing.T) {
	openssl := needOpenSSL(t)
	dir := t.TempDir()
	keyFile, pubFile := filepath.Join(dir, "pike.pem"), filepath.Join(dir, "pike.pub")
	run := func(args ...string) []byte {
		out, err := exec.Command(openssl, args...).Output()
		if err != nil {
			t.Fatalf("openssl %v: %v", args, err)
		}
		return out
	}
	run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyFile)
	run("pkey", "-in", keyFile, "-pubout", "-out", pubFile)
	body := readTestdata(t, "webhook_ready_to_confirm_v1.json")
	bodyFile := filepath.Join(dir, "body.json")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		t.Fatal(err)
	}
	sig := base64.StdEncoding.EncodeToString(run("dgst", "-sha256", "-sign", keyFile, bodyFile))

	pub, err := pike.LoadPublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pike.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	var got []pike.Delivery
	h := pike.NewWebhookHandler(v, func(_ context.Context, d pike.Delivery) error {
		got = append(got, d)
		return nil
	})
	for _, tc := range []struct {
		name     string
		sig      string
		wantCode int
	}{
		{"openssl signature", sig, 200},
		{"signature by another key", mustSign(t, fixedSigner(t), body), 401},
	} {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/pike", strings.NewReader(string(body)))
		req.Header.Set(pike.HeaderSign, tc.sig)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.wantCode {
			t.Errorf("%s: got HTTP %d, want %d", tc.name, rec.Code, tc.wantCode)
		}
	}
	if len(got) != 1 || got[0].Webhook.Session.ID != "ps_3230" {
		t.Fatalf("got deliveries %+v, want one for ps_3230", got)
	}
}

func mustSign(t testing.TB, s *pike.Signer, body []byte) string {
	t.Helper()
	sig, err := s.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestLoadKeys(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string) func([]byte, error) []byte {
		return func(der []byte, err error) []byte {
			if err != nil {
				t.Fatal(err)
			}
			return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
		}
	}
	weakPKCS8 := pemOf("PRIVATE KEY")(x509.MarshalPKCS8PrivateKey(weak))
	weakPKCS1 := pemOf("RSA PRIVATE KEY")(x509.MarshalPKCS1PrivateKey(weak), nil)
	weakPKIX := pemOf("PUBLIC KEY")(x509.MarshalPKIXPublicKey(&weak.PublicKey))
	ecPKCS8 := pemOf("PRIVATE KEY")(x509.MarshalPKCS8PrivateKey(ec))
	ecPKIX := pemOf("PUBLIC KEY")(x509.MarshalPKIXPublicKey(&ec.PublicKey))

	privs := []struct {
		name    string
		data    []byte
		wantErr string // "" for success
		weak    bool
	}{
		{"PKCS#8", readTestdata(t, "fixed_key_pkcs8.pem"), "", false},
		{"PKCS#1", readTestdata(t, "fixed_key_pkcs1.pem"), "", false},
		{"encrypted PKCS#8", readTestdata(t, "encrypted_key_pkcs8.pem"), "encrypted: export it unencrypted", false},
		{"encrypted PKCS#1", readTestdata(t, "encrypted_key_pkcs1.pem"), "encrypted: export it unencrypted", false},
		{"1024-bit PKCS#8", weakPKCS8, "1024 bits", true},
		{"1024-bit PKCS#1", weakPKCS1, "1024 bits", true},
		{"EC key", ecPKCS8, "not RSA", false},
		{"public key given", readTestdata(t, "fixed_pub_pkix.pem"), "not an RSA private key", false},
		{"not PEM", []byte("hello"), "no PEM block", false},
	}
	for _, tc := range privs {
		t.Run("private "+tc.name, func(t *testing.T) {
			key, err := pike.ParsePrivateKeyPEM(tc.data)
			checkKeyErr(t, err, tc.wantErr, tc.weak)
			if tc.wantErr == "" && key.N.BitLen() != 2048 {
				t.Errorf("got %d bits, want 2048", key.N.BitLen())
			}
		})
	}
	pubs := []struct {
		name    string
		data    []byte
		wantErr string
		weak    bool
	}{
		{"PKIX", readTestdata(t, "fixed_pub_pkix.pem"), "", false},
		{"PKCS#1", readTestdata(t, "fixed_pub_pkcs1.pem"), "", false},
		{"certificate", readTestdata(t, "fixed_cert.pem"), "", false},
		{"1024-bit PKIX", weakPKIX, "1024 bits", true},
		{"EC key", ecPKIX, "not RSA", false},
		{"private key given", readTestdata(t, "fixed_key_pkcs8.pem"), "not an RSA public key", false},
		{"not PEM", nil, "no PEM block", false},
	}
	for _, tc := range pubs {
		t.Run("public "+tc.name, func(t *testing.T) {
			key, err := pike.ParsePublicKeyPEM(tc.data)
			checkKeyErr(t, err, tc.wantErr, tc.weak)
			if tc.wantErr == "" && key.N.Cmp(fixedSigner(t).Public().N) != 0 {
				t.Errorf("got a different modulus than the fixed key's")
			}
		})
	}
	if _, err := pike.NewSigner(weak); !errors.Is(err, pike.ErrWeakKey) {
		t.Errorf("NewSigner(1024-bit): got %v, want ErrWeakKey", err)
	}
	if _, err := pike.NewVerifier(&weak.PublicKey); !errors.Is(err, pike.ErrWeakKey) {
		t.Errorf("NewVerifier(1024-bit): got %v, want ErrWeakKey", err)
	}
	if _, err := pike.LoadPrivateKey(filepath.Join(t.TempDir(), "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPrivateKey(missing): got %v, want os.ErrNotExist", err)
	}
}

func checkKeyErr(t *testing.T, err error, want string, weak bool) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("got %v, want nil", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("got %v, want an error containing %q", err, want)
	case weak && !errors.Is(err, pike.ErrWeakKey):
		t.Fatalf("got %v, want ErrWeakKey", err)
	}
}

func TestKeyPEMRoundTrip(t *testing.T) {
	key, err := pike.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := pike.EncodePrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := pike.EncodePublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := pike.ParsePrivateKeyPEM(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pike.ParsePublicKeyPEM(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := pike.NewSigner(priv)
	v, _ := pike.NewVerifier(pub)
	if err := v.Verify([]byte("{}"), mustSign(t, s, []byte("{}"))); err != nil {
		t.Fatalf("got %v, want a generated key pair to verify its own signature", err)
	}
}

func TestVerifyErrors(t *testing.T) {
	v := fixedVerifier(t)
	body := []byte(`{"type":"ready_to_confirm"}`)
	good := mustSign(t, fixedSigner(t), body)
	other, err := pike.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, _ := pike.NewSigner(other)
	raw, _ := base64.StdEncoding.DecodeString(good)
	tests := []struct {
		name string
		sig  string
		want error
	}{
		{"good", good, nil},
		{"good with surrounding spaces", " " + good + "\n", nil},
		{"empty", "", pike.ErrMissingSignature},
		{"blank", "   ", pike.ErrMissingSignature},
		{"not base64", "!!!" + good[3:], pike.ErrBadSignature},
		{"URL-safe alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(good) + "-_", pike.ErrBadSignature},
		{"truncated", base64.StdEncoding.EncodeToString(raw[:100]), pike.ErrBadSignature},
		{"other key", mustSign(t, otherSigner, body), pike.ErrBadSignature},
		{"signature of other bytes", mustSign(t, fixedSigner(t), []byte(`{}`)), pike.ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(body, tc.sig)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}
