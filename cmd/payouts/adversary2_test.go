package main

// Second adversarial pass against the issue 13 change: the webhook
// listener, the ledger flags and rerun's safety flags.

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestAdversary2IdleConnectionsLockOutPike — broken promise: a genuine
// Pike webhook is never refused by the listener's hardening (refused long
// enough, it is lost: Pike gives up after about 30 minutes, and a late
// success reported for a row that already ended is learnt only from its
// webhook — final rows are never polled).
//
// Anyone who can reach the port opens webhookMaxConns (128) connections
// and sends one cheap request on each that is answered with keep-alive —
// GET /healthz (200) or any unknown path (404); only the webhook handler's
// refusals say Connection: close. Each connection then holds its slot in
// limitListener (cmd/payouts/listen.go:58-63) until IdleTimeout (2
// minutes, listen.go:33) — for ever, if the peer sends another request
// every 119 seconds. Every delivery from Pike meanwhile is answered 503
// before its request is read.
func TestAdversary2IdleConnectionsLockOutPike(t *testing.T) {
	rig := newWebhookRig(t)
	close(rig.store.release) // the store answers at once
	var idle []net.Conn
	for range webhookMaxConns {
		c, err := net.Dial("tcp", rig.l.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Close {
			t.Fatalf("GET /healthz answered with Connection: close; the attack needs keep-alive")
		}
		idle = append(idle, c) // kept open, sending nothing more
	}
	waitUntil(t, "the idle connections hold their slots", func() bool { return rig.l.conns.inUse() == webhookMaxConns })

	// Pike delivers a genuine signed webhook.
	c, err := net.Dial("tcp", rig.l.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a hang guard, not an assertion
	if _, err := c.Write(rig.delivery(t, 1)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("genuine delivery: %v", err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	t.Logf("%d idle keep-alive connections open; Pike's delivery answered HTTP %d %q; stored: %d",
		len(idle), resp.StatusCode, body.String(), rig.store.entered.Load())
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a genuine signed webhook was answered HTTP %d while %d idle connections (one GET /healthz each) held every slot; want 200 (stored)",
			resp.StatusCode, len(idle))
	}
}
