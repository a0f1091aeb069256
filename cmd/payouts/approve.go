package main

import (
	"context"
	"errors"
)

// approveCommand implements `payouts approve` and `payouts reject`. Not built yet.
type approveCommand struct {
	app    *App
	reject bool
}

func (c *approveCommand) Name() string {
	if c.reject {
		return "reject"
	}
	return "approve"
}
func (c *approveCommand) Synopsis() string {
	if c.reject {
		return "cancel every row of a held batch waiting for confirmation"
	}
	return "confirm every row of a held batch waiting for confirmation"
}
func (c *approveCommand) Usage() string { return "Usage: payouts " + c.Name() + " --batch ID" }

func (c *approveCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts " + c.Name() + ": not implemented yet")
}
