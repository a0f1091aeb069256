package main

import (
	"context"
	"errors"
)

// serveCommand implements `payouts serve`. Not built yet.
type serveCommand struct {
	app *App
}

func (c *serveCommand) Name() string { return "serve" }
func (c *serveCommand) Synopsis() string {
	return "webhook receiver and poller for batches still in flight"
}
func (c *serveCommand) Usage() string { return "Usage: payouts serve" }

func (c *serveCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts serve: not implemented yet")
}
