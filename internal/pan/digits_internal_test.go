package pan

import (
	"testing"
	"unicode"
)

// TestDigitRanges: digitValue relies on every range of Unicode's Nd table
// being whole runs of zero to nine.
func TestDigitRanges(t *testing.T) {
	check := func(lo, hi, stride uint32) {
		if stride != 1 || (hi-lo+1)%10 != 0 {
			t.Errorf("Nd range %U–%U (stride %d): got %d code points, want runs of 10", lo, hi, stride, hi-lo+1)
		}
		for r := lo; r <= hi; r++ {
			if v, ok := digitValue(rune(r)); !ok || uint32(v) != (r-lo)%10 {
				t.Errorf("digitValue(%U): got %d, %v, want %d", r, v, ok, (r-lo)%10)
			}
		}
	}
	for _, r := range unicode.Nd.R16 {
		check(uint32(r.Lo), uint32(r.Hi), uint32(r.Stride))
	}
	for _, r := range unicode.Nd.R32 {
		check(r.Lo, r.Hi, r.Stride)
	}
}
