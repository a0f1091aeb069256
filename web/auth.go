package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/payouts/payouts/ledger"
)

// cookieName is the session cookie's name: with the __Host- prefix when
// the cookie is Secure, so that no subdomain or plain-HTTP page can set it.
func (s *Server) cookieName() string {
	if s.cfg.Secure {
		return "__Host-payouts_session"
	}
	return "payouts_session"
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// dummyHash is checked against for an unknown user name, so that a wrong
// name takes as long as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("not a password of anyone")
	return h
})

// login checks a user name and password and opens a session: a new random
// token (32 bytes), stored hashed. A locked account is refused even with
// the right password (errLocked); every refusal is audited.
func (s *Server) login(ctx context.Context, r *http.Request, name, password string) (string, ledger.User, error) {
	e := ledger.AuditEntry{RemoteAddr: s.remote(r)}
	now := s.cfg.Now()
	u, err := s.db.User(ctx, name)
	if errors.Is(err, ledger.ErrNotFound) || (err == nil && u.Disabled) {
		_, _ = CheckPassword(dummyHash(), password)
		if err == nil {
			e.Detail = "user is disabled"
		}
		if _, err := s.db.LoginFailed(ctx, safeName(name), ledger.LockPolicy{}, e); err != nil {
			return "", ledger.User{}, err
		}
		return "", ledger.User{}, errUnauthenticated
	}
	if err != nil {
		return "", ledger.User{}, err
	}
	// One sign-in at a time per user, from reading the lock to recording
	// the outcome: guesses sent in parallel would otherwise all read the
	// account unlocked and all get a password check, whatever the limit.
	unlock := s.lockLogin(u.Name)
	defer unlock()
	if u, err = s.db.User(ctx, u.Name); err != nil {
		return "", ledger.User{}, err
	}
	if u.Disabled {
		return "", ledger.User{}, errUnauthenticated
	}
	if u.Locked(now) {
		e.Actor, e.Action, e.Detail = u.Name, "login_refused_locked", "account locked until "+u.LockedUntil.UTC().Format("2006-01-02 15:04:05Z")
		if err := s.db.Audit(ctx, e); err != nil {
			return "", ledger.User{}, err
		}
		return "", ledger.User{}, errLocked
	}
	hash, err := s.db.UserPasswordHash(ctx, name)
	if err != nil {
		return "", ledger.User{}, err
	}
	ok, err := CheckPassword(hash, password)
	if err != nil || !ok {
		if _, err := s.db.LoginFailed(ctx, name, s.cfg.Lock, e); err != nil {
			return "", ledger.User{}, err
		}
		return "", ledger.User{}, errUnauthenticated
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", ledger.User{}, err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	sess := ledger.Session{TokenSHA256: hashToken(tok), User: u.Name, RemoteAddr: e.RemoteAddr, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.cfg.SessionMax)}
	if err := s.db.LoginSucceeded(ctx, u.Name, sess, e); err != nil {
		return "", ledger.User{}, err
	}
	return tok, u, nil
}

// lockLogin serialises the sign-ins of user name (an existing user: the
// map is bounded by the users) and returns the unlock.
func (s *Server) lockLogin(name string) func() {
	m, _ := s.logins.LoadOrStore(name, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// safeName bounds what an unknown user name puts in the audit log.
func safeName(name string) string {
	if name == "" {
		return "(empty)"
	}
	if len(name) > 64 {
		return name[:64] + "…"
	}
	return name
}

func (s *Server) setCookie(w http.ResponseWriter, tok string) {
	c := &http.Cookie{Name: s.cookieName(), Value: tok, Path: "/", HttpOnly: true, Secure: s.cfg.Secure, SameSite: http.SameSiteLaxMode}
	if tok == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// apiLogin is POST /api/v1/login {"username","password"}.
func (s *Server) apiLogin(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil {
		httpError(w, r, http.StatusBadRequest, `send {"username": ..., "password": ...}`)
		return
	}
	tok, u, err := s.login(r.Context(), r, in.Username, in.Password)
	if err != nil {
		if errors.Is(err, errUnauthenticated) {
			httpError(w, r, http.StatusUnauthorized, "wrong user name or password")
			return
		}
		s.fail(w, r, err)
		return
	}
	s.setCookie(w, tok)
	writeJSON(w, http.StatusOK, map[string]any{"user": u.Name, "roles": u.Roles})
}

// logout ends the session (POST /logout, POST /api/v1/logout).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.cookieName()); err == nil && c.Value != "" {
		if sess, _, err := s.db.SessionUser(r.Context(), hashToken(c.Value), s.cfg.SessionIdle); err == nil {
			_ = s.db.Audit(r.Context(), ledger.AuditEntry{Actor: sess.User, RemoteAddr: s.remote(r), Action: "logout"})
		}
		if err := s.db.DeleteSession(r.Context(), hashToken(c.Value)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.setCookie(w, "")
	if r.URL.Path == "/logout" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "signed out"})
}

// user is the signed-in user of a request.
type user struct {
	ledger.User
	remote string
}

func (u user) audit(action, batchID, detail string) ledger.AuditEntry {
	return ledger.AuditEntry{Actor: u.Name, RemoteAddr: u.remote, Action: action, BatchID: batchID, Detail: detail}
}

// current returns the request's signed-in user, or errUnauthenticated.
func (s *Server) current(r *http.Request) (user, error) {
	c, err := r.Cookie(s.cookieName())
	if err != nil || c.Value == "" {
		return user{}, errUnauthenticated
	}
	_, u, err := s.db.SessionUser(r.Context(), hashToken(c.Value), s.cfg.SessionIdle)
	if errors.Is(err, ledger.ErrNotFound) {
		return user{}, errUnauthenticated
	}
	if err != nil {
		return user{}, err
	}
	return user{User: u, remote: s.remote(r)}, nil
}

// auth wraps an API (or download) handler: 401 without a session.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, user)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.current(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r, u)
	})
}

// page wraps a page handler: without a session, to /login and back.
func (s *Server) page(h func(http.ResponseWriter, *http.Request, user)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.current(r)
		if errors.Is(err, errUnauthenticated) {
			if r.Method != http.MethodGet {
				httpError(w, r, http.StatusUnauthorized, "sign in first")
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r, u)
	})
}

// need refuses a user without any of the roles.
func need(u user, roles ...ledger.Role) error {
	for _, r := range roles {
		if u.Has(r) {
			return nil
		}
	}
	return errForbidden
}

// auditAnon records something done by whoever sent r (signed in or not).
func (s *Server) auditAnon(r *http.Request, action, detail string) {
	actor := "(anonymous)"
	if u, err := s.current(r); err == nil {
		actor = u.Name
	}
	if err := s.db.Audit(context.WithoutCancel(r.Context()), ledger.AuditEntry{Actor: actor, RemoteAddr: s.remote(r), Action: action, Detail: detail}); err != nil {
		s.log.Error("audit failed", "action", action, "err", err)
	}
}
