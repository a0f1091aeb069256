package pike

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MinKeyBits is the smallest RSA key accepted for signing or verifying.
const MinKeyBits = 2048

// Signature errors.
var (
	ErrMissingSignature = errors.New("missing X-PARTNER-SIGN signature")
	ErrBadSignature     = errors.New("signature does not verify")
	ErrWeakKey          = errors.New("RSA key shorter than 2048 bits")
)

// The signature scheme (pike-api.md §2). Pike's own paragraph on it was not
// readable; hash, padding and encoding come from the sibling Smart Glocal docs
// and Bank 131's PHP SDK (openssl_sign(..., OPENSSL_ALGO_SHA256) +
// base64_encode), confirmed byte-for-byte against that SDK's test vector (see
// testdata). If proxy-demo ever disagrees, Sign and Verify are the only two
// functions to change.

// Signer signs request bodies with the partner's private key.
type Signer struct {
	key *rsa.PrivateKey
}

// NewSigner returns a Signer for key. Keys shorter than MinKeyBits are refused.
func NewSigner(key *rsa.PrivateKey) (*Signer, error) {
	if key == nil {
		return nil, errors.New("nil private key")
	}
	if key.N.BitLen() < MinKeyBits {
		return nil, fmt.Errorf("private key has %d bits: %w", key.N.BitLen(), ErrWeakKey)
	}
	key.Precompute()
	return &Signer{key: key}, nil
}

// Sign returns the X-PARTNER-SIGN value for body: standard Base64 of
// RSASSA-PKCS1-v1_5(SHA-256(body)). body must be the exact bytes sent.
func (s *Signer) Sign(body []byte) (string, error) {
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign body: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Public returns the public half of the signing key.
func (s *Signer) Public() *rsa.PublicKey { return &s.key.PublicKey }

// Key returns the private key.
func (s *Signer) Key() *rsa.PrivateKey { return s.key }

// Verifier checks signatures made with a public key: Pike's key for
// webhooks, the partner's key in the sandbox.
type Verifier struct {
	key *rsa.PublicKey
}

// NewVerifier returns a Verifier for key. Keys shorter than MinKeyBits are refused.
func NewVerifier(key *rsa.PublicKey) (*Verifier, error) {
	if key == nil {
		return nil, errors.New("nil public key")
	}
	if key.N.BitLen() < MinKeyBits {
		return nil, fmt.Errorf("public key has %d bits: %w", key.N.BitLen(), ErrWeakKey)
	}
	return &Verifier{key: key}, nil
}

// Verify checks that sig (the X-PARTNER-SIGN header value) is a valid
// signature of the raw body bytes. It returns ErrMissingSignature for an empty
// header and an error wrapping ErrBadSignature for anything that does not verify.
func (v *Verifier) Verify(body []byte, sig string) error {
	raw, err := v.decodeSignature(sig)
	if err != nil {
		return err
	}
	return v.verifyRaw(body, raw)
}

// verifyRaw checks a decoded signature of body.
func (v *Verifier) verifyRaw(body, raw []byte) error {
	sum := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(v.key, crypto.SHA256, sum[:], raw); err != nil {
		return ErrBadSignature
	}
	return nil
}

// decodeSignature checks what can be checked of sig without the body: it
// is present, standard Base64, and exactly as long as a signature made with
// the key. The webhook handler refuses a request failing it before reading
// its body. Errors are those of Verify.
func (v *Verifier) decodeSignature(sig string) ([]byte, error) {
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return nil, ErrMissingSignature
	}
	if want := base64.StdEncoding.EncodedLen(v.key.Size()); len(sig) != want {
		return nil, fmt.Errorf("%w: header has %d characters, want %d for a %d-bit key", ErrBadSignature, len(sig), want, v.key.N.BitLen())
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != v.key.Size() {
		return nil, fmt.Errorf("%w: header is not standard Base64", ErrBadSignature)
	}
	return raw, nil
}

// LoadPrivateKey reads an RSA private key from a PEM file in PKCS#1
// ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY") form.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return key, nil
}

// errEncryptedKey explains what to do with a passphrase-protected key
// (PKCS#8 "ENCRYPTED PRIVATE KEY" or legacy PKCS#1 with Proc-Type: 4,ENCRYPTED).
var errEncryptedKey = errors.New("the key is encrypted: export it unencrypted (openssl pkey -in KEY -out KEY.plain) and protect the file with permissions")

// ParsePrivateKeyPEM parses an RSA private key in PKCS#1 or PKCS#8 PEM form
// and refuses keys shorter than MinKeyBits.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found: expected -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----")
	}
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errEncryptedKey
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#1 key: %w", err)
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("PKCS#8 key is %T, not RSA", k)
		}
		key = rk
	case "ENCRYPTED PRIVATE KEY":
		return nil, errEncryptedKey
	default:
		return nil, fmt.Errorf("PEM block %q is not an RSA private key", block.Type)
	}
	if key.N.BitLen() < MinKeyBits {
		return nil, fmt.Errorf("key has %d bits: %w", key.N.BitLen(), ErrWeakKey)
	}
	return key, nil
}

// LoadPublicKey reads an RSA public key from a PEM file: PKIX
// ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") or a certificate.
func LoadPublicKey(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	key, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return key, nil
}

// ParsePublicKeyPEM parses an RSA public key in PKIX, PKCS#1 or certificate
// PEM form and refuses keys shorter than MinKeyBits.
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found: expected -----BEGIN PUBLIC KEY-----")
	}
	var key *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKIX key: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is %T, not RSA", k)
		}
		key = rk
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#1 public key: %w", err)
		}
		key = k
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		rk, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("certificate key is %T, not RSA", c.PublicKey)
		}
		key = rk
	default:
		return nil, fmt.Errorf("PEM block %q is not an RSA public key", block.Type)
	}
	if key.N.BitLen() < MinKeyBits {
		return nil, fmt.Errorf("key has %d bits: %w", key.N.BitLen(), ErrWeakKey)
	}
	return key, nil
}

// GenerateKey makes a new RSA-2048 key pair.
func GenerateKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, MinKeyBits)
}

// EncodePrivateKeyPEM encodes key as PKCS#8 PEM.
func EncodePrivateKeyPEM(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKeyPEM encodes key as PKIX PEM, the form to hand to Pike.
func EncodePublicKeyPEM(key *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
