package batch

import (
	"fmt"
	"path/filepath"

	"github.com/payouts/payouts/batch/manifest"
)

// Source is where a validated manifest's bytes come from for the passes
// after validation (loading rows, feeding card numbers to the engine): a
// file for the CLI, memory for the console, which keeps uploads encrypted
// and never writes their plaintext to disk.
type Source interface {
	// Name is what the ledger records as the batch's manifest name (a
	// file's absolute path; an upload's file name). It must not hold a
	// card number.
	Name() string
	// Reread reads the manifest again and calls fn with each row in order,
	// with manifest.Reread's contract: an error wrapping
	// manifest.ErrChanged if the bytes are not those validated (sha256).
	Reread(opts manifest.Options, sha256 string, fn func(manifest.Row) error) error
	// Read validates the whole manifest as manifest.ReadFile does, calling
	// fn (which may be nil) with each valid row.
	Read(opts manifest.Options, fn func(manifest.Row) error) (manifest.Summary, error)
}

// FileSource is the manifest file at path.
func FileSource(path string) Source { return fileSource(path) }

type fileSource string

func (f fileSource) Name() string {
	if abs, err := filepath.Abs(string(f)); err == nil {
		return abs
	}
	return string(f)
}

func (f fileSource) Read(opts manifest.Options, fn func(manifest.Row) error) (manifest.Summary, error) {
	return manifest.ReadFile(string(f), opts, fn)
}

func (f fileSource) Reread(opts manifest.Options, sha256 string, fn func(manifest.Row) error) error {
	return manifest.Reread(string(f), opts, sha256, fn)
}

// MemorySource is a manifest held in memory (a decrypted upload), named
// name. It is read with manifest.ReadBytes: CSV or XLSX, by content.
//
// Reading it runs the whole-file checks again, duplicates included; they
// hold, since the bytes are those validated (the SHA-256 is compared).
func MemorySource(name string, data []byte) Source { return memSource{name: name, data: data} }

type memSource struct {
	name string
	data []byte
}

func (m memSource) Name() string { return m.name }

func (m memSource) Read(opts manifest.Options, fn func(manifest.Row) error) (manifest.Summary, error) {
	return manifest.ReadBytes(m.name, m.data, opts, fn)
}

func (m memSource) Reread(opts manifest.Options, sha256 string, fn func(manifest.Row) error) error {
	if sha256 == "" {
		return fmt.Errorf("reread manifest: the SHA-256 of the validated file is required")
	}
	sum, err := manifest.ReadBytes(m.name, m.data, opts, fn)
	if err != nil {
		return err
	}
	if sum.SHA256 != sha256 {
		return fmt.Errorf("%w: SHA-256 was %s when validated, now %s", manifest.ErrChanged, sha256, sum.SHA256)
	}
	return nil
}
