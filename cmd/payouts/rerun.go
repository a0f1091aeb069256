package main

import (
	"context"
	"errors"
)

// rerunCommand implements `payouts rerun`. Not built yet.
type rerunCommand struct {
	app *App
}

func (c *rerunCommand) Name() string { return "rerun" }
func (c *rerunCommand) Synopsis() string {
	return "new attempts for rows whose last attempt failed definitively"
}
func (c *rerunCommand) Usage() string { return "Usage: payouts rerun" }

func (c *rerunCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts rerun: not implemented yet")
}
