//go:build !race

package manifest_test

const raceEnabled = false
