package main

import (
	"context"
	"errors"
)

// keygenCommand implements `payouts keygen`. Not built yet.
type keygenCommand struct {
	app *App
}

func (c *keygenCommand) Name() string     { return "keygen" }
func (c *keygenCommand) Synopsis() string { return "make an RSA key pair to register with Pike" }
func (c *keygenCommand) Usage() string    { return "Usage: payouts keygen" }

func (c *keygenCommand) Run(ctx context.Context, args []string) error {
	return errors.New("payouts keygen: not implemented yet")
}
