package batch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// The randomized state-machine test (issue 13, "Done means"). Each seed
// builds a small manifest, a Pike that misbehaves only within its
// documented contract (pike/sandbox switches and faults, drawn at random),
// and a random schedule of operator actions (run with a short wait,
// interrupt mid-run, run again, rerun, approve/reject in hold mode); then
// faults are switched off, the batch is driven to the end, and the
// invariants are checked against the sandbox's journal (the truth of money
// moved), the ledger, the log and the report.
//
//	go test ./batch -run TestModel                              # 16 seeds
//	go test ./batch -run TestModel -model.seeds=2000 -timeout 2h  # long
//	MODEL_SEEDS=2000 go test ./batch -run TestModel -timeout 2h
//	go test ./batch -run 'TestModel/seed=42$' -model.seed=42 -v   # replay one
//
// A seed whose only violations are instances of known issue 13 findings
// still being fixed (5, 6, 10; each recognised by its signature in check)
// is skipped with the full report; PAYOUTS_KNOWN_BUGS=1 fails it instead.
// Any other violation fails the seed.
var (
	modelSeeds = flag.Int("model.seeds", 0, "number of seeds for TestModel (default 16, or $MODEL_SEEDS)")
	modelFirst = flag.Int64("model.first", 1, "first seed for TestModel")
	modelSeed  = flag.Int64("model.seed", 0, "run TestModel for this one seed only")
)

func TestModel(t *testing.T) {
	forEachBackend(t, testModel)
}

// testModel runs the seeds on one backend: a quarter of them (at least 4)
// on PostgreSQL, whose commits cost more on this shared machine; the same
// seeds, so a failure on one backend can be replayed on the other.
func testModel(t *testing.T) {
	n := 16
	if v, err := strconv.Atoi(os.Getenv("MODEL_SEEDS")); err == nil && v > 0 {
		n = v
	}
	if *modelSeeds > 0 {
		n = *modelSeeds
	}
	if backendOf(t) == ledger.BackendPostgres && *modelSeeds == 0 {
		n = max(n/4, 4)
	}
	seeds := make([]int64, 0, n)
	if *modelSeed != 0 {
		seeds = append(seeds, *modelSeed)
	} else {
		for i := range n {
			seeds = append(seeds, *modelFirst+int64(i))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runModel(t, seed)
		})
	}
}

// scenario is everything drawn from a seed.
type scenario struct {
	seed    int64
	flow    batch.Flow
	confirm batch.ConfirmMode
	version pike.Version
	sb      sandbox.Config
	rows    []row
	actions []action
}

type actionKind int

const (
	actRun actionKind = iota
	actInterrupt
	actRerun
	actApprove
	actReject
)

var actionNames = [...]string{"run", "interrupt", "rerun", "approve", "reject"}

type action struct {
	kind actionKind
	wait time.Duration // run/rerun/approve/reject: Wait; interrupt: when ctx is cancelled
	mism bool          // rerun: IncludeMismatch
}

func (a action) String() string {
	s := fmt.Sprintf("%s(%v)", actionNames[a.kind], a.wait)
	if a.mism {
		s += "+mismatch"
	}
	return s
}

