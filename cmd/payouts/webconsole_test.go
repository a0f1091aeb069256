package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike/sandbox"
	"github.com/payouts/payouts/web"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "console"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(dir, "console.crt"), filepath.Join(dir, "console.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// TestServeWebTLS runs `payouts serve --web` with a certificate in-process:
// HTTPS answers, the session cookie is Secure with the __Host- prefix, the
// data key is made on the first start with mode 0600.
func TestServeWebTLS(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	if code, _, stderr := runAppStdin(t, p.env, "correct horse battery\n", "user", "add", "anna", "--role", "viewer", "--password-stdin"); code != ExitOK {
		t.Fatalf("user add: %s", stderr)
	}
	cert, key := selfSigned(t, p.dir)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var code int
	var errb bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		app := &App{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &errb, Getenv: func(k string) string { return p.env[k] }}
		code = app.Main(ctx, []string{"serve", "--listen", "", "--web", addr, "--tls-cert", cert, "--tls-key", key})
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
	poll.Until(t, "the console answers over TLS", func() bool {
		resp, err := client.Get("https://" + addr + "/login")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200 && resp.TLS != nil
	})
	resp, err := client.Post("https://"+addr+"/api/v1/login", "application/json", strings.NewReader(`{"username":"anna","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("login over TLS: %d %v", resp.StatusCode, resp.Cookies())
	}
	if ck := resp.Cookies()[0]; ck.Name != "__Host-payouts_session" || !ck.Secure || !ck.HttpOnly {
		t.Fatalf("cookie over TLS: %+v", ck)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over TLS")
	}
	// Plain HTTP on the TLS port is not served.
	if r, err := http.Get("http://" + addr + "/login"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
	cancel()
	wg.Wait()
	if code != ExitOK {
		t.Fatalf("serve exit %d\n%s", code, errb.String())
	}
	kp := filepath.Join(filepath.Dir(p.env["PAYOUTS_LEDGER"]), web.DataKeyName)
	fi, err := os.Stat(kp)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("data key after the first start: %v %v", fi, err)
	}
	// A key others may read is refused at the next start.
	os.Chmod(kp, 0o644)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	var errb2 bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &errb2, Getenv: func(k string) string { return p.env[k] }}
	if code := app.Main(ctx2, []string{"serve", "--listen", "", "--web", "127.0.0.1:0"}); code != ExitInfra || !strings.Contains(errb2.String(), "chmod 600") {
		t.Fatalf("serve with a 0644 data key: exit %d\n%s", code, errb2.String())
	}
}
