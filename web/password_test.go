package web_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/payouts/payouts/web"
)

func TestPasswordHash(t *testing.T) {
	h, err := web.HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "horse") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := web.HashPassword("correct horse battery staple")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse battery staple": true, "correct horse battery stapl": false, "": false} {
		if ok, err := web.CheckPassword(h, pw); ok != want || err != nil {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	for _, bad := range []string{"", "$2a$10$abc", "$argon2id$v=19$m=0,t=2,p=1$AAAA$AAAA", "$argon2id$v=19$m=19456,t=2,p=1$!!$AAAA"} {
		if ok, err := web.CheckPassword(bad, "x"); ok || err == nil {
			t.Errorf("CheckPassword with hash %q: %v, %v; want an error", bad, ok, err)
		}
	}
	if _, err := web.HashPassword("short"); !errors.Is(err, web.ErrWeakPassword) {
		t.Fatalf("short password: %v", err)
	}
}
