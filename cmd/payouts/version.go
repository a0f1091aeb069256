package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// versionCommand implements `payouts version` (and `payouts --version`).
type versionCommand struct{ app *App }

func (c *versionCommand) Name() string { return "version" }
func (c *versionCommand) Synopsis() string {
	return "print the version and the source revision it was built from"
}
func (c *versionCommand) Usage() string {
	return `Usage: payouts version

Prints the module version, the VCS revision and time the binary was built
from (and "modified" when the working tree had uncommitted changes), and the
Go version. Quote it in every bug report.

Examples:
  payouts version
  payouts --version`
}

func (c *versionCommand) Run(_ context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("version takes no arguments")
	}
	fmt.Fprintln(c.app.Stdout, versionLine())
	return nil
}

// versionLine describes the running binary from its build information.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "payouts (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " modified"
			}
		}
	}
	line := "payouts " + v
	if rev != "" {
		line += fmt.Sprintf(" revision %s%s", rev, dirty)
		if at != "" {
			line += " (" + at + ")"
		}
	}
	return line + " " + bi.GoVersion
}

// suggest returns the command name closest to a mistyped one (at most two
// edits away), or "".
func (a *App) suggest(name string) string {
	best, bestD := "", 3
	for _, c := range a.commands() {
		if d := editDistance(name, c.Name()); d < bestD {
			best, bestD = c.Name(), d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, by bytes
// (command names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
