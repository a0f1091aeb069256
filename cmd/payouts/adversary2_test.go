package main

// Second adversarial pass against the issue 13 change: the webhook
// listener, the ledger flags and rerun's safety flags.

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
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
// limitListener.Accept (cmd/payouts/listen.go:58-71) until IdleTimeout (2
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
		idle = append(idle, c) // kept open by the peer, sending nothing more
	}
	// The listener closes each connection once it answered (no
	// keep-alive): an idle peer holds no slot.
	poll.Until(t, "the answered connections give their slots back", func() bool { return rig.l.conns.inUse() == 0 })

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

// TestAdversary2RerunCapsMissRowsItStarts — broken promise: rerun's safety
// caps ("refuse to run if the batch pays more than CUR:AMOUNT in total";
// `payouts rerun --dry-run` "prints each row it would retry ... the totals
// per currency") hold for everything a rerun pays.
//
// Run 1: Pike refuses session/start/payout with 401 authentication_error
// (a key not yet registered): the run stops, exit 3, R1 (1000.00 RUB) is
// left unknown with its session created and nothing paid. The operator
// registers the key and, cautious, reruns with --max-total RUB:1.
// planRerun (batch/rerun.go:222-234) puts R1 in Kept ("its last call's
// outcome is not known yet"), so checkCaps (cmd/payouts/rerun.go:150)
// sees a total of 0 and lets it through; then Rerun's Feed
// (batch/rerun.go:144) hands R1 to the engine, which resolves it and
// resends the start: 1000.00 RUB paid under a cap of 1.00 RUB. The dry
// run said "would retry 0 rows and start 0 never attempted; not retried 1".
func TestAdversary2RerunCapsMissRowsItStarts(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	p.sb.Inject(sandbox.Rule{Method: pike.MethodStartPayout, Fault: sandbox.FaultFailBeforeApply,
		Code: "authentication_error", HTTPStatus: http.StatusUnauthorized, Times: 100})
	m := p.manifest("m.csv", [5]string{"R1", "1000", "RUB", sandbox.CardMir, "Иванов Иван"})
	code, stdout, stderr := p.run("run", m)
	t.Logf("run 1: exit %d\n%s%s", code, stdout, stderr)
	if code != ExitInfra {
		t.Fatalf("run 1: exit %d, want 3 (credentials refused at start)", code)
	}
	if len(p.sb.Journal()) != 0 {
		t.Fatal("run 1 paid something")
	}
	p.sb.ClearRules() // the key is registered now
	var id string
	for _, line := range strings.Split(stderr+stdout, "\n") {
		if i := strings.Index(line, "batch="); i >= 0 {
			id = strings.Fields(line[i+len("batch="):])[0]
			break
		}
	}
	if id == "" {
		db, err := ledger.Open(context.Background(), p.env["PAYOUTS_LEDGER"], ledger.MustExist())
		if err != nil {
			t.Fatal(err)
		}
		bs, err := db.Batches(context.Background())
		db.Close()
		if err != nil || len(bs) != 1 {
			t.Fatalf("batches: %v %v", bs, err)
		}
		id = bs[0].ID
	}
	t.Logf("R1 after run 1: %s", p.ledgerRows(id)["R1"].State)

	code, stdout, stderr = p.run("rerun", "--batch", id, "--dry-run", "--max-total", "RUB:1")
	t.Logf("rerun --dry-run --max-total RUB:1: exit %d\n%s%s", code, stdout, stderr)
	code, stdout, stderr = p.run("rerun", "--batch", id, "--max-total", "RUB:1")
	t.Logf("rerun --max-total RUB:1: exit %d\n%s%s", code, stdout, stderr)
	var paid int64
	for _, pay := range p.sb.Journal() {
		paid += pay.Amount
	}
	if paid > 100 {
		t.Errorf("rerun --max-total RUB:1 exited %d and Pike paid %d minor units (R1 is %s); want it refused (exit 2) with nothing paid",
			code, paid, p.ledgerRows(id)["R1"].State)
	}
}
