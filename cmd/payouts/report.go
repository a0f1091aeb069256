package main

import (
	"context"
	"errors"
)

// reportCommand implements `payouts report`. Not built yet.
type reportCommand struct {
	app *App
}

func (c *reportCommand) Name() string     { return "report" }
func (c *reportCommand) Synopsis() string { return "write the reconciliation report of a batch" }
func (c *reportCommand) Usage() string    { return "Usage: payouts report" }

func (c *reportCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts report: not implemented yet")
}
