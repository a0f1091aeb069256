//go:build unix

package ledger

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with pid exists on this host.
// EPERM means it exists but belongs to someone else.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return !errors.Is(err, syscall.ESRCH)
}
