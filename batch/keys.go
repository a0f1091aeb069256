package batch

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/pike"
)

// The Pike methods for which the runner derives idempotency keys.
var keyedMethods = []string{pike.MethodSessionCreate, pike.MethodStartPayout, pike.MethodInitPayout, pike.MethodConfirm, pike.MethodCancel}

// IdempotencyKey derives the X-PARTNER-IDEMPOTENCY-KEY of one logical call:
// the same (batch, reference, attempt, method) always gives the same key, so
// every retry of a call, in this process or after a crash, carries the key
// of the first try. The key is formatted like a UUID (36 characters) because
// Pike does not document a format and that is the most widely accepted one.
func IdempotencyKey(batchID, reference string, attempt int, method string) string {
	h := sha256.New()
	for _, s := range []string{"payouts-idempotency-v1", batchID, reference, strconv.Itoa(attempt), method} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8: custom
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// attemptKeys returns the idempotency keys of every keyed method for one attempt.
func attemptKeys(batchID, reference string, attempt int) map[string]string {
	keys := make(map[string]string, len(keyedMethods))
	for _, m := range keyedMethods {
		keys[m] = IdempotencyKey(batchID, reference, attempt, m)
	}
	return keys
}

// Fingerprinter computes the keyed card fingerprint stored in the ledger
// instead of the card number: HMAC-SHA256 under a key that is not in the
// ledger file. With BIN and last4 known, an unkeyed hash of a 16-digit card
// leaves 10^6 candidates and is reversed in a second; the key prevents that.
type Fingerprinter struct {
	key []byte
}

// FingerprintKeySize is the size in bytes of a fingerprint key made by
// WriteFingerprintKey.
const FingerprintKeySize = 32

// NewFingerprinter returns a Fingerprinter with a key of at least 16 bytes.
func NewFingerprinter(key []byte) (*Fingerprinter, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("fingerprint key has %d bytes, want at least 16", len(key))
	}
	return &Fingerprinter{key: append([]byte(nil), key...)}, nil
}

// KeyID names the fingerprint key without revealing it: the ledger records
// it, so that a wrong or lost key file is found before any row is touched
// instead of making every card look changed.
func (f *Fingerprinter) KeyID() string {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte("payouts fingerprint key id"))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// WriteFingerprintKey creates the key file path (mode 0600, never over an
// existing file) holding a new random key, in hex, and returns its
// Fingerprinter. The key must outlive the ledger's rows: keep it with the
// ledger's backups, but not in the ledger.
func WriteFingerprintKey(path string) (*Fingerprinter, error) {
	key := make([]byte, FingerprintKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("fingerprint key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("fingerprint key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("fingerprint key %s: %w", path, err)
	}
	return NewFingerprinter(key)
}

// ReadFingerprintKey reads a key file written by WriteFingerprintKey. The
// error wraps fs.ErrNotExist when there is no such file.
func ReadFingerprintKey(path string) (*Fingerprinter, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != FingerprintKeySize {
		return nil, fmt.Errorf("fingerprint key %s: not %d bytes in hex, as `payouts init` writes it", path, FingerprintKeySize)
	}
	return NewFingerprinter(key)
}

// FingerprintKeyFromSigner derives a fingerprint key from the partner's
// private signing key. Ledgers made by payouts before fingerprint key files
// (no key id recorded) were fingerprinted with it and keep using it until
// `payouts init --migrate-fingerprints`: it changes whenever the partner
// key is rotated, so new ledgers never use it.
func FingerprintKeyFromSigner(s *pike.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(s.Key())
	if err != nil {
		return nil, fmt.Errorf("derive fingerprint key: %w", err)
	}
	m := hmac.New(sha256.New, der)
	m.Write([]byte("payouts card fingerprint v1"))
	return m.Sum(nil), nil
}

// Fingerprint returns the hex HMAC-SHA256 of the card's digits.
func (f *Fingerprinter) Fingerprint(card manifest.PAN) string {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(card.Digits()))
	return hex.EncodeToString(m.Sum(nil))
}
