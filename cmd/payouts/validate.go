package main

import (
	"context"
	"errors"
)

// validateCommand implements `payouts validate`. Not built yet.
type validateCommand struct {
	app *App
}

func (c *validateCommand) Name() string { return "validate" }
func (c *validateCommand) Synopsis() string {
	return "parse and validate a manifest; exit 0 valid, 2 not"
}
func (c *validateCommand) Usage() string { return "Usage: payouts validate" }

func (c *validateCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts validate: not implemented yet")
}
