//go:build !linux

package main

import (
	"os"
	"testing"
)

// openTerminal skips: the test opens pseudo-terminals on Linux only.
func openTerminal(t *testing.T) *os.File {
	t.Skip("pseudo-terminal tests run on Linux only")
	return nil
}
