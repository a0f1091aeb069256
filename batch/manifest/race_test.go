//go:build race

package manifest_test

// raceEnabled: the race detector makes the tests that read tens of
// megabytes take minutes; they run without it.
const raceEnabled = true
