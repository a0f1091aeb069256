package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/payouts/payouts/internal/pan"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// approveCommand implements `payouts approve` and `payouts reject`.
type approveCommand struct {
	app    *App
	reject bool

	flags payingFlags
	batch string
	rows  listFlag
	yes   bool
	as    string
}

// Name is also the reason of the decision's event in the ledger.
func (c *approveCommand) Name() string {
	if c.reject {
		return ledger.ReasonReject
	}
	return ledger.ReasonApprove
}

func (c *approveCommand) Synopsis() string {
	if c.reject {
		return "cancel every row of a held batch waiting for confirmation"
	}
	return "confirm every row of a held batch waiting for confirmation"
}

func (c *approveCommand) Usage() string {
	if c.reject {
		return `Usage: payouts reject --batch ID [--row REF]... [--yes] [--as NAME] [flags]

Cancels (session/cancel) every row of a batch run with --confirm hold that
waits for confirmation (or only the rows named by --row), then waits for
Pike's results. Nothing of the batch is confirmed meanwhile. Rejected rows
end cancelled and can be paid later with ` + "`payouts rerun`" + `.

First it shows what it is about to reject (rows, totals per currency) and
asks on the terminal; --yes skips the question, and is required when standard
input is not a terminal (scripts, cron). Who rejects (--as, default the OS
user@host) is recorded in the ledger's events and in each row's failure
description, and shown by ` + "`payouts status`" + `. The batch id may be
shortened to any unique prefix.

Example:
  payouts reject --batch 3f9c --row EMP-0042,EMP-0043 --as "Anna (finance)"
`
	}
	return `Usage: payouts approve --batch ID [--row REF]... [--yes] [--as NAME] [flags]

Confirms every row of a batch run with --confirm hold that waits for
confirmation (or only the rows named by --row; the others stay held). Each
session is fetched with session/status and checked against its row again
first (amount, currency, card last4, reference, metadata); a session that
does not match is cancelled, not confirmed. Then waits for Pike's results
like a run. Pike cancels payouts not confirmed within ` + confirmDeadline + `.

First it shows a preview: the rows, their totals per currency, and the rows
the confirm check would refuse as Pike's sessions stand now; then it asks on
the terminal ("Approve 12 payouts totalling RUB 150,000.00? [y/N]"). --yes
skips the question, and is required when standard input is not a terminal
(scripts, cron). Who approves (--as, default the OS user@host) is recorded in
the ledger's events and shown by ` + "`payouts status`" + `. The batch id may
be shortened to any unique prefix.

Examples:
  payouts approve --batch 3f9c2a7d41e0b6aa --report approved.csv
  payouts approve --batch 3f9c --row EMP-0042 --row EMP-0043 --yes --as "Anna (finance)"`
}

