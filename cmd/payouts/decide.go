package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// decideCommand implements `payouts decide`.
type decideCommand struct {
	app      *App
	ledger   ledgerFlag
	batch    string
	ref      string
	decision string
	note     string
	as       string
}

func (c *decideCommand) Name() string { return "decide" }
func (c *decideCommand) Synopsis() string {
	return "record a person's decision about a row in review (the only way out of review)"
}
func (c *decideCommand) Usage() string {
	return `Usage: payouts decide --batch ID --reference REF --outcome paid|not-paid --note TEXT [--as NAME]

A row in review needs a person: Pike reported a session error, paid another
amount, paid an attempt the row had moved on from, or an answer never came.
Nothing the runner or Pike says moves it out of review; this command does,
after you checked with Pike (dashboard or support) what really happened:

  --outcome paid      the payout was made: the row becomes succeeded and
                      its reference is never paid again
  --outcome not-paid  no payout was made and none can be: the row becomes
                      failed, and ` + "`payouts rerun`" + ` may pay it — unless Pike ever
                      reported an attempt of it paid (the ledger then
                      refuses to pay it again, whatever you decide)

The decision, your name (--as, default the OS user and host) and the note
are kept in the row's audit trail. Reads Pike nothing, sends Pike nothing.

Examples:
  payouts decide --batch 3f9c2a7d41e0b6aa --reference EMP-0042 --outcome not-paid \
    --note "Pike support ticket 1832: session cancelled, nothing paid"`
}

func (c *decideCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.ledger.register(fs)
	fs.StringVar(&c.batch, "batch", "", "the batch (required)")
	fs.env("batch", "PAYOUTS_BATCH")
	fs.StringVar(&c.ref, "reference", "", "the row's reference (required)")
	fs.env("reference", "PAYOUTS_REFERENCE")
	fs.StringVar(&c.decision, "outcome", "", "paid or not-paid (required)")
	fs.env("outcome", "PAYOUTS_OUTCOME")
	fs.StringVar(&c.note, "note", "", "what you checked, kept in the audit trail (required)")
	fs.env("note", "PAYOUTS_NOTE")
	fs.StringVar(&c.as, "as", "", "who decides (default: OS user@host)")
	fs.env("as", "PAYOUTS_AS")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("decide takes no arguments — see `payouts help decide`")
	}
	if c.batch == "" || c.ref == "" || c.note == "" {
		return usageErrorf("decide needs --batch, --reference, --outcome and --note — see `payouts help decide`")
	}
	if pan.Contains(c.ref) || pan.Contains(c.as) {
		return usageErrorf("--reference and --as never hold a card number (%s): name the row by its reference and yourself by name", pan.Scrub(c.ref+" "+c.as))
	}
	d, err := batch.ParseDecision(c.decision)
	if err != nil {
		return usageErrorf("--outcome: %v", err)
	}
	who := c.as
	if who == "" {
		who = osIdentity()
	}
	db, err := c.ledger.open(ctx, c.app, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if c.batch, err = resolveBatch(ctx, db, c.batch); err != nil {
		return err
	}
	row, err := batch.Decide(ctx, db, c.batch, c.ref, d, who, c.note)
	switch {
	case errors.Is(err, batch.ErrNotInReview), errors.Is(err, ledger.ErrNotFound):
		return usageErrorf("%v — only rows in review are decided; see `payouts status --batch %s`", err, c.batch)
	case errors.Is(err, ledger.ErrIllegalTransition):
		return usageErrorf("%v", err)
	case err != nil:
		return err
	}
	fmt.Fprintf(c.app.Stdout, "line %d %s: %s (decided by %s)\n", row.Line, row.Reference, row.State, who)
	if row.State == ledger.StateSucceeded {
		fmt.Fprintf(c.app.Stdout, "Next: `payouts status --batch %s` shows what is left of the batch.\n", c.batch)
	}
	if row.State == ledger.StateFailed {
		fmt.Fprintf(c.app.Stdout, "Next: `payouts rerun --batch %s` pays it again if nothing of it was ever reported paid (pass a corrected manifest as its argument if the row needs a fix).\n", c.batch)
	}
	return nil
}

// osIdentity is user@host of the process, for the audit trail.
func osIdentity() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
