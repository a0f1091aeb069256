package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// The engine is wired with these two; the checks keep them its interfaces.
var (
	_ batch.Store = (*ledger.DB)(nil)
	_ batch.Pike  = (*pike.Client)(nil)
)

// payingFlags are the flags of every command that talks to Pike and drives
// rows: run, rerun, approve, reject and serve.
type payingFlags struct {
	pike        pikeFlags
	ledger      ledgerFlag
	listen      string
	pollAfter   time.Duration
	wait        time.Duration
	reportPath  string
	reportFmt   string
	reportExcel bool
	// cards: the command reads card numbers from a manifest and needs the
	// card fingerprint key (see registerCards).
	cards bool
}

// register defines the flags; waits is false for serve, which never ends
// on its own and writes no report.
func (p *payingFlags) register(fs *flagSet, waits bool) {
	p.pike.register(fs)
	p.ledger.register(fs)
	fs.StringVar(&p.listen, "listen", "127.0.0.1:8080", "address of the webhook listener (path "+WebhookPath+"); '' to rely on polling")
	fs.env("listen", "PAYOUTS_LISTEN")
	fs.DurationVar(&p.pollAfter, "poll-after", 2*time.Minute, "ask Pike with session/status about a row that waited this long for a webhook")
	fs.env("poll-after", "PAYOUTS_POLL_AFTER")
	if !waits {
		return
	}
	fs.DurationVar(&p.wait, "wait", 30*time.Minute, "how long to wait for final results after the last row was sent")
	fs.env("wait", "PAYOUTS_WAIT")
	fs.StringVar(&p.reportPath, "report", "", "write the reconciliation report to `FILE` when the command ends")
	fs.env("report", "PAYOUTS_REPORT")
	fs.StringVar(&p.reportFmt, "report-format", "csv", "report `FORMAT`: "+formatList)
	fs.env("report-format", "PAYOUTS_REPORT_FORMAT")
	fs.BoolVar(&p.reportExcel, "report-excel", false, "deprecated: use --report-format excel-csv")
	fs.env("report-excel", "PAYOUTS_REPORT_EXCEL")
	fs.hide("report-excel")
}

// reportFormat is the format of the report --report writes: --report-format,
// or excel-csv for the deprecated --report-excel.
func (p *payingFlags) reportFormat() (report.Format, error) {
	f, err := reportFormat(p.reportFmt, p.reportExcel, "--report-format", "--report-excel", "PAYOUTS_REPORT_EXCEL")
	if err != nil {
		return "", err
	}
	return f, checkReportPath(p.reportPath, f, "--report", "--report-format")
}

// registerCards adds --fingerprint-key, for the commands that read card
// numbers from a manifest (run, rerun).
func (p *payingFlags) registerCards(fs *flagSet) {
	p.cards = true
	p.ledger.registerFingerprintKey(fs)
}

// check validates the flags before anything is opened.
func (p *payingFlags) check() error {
	if p.pollAfter <= 0 {
		return usageErrorf("--poll-after must be positive")
	}
	if p.reportFmt != "" || p.reportExcel {
		if _, err := p.reportFormat(); err != nil {
			return err
		}
	}
	return p.pike.check()
}

// paying is an open connection to Pike and the ledger, with the webhook
// listener running.
type paying struct {
	*env
	log *slog.Logger
	lst *listener
}

func (p *paying) close() {
	p.lst.close()
	p.env.close()
}

// open builds the logger, loads the keys, opens the ledger and starts the
// webhook listener.
func (p *payingFlags) open(ctx context.Context, a *App) (*paying, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	log, err := a.logger()
	if err != nil {
		return nil, err
	}
	if p.reportExcel {
		// Fold the deprecated spelling into the format the report is written in.
		f, _ := p.reportFormat()
		p.reportFmt, p.reportExcel = string(f), false
		log.Warn(excelDeprecation("--report-excel", "PAYOUTS_REPORT_EXCEL", "--report-format"))
	}
	env, err := a.connect(ctx, &p.pike, &p.ledger, log, p.cards)
	if err != nil {
		return nil, err
	}
	lst, err := listenWebhooks(ctx, p.listen, env.verifier, env.intake, log)
	if err != nil {
		env.close()
		return nil, err
	}
	a.listening = lst != nil
	if lst == nil {
		log.Warn("no webhook listener (no --pike-public-key, or --listen ''): results come from polling", "poll_after", p.pollAfter)
	}
	return &paying{env: env, log: log, lst: lst}, nil
}

// config is the engine configuration these flags give.
func (p *payingFlags) config(pay *paying) batch.Config {
	return batch.Config{PollAfter: p.pollAfter, Logger: pay.log, Fingerprinter: pay.fingerprinter, Workers: p.pike.workers()}
}

// env is everything a paying command is connected to.
type env struct {
	db            *ledger.DB
	client        *pike.Client
	verifier      *pike.Verifier
	intake        *batch.Intake
	fingerprinter *batch.Fingerprinter
}

func (e *env) close() {
	if e != nil && e.db != nil {
		e.db.Close()
	}
}

// connect loads the keys, builds the Pike client and opens the ledger,
// which must exist; with cards (the commands that read card numbers: run,
// rerun), also the card fingerprinter, checked against the ledger. Problems
// with keys and the ledger are infrastructure errors (exit 3). The ledger
// in use is announced on stderr, or logged when logs are JSON.
func (a *App) connect(ctx context.Context, pf *pikeFlags, lf *ledgerFlag, log *slog.Logger, cards bool) (*env, error) {
	signer, err := pf.signer()
	if err != nil {
		return nil, fmt.Errorf("partner private key: %w", err)
	}
	client, err := pf.client(signer, log)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return nil, err
		}
		return nil, fmt.Errorf("pike client: %w", err)
	}
	verifier, err := pf.verifier()
	if err != nil {
		return nil, fmt.Errorf("pike public key: %w", err)
	}
	db, err := lf.open(ctx, a, a.jsonLogger())
	if err != nil {
		return nil, err
	}
	e := &env{db: db, client: client, verifier: verifier, intake: batch.NewIntake(db)}
	if cards {
		e.fingerprinter, err = lf.fingerprinter(ctx, db, func() (*pike.Signer, error) { return signer, nil }, log)
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	return e, nil
}

// interruptible returns ctx, and once ctx is cancelled by the first
// SIGINT/SIGTERM, restores the default signal behaviour so that a second
// one exits at once (the ledger is consistent at every instant), and says
// so. A context cancelled for any other reason (the command ended, main's
// stop) prints nothing: only a signal is an interruption.
func (a *App) interruptible(ctx context.Context) context.Context {
	context.AfterFunc(ctx, func() { a.ended(ctx) })
	return ctx
}

// ended is what interruptible does once ctx is done: on a signal, stop
// catching signals and say what an interruption does; nothing otherwise.
func (a *App) ended(ctx context.Context) {
	if a.Interrupted != nil && signalled(ctx) {
		a.Interrupted()
		a.say("\ninterrupted: no new rows are started or confirmed; calls in flight may finish (press Ctrl-C again to exit at once).")
	}
}