func (c *approveCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.flags.register(fs, true)
	fs.StringVar(&c.batch, "batch", "", "batch id (a unique prefix will do)")
	fs.env("batch", "PAYOUTS_BATCH")
	fs.Var(&c.rows, "row", "act on the row of this `REFERENCE` only (repeatable, or a comma-separated list); default every row waiting for confirmation")
	fs.env("row", "PAYOUTS_ROW")
	fs.BoolVar(&c.yes, "yes", false, "do not ask: "+c.Name()+" without a prompt (needed when standard input is not a terminal)")
	fs.env("yes", "PAYOUTS_YES")
	fs.StringVar(&c.as, "as", "", "who "+c.past()+" it, recorded in the ledger's events (default: OS user@host)")
	fs.env("as", "PAYOUTS_AS")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if c.batch == "" || fs.NArg() > 0 {
		return usageErrorf("%s needs --batch ID and no arguments", c.Name())
	}
	if pan.Contains(c.as) {
		return usageErrorf("--as holds a card number (%s): give the name of who %s", pan.Scrub(c.as), c.past())
	}
	pay, err := c.flags.open(ctx, c.app)
	if err != nil {
		return err
	}
	defer pay.close()
	if c.batch, err = resolveBatch(ctx, pay.db, c.batch); err != nil {
		return err
	}
	rows, err := c.selectRows(ctx, pay.db)
	if err != nil {
		return err
	}
	who := c.as
	if who == "" {
		who = osIdentity()
	}
	if len(rows) == 0 {
		c.app.say(fmt.Sprintf("no row of batch %s waits for confirmation: nothing to %s; rows still in flight are carried on (and held for an approval of their own)", c.batch, c.Name()))
	}
	if len(rows) > 0 {
		if err := c.preview(ctx, pay, rows); err != nil {
			return err
		}
		if err := c.confirmed(rows); err != nil {
			return err
		}
		if err := c.record(ctx, pay.db, who, rows); err != nil {
			return err
		}
	}
	pay.log.Info(c.Name()+" batch", "batch", c.batch, "rows", len(rows), "by", who)
	cfg := c.flags.config(pay)
	cfg.Actor = who
	// Only the rows previewed (and agreed to): never nil, so that a row that
	// becomes ready while the batch is carried on (in flight after a crash)
	// stays held for an approval of its own instead of being confirmed
	// unseen — with nothing waiting, nothing is confirmed or cancelled.
	cfg.Only = make([]int64, 0, len(rows))
	for _, r := range rows {
		cfg.Only = append(cfg.Only, r.ID)
	}
	progress := c.app.progressOf(pay.log, c.gerund(), 0)
	o := batch.SettleOptions{
		Config: cfg, Wait: c.flags.wait, Intake: pay.intake, Watch: progress.watch,
		Owner: ledger.CurrentOwner("payouts " + c.Name()),
	}
	run := batch.Approve
	if c.reject {
		run = batch.Reject
	}
	res, err := run(c.app.interruptible(ctx), pay.db, pay.client, c.batch, o)
	progress.done()
	if err != nil {
		return c.app.runFailure(err)
	}
	return c.app.finish(ctx, pay.db, res, c.flags.reportPath, c.flags.reportFmt, c.flags.reportExcel)
}

func (c *approveCommand) past() string {
	if c.reject {
		return "rejects"
	}
	return "approves"
}

func (c *approveCommand) gerund() string {
	if c.reject {
		return "rejecting"
	}
	return "approving"
}

// selectRows returns the rows the command acts on: every row waiting for
// confirmation, or those named by --row, each of which must be one.
func (c *approveCommand) selectRows(ctx context.Context, db *ledger.DB) ([]ledger.Row, error) {
	if len(c.rows) == 0 {
		var rows []ledger.Row
		for r, err := range db.Rows(ctx, c.batch, ledger.StateAwaitingConfirm) {
			if err != nil {
				return nil, fmt.Errorf("rows awaiting confirmation: %w", err)
			}
			rows = append(rows, r)
		}
		return rows, nil
	}
	var rows []ledger.Row
	var problems []string
	seen := map[int64]bool{}
	for _, ref := range c.rows {
		if pan.Contains(ref) {
			// A card pasted to name a payout: rows are named by reference,
			// and the card is never echoed.
			problems = append(problems, fmt.Sprintf("--row %s holds a card number; name rows by their reference", pan.Scrub(ref)))
			continue
		}
		r, err := db.RowByReference(ctx, c.batch, ref)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			problems = append(problems, fmt.Sprintf("--row %s: no row of batch %s has that reference", ref, c.batch))
		case err != nil:
			return nil, fmt.Errorf("row %s: %w", ref, err)
		case r.State != ledger.StateAwaitingConfirm:
			problems = append(problems, fmt.Sprintf("--row %s (line %d) is %s, not waiting for confirmation", ref, r.Line, r.State))
		case !seen[r.ID]:
			seen[r.ID] = true
			rows = append(rows, r)
		}
	}
	if len(problems) > 0 {
		return nil, usageErrorf("%s; nothing was %s — `payouts status --batch %s` lists the rows waiting", strings.Join(problems, "; "), c.pastParticiple(), c.batch)
	}
	slices.SortFunc(rows, func(a, b ledger.Row) int { return a.Line - b.Line })
	return rows, nil
}

func (c *approveCommand) pastParticiple() string {
	if c.reject {
		return "rejected"
	}
	return "approved"
}

