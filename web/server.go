package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// Config configures a Server.
type Config struct {
	DB      *ledger.DB
	Pike    batch.Pike    // pays approved batches
	Intake  *batch.Intake // webhooks stored by the listener (may be nil: polling)
	Uploads *Uploads      // encrypted manifests
	Engine  batch.Config  // base engine configuration (fingerprinter, logger, timings); Confirm is always auto
	Owner   ledger.Owner  // identifies the server in batch leases
	Logger  *slog.Logger  // nil: discard
	// ManifestOptions are the options every upload is validated with:
	// serve's safety caps (MaxAmount, MaxTotal), AllowExtraColumns, ...
	ManifestOptions manifest.Options
	// MaxUploadBytes bounds a request's body (default 64 MiB).
	MaxUploadBytes int64
	// Secure marks cookies Secure with the __Host- prefix: the console is
	// served over TLS, or behind a proxy that terminates TLS.
	Secure bool
	// TrustProxy records X-Forwarded-For in the audit log beside the peer
	// address (behind a reverse proxy).
	TrustProxy bool
	// SessionIdle and SessionMax are the idle and absolute session expiry
	// (defaults 30 minutes and 12 hours).
	SessionIdle, SessionMax time.Duration
	// Lock is the wrong-password lockout (default 5 in a row, 15 minutes).
	Lock ledger.LockPolicy
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server is the console: an http.Handler and the background payers of
// approved batches.
type Server struct {
	cfg     Config
	db      *ledger.DB
	log     *slog.Logger
	handler http.Handler
	pages   *pages

	ctx       context.Context // ends when the server is closed
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	paying    map[string]bool // batches with a payer running
	uploading map[string]bool // batches being uploaded
	logins    sync.Map        // user name → *sync.Mutex: one sign-in at a time per user
}

// New returns a console server. Call Resume to pick up batches that were
// being paid when the process stopped, and Close to stop paying.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil || cfg.Uploads == nil {
		return nil, errors.New("web: a ledger and an upload store are required")
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 64 << 20
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 30 * time.Minute
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = 12 * time.Hour
	}
	if cfg.Lock.MaxFailures <= 0 {
		cfg.Lock = ledger.LockPolicy{MaxFailures: 5, LockFor: 15 * time.Minute}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner.PID == 0 {
		cfg.Owner = ledger.CurrentOwner("payouts serve --web")
	}
	p, err := loadPages()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, db: cfg.DB, log: cfg.Logger, pages: p, paying: map[string]bool{}, uploading: map[string]bool{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close stops the payers (rows in flight stay recorded in the ledger and
// are resumed by the next start) and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler()))
	// The JSON API.
	mux.HandleFunc("POST /api/v1/login", s.apiLogin)
	mux.HandleFunc("POST /api/v1/logout", s.logout)
	mux.Handle("GET /api/v1/batches", s.auth(s.apiBatches))
	mux.Handle("POST /api/v1/batches", s.auth(s.apiUpload))
	mux.Handle("GET /api/v1/batches/{id}", s.auth(s.apiBatch))
	mux.Handle("GET /api/v1/batches/{id}/rows", s.auth(s.apiRows))
	mux.Handle("POST /api/v1/batches/{id}/approve", s.auth(s.apiDecide(true)))
	mux.Handle("POST /api/v1/batches/{id}/reject", s.auth(s.apiDecide(false)))
	mux.Handle("GET /api/v1/batches/{id}/report", s.auth(s.report))
	mux.Handle("POST /api/v1/batches/{id}/rerun", s.auth(s.apiRerun))
	mux.Handle("GET /api/v1/audit", s.auth(s.apiAudit))
	// The pages.
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginForm)
	mux.HandleFunc("POST /logout", s.logout)
	mux.Handle("GET /{$}", s.page(s.batchesPage))
	mux.Handle("GET /upload", s.page(s.uploadPage))
	mux.Handle("POST /upload", s.page(s.uploadForm))
	mux.Handle("POST /problems.csv", s.page(s.problemsCSV))
	mux.Handle("GET /batches/{id}", s.page(s.batchPage))
	mux.Handle("GET /batches/{id}/events", s.auth(s.events))
	mux.Handle("GET /batches/{id}/report", s.auth(s.report))
	mux.Handle("POST /batches/{id}/approve", s.page(s.decideForm(true)))
	mux.Handle("POST /batches/{id}/reject", s.page(s.decideForm(false)))
	mux.Handle("POST /batches/{id}/rerun", s.page(s.rerunForm))
	mux.Handle("GET /audit", s.page(s.auditPage))

	// Every state change is a POST; CrossOriginProtection refuses one
	// that a browser says comes from another origin (403). Requests
	// without Origin or Sec-Fetch-Site (curl, scripts) pass.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.auditAnon(r, "cross_origin_refused", r.Method+" "+r.URL.Path)
		httpError(w, r, http.StatusForbidden, "cross-origin request refused")
	}))
	return securityHeaders(s.cfg.Secure, cop.Handler(mux))
}

