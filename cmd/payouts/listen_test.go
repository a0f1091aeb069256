package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// blockingStore holds every webhook delivery in RecordWebhook until
// released, so that the listener's connections stay busy for as long as a
// test needs, without any timing.
type blockingStore struct {
	batch.Store // only RecordWebhook is called
	entered     atomic.Int64
	release     chan struct{}
}

func (s *blockingStore) RecordWebhook(ctx context.Context, w ledger.Webhook) (ledger.Webhook, bool, error) {
	s.entered.Add(1)
	<-s.release
	return w, true, nil
}

// webhookRig is the webhook listener as `payouts run` starts it, with
// Pike's key pair and a store that holds deliveries until released.
type webhookRig struct {
	l      *listener
	signer *pike.Signer
	store  *blockingStore
	logs   string // the log file
}

func newWebhookRig(t *testing.T) *webhookRig {
	t.Helper()
	key, _ := cliPartnerKey() // any 2048-bit key will do as Pike's
	signer, err := pike.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pike.NewVerifier(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rig := &webhookRig{signer: signer, store: &blockingStore{release: make(chan struct{})}, logs: filepath.Join(t.TempDir(), "log")}
	f, err := os.Create(rig.logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	log := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rig.l, err = listenWebhooks(context.Background(), "127.0.0.1:0", v, batch.NewIntake(rig.store), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-rig.store.release:
		default:
			close(rig.store.release)
		}
		rig.l.close()
	})
	return rig
}

// delivery is a signed webhook request, as raw HTTP/1.1 bytes.
func (r *webhookRig) delivery(t *testing.T, i int) []byte {
	t.Helper()
	body := fmt.Sprintf(`{"type":"ready_to_confirm","session":{"id":"ps_%d","status":"in_progress"}}`, i)
	sig, err := r.signer.Sign([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return []byte("POST " + WebhookPath + " HTTP/1.1\r\nHost: pike\r\nContent-Type: application/json\r\nConnection: close\r\n" +
		pike.HeaderSign + ": " + sig + "\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body)
}

// TestWebhookListenerCapsConnections: the listener holds at most
// webhookMaxConns connections; one more is answered 503 at once, without
// its request being read, and is served again once a connection closes
// (issue 13, finding 17).
func TestWebhookListenerCapsConnections(t *testing.T) {
	rig := newWebhookRig(t)
	conns := make([]net.Conn, webhookMaxConns)
	for i := range conns {
		c, err := net.Dial("tcp", rig.l.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(rig.delivery(t, i)); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	poll.Until(t, "every delivery held in the store", func() bool { return rig.store.entered.Load() == webhookMaxConns })

	// One connection more: nothing is written on it, and it is answered.
	extra, err := net.Dial("tcp", rig.l.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard, not an assertion
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatalf("connection over the cap: got %v, want a 503 answer", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("connection over the cap: got HTTP %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// Released, every held delivery is answered 200.
	close(rig.store.release)
	for i, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("held delivery %d: got %v, %v, want 200", i, resp, err)
		}
		resp.Body.Close()
		c.Close()
	}
	// And the listener takes connections again.
	poll.Until(t, "a connection under the cap served", func() bool {
		resp, err := http.Get("http://" + rig.l.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestWebhookListenerLimits: headers are capped, and a flood of forged
// deliveries costs one WARN line, not one per request (issue 13, finding 17).
func TestWebhookListenerLimits(t *testing.T) {
	rig := newWebhookRig(t)
	url := "http://" + rig.l.addr + WebhookPath

	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Padding", strings.Repeat("x", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: got HTTP %d, want 431", resp.StatusCode)
	}

	for i := range 50 {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"type":"payment_finished","session":{"id":"ps_1"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(pike.HeaderSign, fmt.Sprintf("forged-%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged delivery %d: got HTTP %d, want 401", i, resp.StatusCode)
		}
	}
	logs, err := os.ReadFile(rig.logs)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logs), "level=WARN"); n != 1 {
		t.Errorf("after 50 forged deliveries: got %d WARN lines, want 1:\n%s", n, logs)
	}
}