// preview prints what the command is about to do: the rows, their totals
// per currency and, for approve, the rows the confirm check will refuse
// (cancel instead of confirming) as Pike's sessions stand now.
func (c *approveCommand) preview(ctx context.Context, pay *paying, rows []ledger.Row) error {
	w := c.app.Stdout
	totals := map[string]int64{}
	for _, r := range rows {
		totals[r.Currency] += r.Amount
	}
	verb := "Approve"
	if c.reject {
		verb = "Reject (cancel)"
	}
	fmt.Fprintf(w, "%s %s of batch %s: %s\n", verb, rowsN(len(rows)), c.batch, totalsLine(totals))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, r := range rows {
		if i == maxListed {
			fmt.Fprintf(tw, "  … and %d more\n", len(rows)-i)
			break
		}
		fmt.Fprintf(tw, "  line %d\t%s\t%s %s\tcard %s…%s\t%s\n", r.Line, pan.Scrub(r.Reference), money(r.Amount, r.Currency), r.Currency,
			r.CardBIN, r.CardLast4, truncate(pan.Scrub(r.RecipientName), 40))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.reject {
		return nil
	}
	var refused, unknown []string
	for _, rc := range batch.RecheckRows(ctx, pay.client, c.batch, rows) {
		switch {
		case rc.Err != nil:
			unknown = append(unknown, fmt.Sprintf("  line %d %s: %v", rc.Row.Line, pan.Scrub(rc.Row.Reference), pan.Scrub(rc.Err.Error())))
		case rc.Refused != "":
			refused = append(refused, fmt.Sprintf("  line %d %s: %s", rc.Row.Line, pan.Scrub(rc.Row.Reference), pan.Scrub(rc.Refused)))
		}
	}
	if len(refused) > 0 {
		fmt.Fprintf(w, "The confirm check refuses %s (its session does not match: it is cancelled, not confirmed):\n%s\n", rowsN(len(refused)), strings.Join(refused, "\n"))
	} else {
		fmt.Fprintln(w, "The confirm check passes for every row as Pike's sessions stand now (it checks again before each confirm).")
	}
	if len(unknown) > 0 {
		fmt.Fprintf(w, "Pike could not be asked about %s now (checked again before each confirm):\n%s\n", rowsN(len(unknown)), strings.Join(unknown, "\n"))
	}
	return nil
}

// confirmed asks the person at the terminal, unless --yes. Without a
// terminal and without --yes it refuses (exit 2): a script must say so.
func (c *approveCommand) confirmed(rows []ledger.Row) error {
	if c.yes {
		return nil
	}
	if !c.app.stdinTerminal() {
		return usageErrorf("%s asks before it acts, and standard input is not a terminal: pass --yes (PAYOUTS_YES=1) to %s without a prompt; nothing was %s", c.Name(), c.Name(), c.pastParticiple())
	}
	totals := map[string]int64{}
	for _, r := range rows {
		totals[r.Currency] += r.Amount
	}
	verb := "Approve"
	if c.reject {
		verb = "Reject"
	}
	n := fmt.Sprintf("%d payouts", len(rows))
	if len(rows) == 1 {
		n = "1 payout"
	}
	// The prompt is for the person at the terminal, never a log record.
	fmt.Fprintf(consoleWriter{c.app.console()}, "%s %s totalling %s? [y/N] ", verb, n, totalsLine(totals))
	answer, _ := bufio.NewReader(c.app.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return &ExitError{Code: ExitPartial, Err: fmt.Errorf("not %s: nothing was sent; the rows stay held", c.pastParticiple())}
}

// record writes who approves or rejects which rows into the batch's audit
// log before anything is sent.
func (c *approveCommand) record(ctx context.Context, db *ledger.DB, who string, rows []ledger.Row) error {
	refs := make([]string, 0, min(len(rows), 50))
	for i, r := range rows {
		if i == 50 {
			refs = append(refs, fmt.Sprintf("… %d more", len(rows)-i))
			break
		}
		refs = append(refs, r.Reference)
	}
	detail := fmt.Sprintf("%s by %s: %s (%s)", c.pastParticiple(), who, rowsN(len(rows)), strings.Join(refs, ", "))
	if err := db.AddEvent(ctx, ledger.Event{BatchID: c.batch, Reason: c.Name(), Detail: detail}); err != nil {
		return fmt.Errorf("record %s: %w", c.Name(), err)
	}
	return nil
}
