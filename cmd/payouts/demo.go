package main

import (
	"context"
	"errors"
)

// demoCommand implements `payouts demo`. Not built yet.
type demoCommand struct {
	app *App
}

func (c *demoCommand) Name() string { return "demo" }
func (c *demoCommand) Synopsis() string {
	return "sandbox + samples/payroll.csv + run + report, all local"
}
func (c *demoCommand) Usage() string { return "Usage: payouts demo" }

func (c *demoCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts demo: not implemented yet")
}