// securityHeaders sets the headers every answer carries.
func securityHeaders(tls bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// Errors of the service layer; httpStatus maps them.
var (
	errUnauthenticated = errors.New("sign in first")
	errForbidden       = errors.New("not allowed")
	errNotFound        = errors.New("no such batch")
	errTooLarge        = errors.New("upload too large")
	errConflict        = errors.New("conflict")
	errLocked          = errors.New("account locked: too many wrong passwords — wait and try again, or ask an admin")
	errBadRequest      = errors.New("bad request")
)

// ProblemsError is an upload's validation failure: every problem, by line
// and column. Nothing was stored.
type ProblemsError struct {
	Problems []Problem `json:"problems"`
	Total    int       `json:"total"`
}

// Error says how many problems there are.
func (e *ProblemsError) Error() string {
	return fmt.Sprintf("the manifest has %d problems; nothing was stored", e.Total)
}

// Problem is one problem of an uploaded manifest.
type Problem struct {
	Line    int    `json:"line"`
	Column  string `json:"column"`
	Message string `json:"message"`
}

func httpStatus(err error) int {
	var pe *ProblemsError
	switch {
	case errors.As(err, &pe):
		return http.StatusUnprocessableEntity
	case errors.Is(err, errUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden), errors.Is(err, ledger.ErrFourEyes):
		return http.StatusForbidden
	case errors.Is(err, errNotFound), errors.Is(err, ledger.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errConflict), errors.Is(err, ledger.ErrConflict), errors.Is(err, ledger.ErrExists):
		return http.StatusConflict
	case errors.Is(err, errLocked):
		return http.StatusTooManyRequests
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// publicMessage is what an answer may say about err: the service's own
// errors as they are, anything else (ledger, disk) as a generic message
// (it is logged).
func publicMessage(err error) string {
	if httpStatus(err) == http.StatusInternalServerError {
		return "internal error; see the server log"
	}
	return pan.Scrub(err.Error())
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// httpError answers an error as JSON for the API, as text otherwise.
func httpError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	http.Error(w, msg, status)
}

// fail answers err with its status, logging internal errors.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := httpStatus(err)
	if status == http.StatusInternalServerError {
		s.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", pan.Scrub(err.Error()))
	}
	var pe *ProblemsError
	if errors.As(err, &pe) && strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, pe)
		return
	}
	httpError(w, r, status, publicMessage(err))
}

// remote is the client's address for the audit log.
func (s *Server) remote(r *http.Request) string {
	if s.cfg.TrustProxy {
		if f := r.Header.Get("X-Forwarded-For"); f != "" {
			if len(f) > 100 {
				f = f[:100]
			}
			return f + " via " + r.RemoteAddr
		}
	}
	return r.RemoteAddr
}