func (sc *scenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flow=%s confirm=%s api=%s rows=%d", sc.flow, sc.confirm, sc.version, len(sc.rows))
	c := sc.sb
	fmt.Fprintf(&b, " auto_confirm=%v replay=%v ids=%d times=%d extra=%v v2mixed=%v unknown=%+v deadline=%v",
		c.AutoConfirm, c.IdempotencyReplay, c.IDs, c.Times, c.ExtraFields, c.V2MixedNames, c.UnknownSession, c.ConfirmDeadline)
	f := c.Faults
	fmt.Fprintf(&b, "\n  faults: before=%.2f after=%.2f answers=%d drop=%.2f rate=%.2f slow=%.2f/%v latency=%v dup=%.2f reorder=%.2f dropwh=%.2f replay=%.2f forged=%.2f foreign=%.2f mismatch=%.2f sesserr=%.2f decline=%.2f omit=%.2f",
		f.FailBeforeApply, f.FailAfterApply, len(f.FailAnswers), f.DropAfterApply, f.RateLimit, f.SlowAnswer, f.SlowAnswerDelay, f.Latency,
		f.DuplicateWebhooks, f.ReorderWebhooks, f.DropWebhooks, f.ReplayWebhooks, f.ForgedWebhooks, f.ForeignWebhooks,
		f.MismatchAmount, f.SessionError, f.DeclineAfterConfirm, f.OmitAmount)
	fmt.Fprintf(&b, "\n  actions: %v", sc.actions)
	var cards []string
	for _, r := range sc.rows {
		cards = append(cards, r.ref+":"+cardName(r.card)+":"+r.amount+r.currency)
	}
	fmt.Fprintf(&b, "\n  rows: %s", strings.Join(cards, " "))
	return b.String()
}

func cardName(c string) string {
	switch c {
	case sandbox.CardNotExist:
		return "notexist"
	case sandbox.CardExceedsLimit:
		return "limit"
	case sandbox.CardSessionError:
		return "sesserr"
	case sandbox.CardNoWebhooks:
		return "nowebhooks"
	case sandbox.CardSlow:
		return "slow"
	case sandbox.CardMismatch:
		return "mismatch"
	case sandbox.CardExpired:
		return "expired"
	}
	return "ok" + c[len(c)-4:]
}

// knownBugs reports whether scenarios of known, reported bugs are drawn.
func knownBugs() bool { return os.Getenv("PAYOUTS_KNOWN_BUGS") != "" }

