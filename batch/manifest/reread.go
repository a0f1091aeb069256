package manifest

import (
	"errors"
	"fmt"
)

// ErrChanged: the file read again by Reread is not the file that was
// validated (its SHA-256 differs).
var ErrChanged = errors.New("manifest changed while being read")

// Reread reads the file at path again, after ReadFile validated the whole
// file with the same opts and reported sha256, and calls fn with each row in
// file order.
//
// It skips the duplicate checks, whose memory grows with the file: the
// SHA-256 of the bytes read, compared with sha256 at the end, proves they
// are the bytes validated. Rows are handed to fn as they are read, so a
// caller must not treat them as final before Reread returns nil.
//
// It returns fn's error wrapped (errors.Is works) as soon as fn fails; the
// errors of ReadFile (a *ValidationError, a failure to read) if the file no
// longer reads as valid; and an error wrapping ErrChanged if the file
// differs from the one validated.
func Reread(path string, opts Options, sha256 string, fn func(Row) error) error {
	if sha256 == "" {
		return errors.New("reread manifest: the SHA-256 of the validated file is required")
	}
	opts.noDuplicateCheck = true
	sum, err := ReadFile(path, opts, fn)
	if err != nil {
		return err
	}
	if sum.SHA256 != sha256 {
		return fmt.Errorf("%w: SHA-256 was %s when validated, now %s", ErrChanged, sha256, sum.SHA256)
	}
	return nil
}
