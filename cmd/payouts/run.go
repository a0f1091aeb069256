package main

import (
	"context"
	"errors"
)

// runCommand implements `payouts run`. Not built yet.
type runCommand struct {
	app *App
}

func (c *runCommand) Name() string     { return "run" }
func (c *runCommand) Synopsis() string { return "pay every row of a manifest exactly once" }
func (c *runCommand) Usage() string    { return "Usage: payouts run" }

func (c *runCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts run: not implemented yet")
}
