package main

import (
	"context"
	"errors"
)

// sandboxCommand implements `payouts sandbox`. Not built yet.
type sandboxCommand struct {
	app *App
}

func (c *sandboxCommand) Name() string     { return "sandbox" }
func (c *sandboxCommand) Synopsis() string { return "run the local Pike sandbox" }
func (c *sandboxCommand) Usage() string    { return "Usage: payouts sandbox" }

func (c *sandboxCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts sandbox: not implemented yet")
}
