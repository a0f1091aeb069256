package web_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/payouts/payouts/web"
)

func TestDataKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k", web.DataKeyName)
	k1, created, err := web.LoadOrCreateDataKey(p)
	if err != nil || !created || len(k1) != 32 {
		t.Fatalf("first start: %v %v %d", created, err, len(k1))
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %04o, want 0600", fi.Mode().Perm())
	}
	k2, created, err := web.LoadOrCreateDataKey(p)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second start: created %v err %v same %v", created, err, bytes.Equal(k1, k2))
	}
	if _, err := web.CreateDataKey(p); err == nil {
		t.Fatal("CreateDataKey overwrote a key")
	}
	os.Chmod(p, 0o640)
	if _, err := web.ReadDataKey(p); !errors.Is(err, web.ErrKeyPermissions) {
		t.Fatalf("0640 key: got %v, want ErrKeyPermissions", err)
	}
}

func TestUploadsEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	u, err := web.NewUploads(filepath.Join(dir, "uploads"), key)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("reference,amount,currency,card_number,recipient_name\nR1,10,RUB,4242424242424242,Ivan\n")
	if err := u.Put("b1", plain); err != nil {
		t.Fatal(err)
	}
	if err := u.Put("b2", plain); err != nil {
		t.Fatal(err)
	}
	f1, _ := os.ReadFile(filepath.Join(u.Dir(), "b1.enc"))
	f2, _ := os.ReadFile(filepath.Join(u.Dir(), "b2.enc"))
	if bytes.Contains(f1, []byte("4242")) || bytes.Contains(f1, []byte("reference")) {
		t.Fatal("stored file holds plaintext")
	}
	if bytes.Equal(f1[18:30], f2[18:30]) {
		t.Fatal("two files share a nonce")
	}
	if fi, _ := os.Stat(filepath.Join(u.Dir(), "b1.enc")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("upload mode %04o", fi.Mode().Perm())
	}
	got, err := u.Get("b1")
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Get: %v", err)
	}
	// Moved to another batch's name: the associated data no longer matches.
	os.Rename(filepath.Join(u.Dir(), "b1.enc"), filepath.Join(u.Dir(), "b3.enc"))
	if _, err := u.Get("b3"); !errors.Is(err, web.ErrUploadDamaged) {
		t.Fatalf("moved file: got %v, want ErrUploadDamaged", err)
	}
	other, _ := web.NewUploads(u.Dir(), bytes.Repeat([]byte{8}, 32))
	if _, err := other.Get("b2"); !errors.Is(err, web.ErrUploadDamaged) {
		t.Fatalf("wrong key: got %v, want ErrUploadDamaged", err)
	}
	if err := u.Delete("b2"); err != nil || u.Has("b2") {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := u.Get("b2"); !errors.Is(err, web.ErrNoUpload) {
		t.Fatalf("after Delete: got %v, want ErrNoUpload", err)
	}
	if err := u.Put("../x", plain); err == nil {
		t.Fatal("Put accepted a path")
	}
	ents, _ := os.ReadDir(u.Dir())
	for _, e := range ents {
		if e.Name() != "b3.enc" {
			t.Errorf("left over in the store: %s", e.Name())
		}
	}
}
