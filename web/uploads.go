package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors of the upload store.
var (
	// ErrKeyPermissions: the data key file can be read by others than its owner.
	ErrKeyPermissions = errors.New("data key file is readable by group or others")
	// ErrNoUpload: no stored manifest for that name (destroyed, or never stored).
	ErrNoUpload = errors.New("no stored upload")
	// ErrUploadDamaged: a stored manifest does not decrypt with the data key
	// (another key, or the file was altered or moved to another batch).
	ErrUploadDamaged = errors.New("stored upload does not decrypt with the data key")
)

// DataKeyName is the data key file's default name, beside the ledger.
const DataKeyName = "console-data.key"

// ReadDataKey reads a 32-byte data key, written as 64 hex digits, from
// path. A key file that group or others may read is refused.
func ReadDataKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("data key %s has mode %04o: %w — run `chmod 600 %s`", path, fi.Mode().Perm(), ErrKeyPermissions, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("data key %s: want 64 hex digits (32 bytes)", path)
	}
	return key, nil
}

// CreateDataKey writes a new random data key to path (mode 0600), refusing
// to overwrite an existing file.
func CreateDataKey(path string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("data key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("data key: %w", err)
	}
	return key, f.Close()
}

// LoadOrCreateDataKey reads the key at path, creating it if the file does
// not exist (first start of the console).
func LoadOrCreateDataKey(path string) (key []byte, created bool, err error) {
	key, err = ReadDataKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = CreateDataKey(path)
		return key, err == nil, err
	}
	return key, false, err
}

// Uploads keeps uploaded manifests encrypted at rest, one file per name
// (a batch id, or a batch id with a suffix for a rerun's file):
// AES-256-GCM with a random nonce per file and the name as associated
// data, so a file renamed to another batch does not decrypt. Plaintext
// exists only in memory; files are written atomically with mode 0600.
type Uploads struct {
	dir  string
	aead cipher.AEAD
}

// uploadMagic starts every stored file (format version 1).
const uploadMagic = "payouts-upload-v1\n"

// NewUploads returns the store in dir (created 0700 if missing) with key.
func NewUploads(dir string, key []byte) (*Uploads, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("upload store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("upload store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload store: %w", err)
	}
	return &Uploads{dir: dir, aead: aead}, nil
}

// Dir is the directory of the store.
func (u *Uploads) Dir() string { return u.dir }

func (u *Uploads) path(name string) (string, error) {
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != "" || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("upload name %q: only letters, digits, '.', '_' and '-'", name)
	}
	return filepath.Join(u.dir, name+".enc"), nil
}

// Put encrypts data and stores it under name, replacing any earlier file
// atomically (temporary file of ciphertext only, fsync, rename, fsync of
// the directory).
func (u *Uploads) Put(name string, data []byte) error {
	p, err := u.path(name)
	if err != nil {
		return err
	}
	nonce := make([]byte, u.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	out := make([]byte, 0, len(uploadMagic)+len(nonce)+len(data)+u.aead.Overhead())
	out = append(out, uploadMagic...)
	out = append(out, nonce...)
	out = u.aead.Seal(out, nonce, data, []byte(name))
	tmp, err := os.CreateTemp(u.dir, ".tmp-*.enc")
	if err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("store upload: %w", err)
	}
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return fmt.Errorf("store upload: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store upload: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	return syncDir(u.dir)
}

// Get decrypts the file stored under name, in memory. Returns an error
// wrapping ErrNoUpload if there is none, ErrUploadDamaged if it does not
// decrypt.
func (u *Uploads) Get(name string) ([]byte, error) {
	p, err := u.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("upload %s: %w", name, ErrNoUpload)
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", name, err)
	}
	ns := u.aead.NonceSize()
	if len(b) < len(uploadMagic)+ns || string(b[:len(uploadMagic)]) != uploadMagic {
		return nil, fmt.Errorf("upload %s: %w", name, ErrUploadDamaged)
	}
	b = b[len(uploadMagic):]
	data, err := u.aead.Open(nil, b[:ns], b[ns:], []byte(name))
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", name, ErrUploadDamaged)
	}
	return data, nil
}

// Has reports whether a file is stored under name.
func (u *Uploads) Has(name string) bool {
	p, err := u.path(name)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Delete destroys the file stored under name. Deleting what is not there
// is not an error.
func (u *Uploads) Delete(name string) error {
	p, err := u.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("destroy upload %s: %w", name, err)
	}
	return syncDir(u.dir)
}

// Names lists the names stored, and removes leftover temporary files of
// writes cut short (ciphertext only).
func (u *Uploads) Names() ([]string, error) {
	ents, err := os.ReadDir(u.dir)
	if err != nil {
		return nil, fmt.Errorf("upload store: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, ".tmp-"):
			_ = os.Remove(filepath.Join(u.dir, n))
		case strings.HasSuffix(n, ".enc") && !e.IsDir():
			out = append(out, strings.TrimSuffix(n, ".enc"))
		}
	}
	return out, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // not every file system syncs directories
	return nil
}
