package main

import (
	"context"
	"errors"
)

// statusCommand implements `payouts status`. Not built yet.
type statusCommand struct {
	app *App
}

func (c *statusCommand) Name() string     { return "status" }
func (c *statusCommand) Synopsis() string { return "counts and sums by state and currency" }
func (c *statusCommand) Usage() string    { return "Usage: payouts status" }

func (c *statusCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts status: not implemented yet")
}