// draw builds the scenario of a seed.
func draw(seed int64) *scenario {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	p := func(prob float64) bool { return rng.Float64() < prob }
	upTo := func(max float64) float64 {
		if p(0.5) {
			return 0
		}
		return rng.Float64() * max
	}
	sc := &scenario{seed: seed, flow: batch.FlowTwoStep, confirm: batch.ConfirmAuto, version: pike.V1}
	if p(0.4) {
		sc.flow = batch.FlowSingle
	}
	if p(0.3) {
		sc.confirm = batch.ConfirmHold
	}
	if p(0.3) {
		sc.version = pike.V2
	}

	// Pike's readings of what its documentation leaves open.
	c := &sc.sb
	c.Seed = seed
	c.AutoConfirm = p(0.2)
	c.IdempotencyReplay = p(0.5)
	c.IDs = sandbox.IDFormat(rng.IntN(3))
	c.Times = sandbox.TimeFormat(rng.IntN(5))
	c.ExtraFields = p(0.3)
	c.V2MixedNames = p(0.3)
	switch rng.IntN(3) {
	case 1:
		c.UnknownSession = sandbox.ErrorAnswer{Code: pike.CodeInvalidRequest, HTTPStatus: 400}
	case 2:
		c.UnknownSession = sandbox.ErrorAnswer{Code: pike.CodeSessionNotFound, HTTPStatus: 400}
	}
	if p(0.25) {
		c.ConfirmDeadline = time.Duration(150+rng.IntN(600)) * time.Millisecond
	}
	c.ReadyDelay = time.Duration(1+rng.IntN(15)) * time.Millisecond
	c.FinishDelay = time.Duration(1+rng.IntN(15)) * time.Millisecond
	c.SlowDelay = 200 * time.Millisecond
	c.WebhookRetryBase, c.WebhookRetryMax, c.WebhookGiveUp = 20*time.Millisecond, 200*time.Millisecond, 3*time.Second
	c.WebhookReplayDelay = time.Duration(50+rng.IntN(700)) * time.Millisecond

	f := &c.Faults
	f.Latency = time.Duration(rng.IntN(3)) * time.Millisecond
	f.LatencyJitter = time.Duration(rng.IntN(4)) * time.Millisecond
	f.FailBeforeApply = upTo(0.15)
	f.FailAfterApply = upTo(0.15)
	if p(0.7) {
		f.FailAnswers = sandbox.AmbiguousAnswers()
	}
	f.DropAfterApply = upTo(0.1)
	f.RateLimit = upTo(0.1)
	if p(0.2) {
		f.SlowAnswer = rng.Float64() * 0.05
		f.SlowAnswerDelay = []time.Duration{100 * time.Millisecond, 1500 * time.Millisecond}[rng.IntN(2)]
	}
	f.DuplicateWebhooks = upTo(0.3)
	f.ReorderWebhooks = upTo(0.3)
	f.DropWebhooks = upTo(0.3)
	f.ReplayWebhooks = upTo(0.2)
	f.ForgedWebhooks = upTo(0.2)
	f.ForeignWebhooks = upTo(0.3)
	f.MismatchAmount = upTo(0.1)
	f.SessionError = upTo(0.05)
	f.DeclineAfterConfirm = upTo(0.1)
	f.OmitAmount = upTo(0.3)

	// The manifest.
	n := 1 + rng.IntN(20)
	currencies := []string{"RUB", "RUB", "USD", "EUR", "JPY"}
	special := []string{sandbox.CardNotExist, sandbox.CardExceedsLimit, sandbox.CardSessionError, sandbox.CardNoWebhooks,
		sandbox.CardSlow, sandbox.CardMismatch, sandbox.CardExpired}
	names := []string{"Иванов Иван", "Anna Smith", "Jürgen Groß", "李雷"}
	for i := range n {
		r := row{ref: fmt.Sprintf("S%d-R%02d", seed, i), currency: currencies[rng.IntN(len(currencies))], name: names[rng.IntN(len(names))]}
		if r.currency == "JPY" {
			r.amount = strconv.Itoa(1 + rng.IntN(99999))
		} else {
			r.amount = fmt.Sprintf("%d.%02d", rng.IntN(5000), 1+rng.IntN(99))
		}
		switch {
		case p(0.35):
			r.card = special[rng.IntN(len(special))]
		case p(0.3):
			r.card = []string{sandbox.CardVisa, sandbox.CardMastercard, sandbox.CardMir}[rng.IntN(3)]
		default:
			r.card = luhnCard(rng)
		}
		sc.rows = append(sc.rows, r)
	}

	// The operator.
	for range rng.IntN(5) {
		a := action{kind: actionKind(rng.IntN(3)), wait: time.Duration(50+rng.IntN(700)) * time.Millisecond}
		if sc.confirm == batch.ConfirmHold && p(0.5) {
			a.kind = []actionKind{actApprove, actReject}[rng.IntN(2)]
		}
		if a.kind == actInterrupt {
			a.wait = time.Duration(5+rng.IntN(300)) * time.Millisecond
		}
		a.mism = a.kind == actRerun && p(0.3)
		sc.actions = append(sc.actions, a)
	}
	if len(sc.actions) == 0 || sc.actions[0].kind != actRun && sc.actions[0].kind != actInterrupt {
		sc.actions = append([]action{{kind: actRun, wait: time.Duration(50+rng.IntN(700)) * time.Millisecond}}, sc.actions...)
	}

	return sc
}

// luhnCard returns a random Luhn-valid 16-digit card number that is none of
// the sandbox's test cards (so it succeeds).
func luhnCard(rng *rand.Rand) string {
	for {
		d := make([]byte, 16)
		d[0] = '5'
		d[1] = byte('1' + rng.IntN(5))
		for i := 2; i < 15; i++ {
			d[i] = byte('0' + rng.IntN(10))
		}
		sum := 0
		for i := 14; i >= 0; i-- {
			v := int(d[i] - '0')
			if (14-i)%2 == 0 {
				v *= 2
				if v > 9 {
					v -= 9
				}
			}
			sum += v
		}
		d[15] = byte('0' + (10-sum%10)%10)
		if s := string(d); !slices.Contains([]string{sandbox.CardMastercard}, s) {
			return s
		}
	}
}

