// Package samples holds the example manifests, built into the binary so
// that `payouts demo` runs anywhere.
package samples

import _ "embed"

// Payroll is samples/payroll.csv: realistic rows using the sandbox's test
// cards, so a demo run shows every outcome.
//
//go:embed payroll.csv
var Payroll []byte