// syncBuf collects the processor's log.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// model is one seed being run.
type model struct {
	t    *testing.T
	sc   *scenario
	h    *harness
	logs *syncBuf
	path string
	cfg  batch.Config
	id   string
	bad  []violation
}

// violation is one broken invariant; finding is the issue 13 finding it is
// a known instance of (0: new).
type violation struct {
	finding int
	msg     string
}

func (v violation) String() string {
	if v.finding != 0 {
		return fmt.Sprintf("[known: issue 13 finding %d] %s", v.finding, v.msg)
	}
	return v.msg
}

func (m *model) violate(format string, args ...any) {
	m.bad = append(m.bad, violation{msg: fmt.Sprintf(format, args...)})
}

// known records a violation that is an instance of a reported finding.
func (m *model) known(finding int, format string, args ...any) {
	m.bad = append(m.bad, violation{finding: finding, msg: fmt.Sprintf(format, args...)})
}

// report fails the seed, or skips it when every violation is a known bug
// being fixed (PAYOUTS_KNOWN_BUGS=1 fails those too).
func (m *model) report() {
	if len(m.bad) == 0 {
		return
	}
	var lines []string
	allKnown := true
	for _, v := range m.bad {
		lines = append(lines, v.String())
		allKnown = allKnown && v.finding != 0
	}
	msg := fmt.Sprintf("seed %d: %d invariant violations:\n- %s\nscenario: %s\nreplay: go test ./batch -run 'TestModel/seed=%d$' -model.seed=%d -v",
		m.sc.seed, len(m.bad), strings.Join(lines, "\n- "), m.sc, m.sc.seed, m.sc.seed)
	if allKnown && !knownBugs() {
		m.t.Skipf("only known bugs (PAYOUTS_KNOWN_BUGS=1 fails on them): %s", msg)
	}
	m.t.Error(msg)
}

func runModel(t *testing.T, seed int64) {
	sc := draw(seed)
	m := &model{t: t, sc: sc, logs: &syncBuf{}}
	m.h = newHarnessLog(t, sc.sb, m.logs, pike.WithVersion(sc.version), pike.WithRequestTimeout(time.Second))
	m.path = m.h.manifest("m.csv", sc.rows...)
	m.cfg = m.h.config()
	m.cfg.Flow, m.cfg.Confirm = sc.flow, sc.confirm
	m.cfg.StopGrace = 300 * time.Millisecond
	defer m.report()

	for i, a := range sc.actions {
		m.act(i, a)
	}
	m.finish()
	m.check()
}

// act runs one operator action with faults on.
func (m *model) act(i int, a action) {
	ctx := context.Background()
	mopts := manifest.Options{AllowDuplicates: true}
	var err error
	var res batch.Result
	switch a.kind {
	case actRun, actInterrupt:
		wait := a.wait
		if a.kind == actInterrupt {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			stop := time.AfterFunc(a.wait, cancel)
			defer stop.Stop()
			defer cancel()
			wait = 10 * time.Second
		}
		sum, rerr := manifest.ReadFile(m.path, mopts, nil)
		if rerr != nil {
			m.t.Fatalf("manifest: %v", rerr)
		}
		res, err = batch.Run(ctx, m.h.db, m.h.client, batch.RunOptions{Manifest: m.path, ManifestOptions: mopts, Summary: sum,
			Config: m.cfg, Wait: wait, Intake: m.h.intake})
		m.id = res.Batch.ID
	case actRerun:
		if m.id == "" {
			return
		}
		res, _, err = batch.Rerun(ctx, m.h.db, m.h.client, batch.RerunOptions{BatchID: m.id, Manifest: m.path, ManifestOptions: mopts,
			IncludeMismatch: a.mism, SettleOptions: batch.SettleOptions{Config: m.cfg, Wait: a.wait, Intake: m.h.intake}})
	case actApprove, actReject:
		if m.id == "" {
			return
		}
		o := batch.SettleOptions{Config: m.cfg, Wait: a.wait, Intake: m.h.intake}
		if a.kind == actApprove {
			res, err = batch.Approve(ctx, m.h.db, m.h.client, m.id, o)
		} else {
			res, err = batch.Reject(ctx, m.h.db, m.h.client, m.id, o)
		}
	}
	if err != nil && a.kind == actInterrupt && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Interrupted before the engine started (while the batch was being
		// prepared): nothing was sent, nothing to resume but the run.
		err = nil
	}
	if err != nil && errors.Is(err, batch.ErrNotLoaded) {
		// A rerun of a batch whose load an interrupt cut short is refused
		// before anything is sent (the journal invariants check that):
		// only a run with the manifest completes it, as finish does.
		err = nil
	}
	if err != nil {
		detail := ""
		if mm := regexp.MustCompile(`\(([^()]+)\) `).FindStringSubmatch(err.Error()); mm != nil && m.id != "" {
			if r, rerr := m.h.db.RowByReference(context.Background(), m.id, mm[1]); rerr == nil {
				detail = m.lastEvents(r)
			}
		}
		if strings.Contains(err.Error(), "review → ") && strings.Contains(err.Error(), "illegal transition") {
			// A late webhook or status for a row in review proposes a move
			// the ledger refuses, and rowError makes it fatal.
			m.known(6, "action %d %s: the run stopped on a fatal error: %v%s", i, a, err, detail)
			return
		}
		m.violate("action %d %s: error (a fatal engine error or a refused run): %v%s", i, a, err, detail)
	}
	_ = res
}

// finish switches faults off and drives the batch to the end as an
// operator would: run again (resume) and, in hold mode, approve.
func (m *model) finish() {
	m.h.sb.SetFaults(sandbox.Faults{})
	m.settlePike()
	m.act(len(m.sc.actions), action{kind: actRun, wait: 10 * time.Second})
	if m.sc.confirm == batch.ConfirmHold {
		m.act(len(m.sc.actions)+1, action{kind: actApprove, wait: 10 * time.Second})
	}
	m.settlePike()
}

// settlePike waits until no payout of ours is on its way between two
// states at Pike (started and not yet ready, or confirmed and not yet
// finished) and no webhook is being delivered, so the journal is final.
func (m *model) settlePike() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		moving := false
		for _, r := range m.sc.rows {
			for _, s := range m.h.sb.SessionsFor(r.ref) {
				if p := s.Payout(); p != nil && p.Status == pike.PayoutInProgress && s.Status == pike.SessionInProgress {
					moving = true
				}
			}
		}
		if !moving {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.h.sb.Quiesce(ctx)
}

// check asserts the invariants.
func (m *model) check() {
	ctx := context.Background()
	if m.id == "" {
		m.violate("no batch was created")
		return
	}
	rows := map[string]ledger.Row{}
	for r, err := range m.h.db.Rows(ctx, m.id) {
		if err != nil {
			m.t.Fatal(err)
		}
		rows[r.Reference] = r
	}
	if len(rows) != len(m.sc.rows) {
		m.violate("ledger has %d rows, manifest %d", len(rows), len(m.sc.rows))
	}

	// Money: the journal is the truth.
	paid := map[string][]sandbox.Payment{}
	for _, p := range m.h.sb.Journal() {
		if _, ok := rows[p.Reference]; !ok {
			m.violate("journal: payment %s of %q, a reference not in the batch", p.SessionID, p.Reference)
			continue
		}
		paid[p.Reference] = append(paid[p.Reference], p)
	}
	for ref, ps := range paid {
		if len(ps) > 1 {
			var ids []string
			for _, p := range ps {
				ids = append(ids, p.SessionID+" "+p.Metadata)
			}
			m.violate("%s paid %d times (sessions %v): at most once per reference, ever", ref, len(ps), ids)
		}
		r := rows[ref]
		if r.State != ledger.StateSucceeded && r.State != ledger.StateReview {
			m.violate("%s paid (session %s, %d %s) but the ledger says %s (%s): a paid row reported unpaid", ref, ps[0].SessionID, ps[0].Amount, ps[0].Currency, r.State, r.FailureCode)
		}
	}
	for ref, r := range rows {
		switch {
		case r.State == ledger.StateSucceeded:
			ps := paid[ref]
			if len(ps) == 0 {
				whose := "a session of ours that did not pay"
				report := m.violate
				if slices.Contains(m.h.sb.ForeignSessionIDs(), r.SessionID) {
					// Adopted from a webhook without asking session/status.
					whose, report = "another merchant's session", func(f string, a ...any) { m.known(5, f, a...) }
				} else if _, ok := m.h.sb.Session(r.SessionID); !ok {
					whose = "a session Pike does not have"
				}
				report("%s is succeeded in the ledger (session %s: %s) but the journal has no payment for it: reported paid, no money moved%s", ref, r.SessionID, whose, m.lastEvents(r))
				continue
			}
			p := ps[len(ps)-1]
			if p.Amount != r.Amount || p.Currency != strings.ToLower(r.Currency) {
				m.violate("%s succeeded as %d %s, journal paid %d %s", ref, r.Amount, r.Currency, p.Amount, p.Currency)
			}
			if r.SessionID != "" && !slices.ContainsFunc(ps, func(p sandbox.Payment) bool { return p.SessionID == r.SessionID }) {
				m.violate("%s succeeded with session %s, but the journal paid session %s", ref, r.SessionID, p.SessionID)
			}
			sum := sha256.Sum256([]byte(m.h.cards[ref]))
			if p.CardSHA256 != hex.EncodeToString(sum[:]) {
				m.violate("%s paid to another card (last4 %s)", ref, p.CardLast4)
			}
		case r.State.Final() || r.State == ledger.StateReview:
		case m.sc.flow == batch.FlowSingle && r.State == ledger.StateUnknown && r.SessionID == "":
			// A lost init/payout is never resent with its key nor resolved.
			m.known(10, "%s ends unknown (attempt %d) with no session id in the single flow: a row without a next step%s",
				ref, r.Attempt, m.lastEvents(r))
		default:
			m.violate("%s ends %s (attempt %d, session %q) after faults were off and the batch was run to the end: a row without a next step%s",
				ref, r.State, r.Attempt, r.SessionID, m.lastEvents(r))
		}
	}

	// No card number at rest, in the log or in the report.
	var blobs [][]byte
	var names []string
	for _, f := range []report.Format{report.CSV, report.JSON} {
		var b bytes.Buffer
		if err := report.Write(ctx, m.h.db, m.id, &b, report.Options{Format: f}); err != nil {
			m.violate("report %s: %v", f, err)
		}
		blobs, names = append(blobs, b.Bytes()), append(names, "report."+string(f))
	}
	blobs, names = append(blobs, m.logs.Bytes()), append(names, "log")
	entries, _ := os.ReadDir(m.h.dir)
	for _, e := range entries {
		if e.Name() == "m.csv" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(m.h.dir, e.Name())); err == nil {
			blobs, names = append(blobs, b), append(names, e.Name())
		}
	}
	if ledger.IsPostgresURL(m.h.loc) {
		if dump, err := pgtest.Dump(pgtest.Get(m.h.t), m.h.loc); err != nil {
			m.violate("pg_dump of the ledger: %v", err)
		} else {
			blobs, names = append(blobs, dump), append(names, "pg_dump of the ledger")
		}
	}
	for ref, card := range m.h.cards {
		for i, b := range blobs {
			if bytes.Contains(b, []byte(card)) {
				m.violate("card number of %s found in %s", ref, names[i])
			}
		}
	}
}

// lastEvents describes a row's last few events, for a violation message.
func (m *model) lastEvents(r ledger.Row) string {
	evs, err := m.h.db.Events(context.Background(), m.id, r.ID)
	if err != nil {
		return ""
	}
	if len(evs) > 8 {
		evs = evs[len(evs)-8:]
	}
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n    %s→%s %s: %.160s", e.From, e.To, e.Reason, e.Detail)
	}
	return b.String()
}
