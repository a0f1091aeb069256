package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/web"
)

// consoleFlags are serve's flags for the finance console (--web).
type consoleFlags struct {
	addr        string
	tlsCert     string
	tlsKey      string
	behindProxy bool
	dataKey     string
	uploadLimit int64
	sessionIdle time.Duration
	sessionMax  time.Duration
	caps        capFlags
}

func (f *consoleFlags) register(fs *flagSet) {
	fs.StringVar(&f.addr, "web", "", "serve the finance console on `ADDR` (e.g. 127.0.0.1:8443); off when empty")
	fs.env("web", "PAYOUTS_WEB")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "the console's TLS certificate `FILE` (PEM; with --tls-key)")
	fs.env("tls-cert", "PAYOUTS_TLS_CERT")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the console's TLS private key `FILE` (PEM; with --tls-cert)")
	fs.env("tls-key", "PAYOUTS_TLS_KEY")
	fs.BoolVar(&f.behindProxy, "web-behind-tls-proxy", false, "the console sits behind a reverse proxy that terminates TLS: allow plain HTTP on a non-loopback --web, mark cookies Secure, record X-Forwarded-For")
	fs.env("web-behind-tls-proxy", "PAYOUTS_WEB_BEHIND_TLS_PROXY")
	fs.StringVar(&f.dataKey, "data-key", "", "the key `FILE` that encrypts uploaded manifests at rest (default "+web.DataKeyName+" beside the ledger; made on first start, mode 0600)")
	fs.env("data-key", "PAYOUTS_DATA_KEY")
	fs.Int64Var(&f.uploadLimit, "upload-limit", 64<<20, "the largest upload the console accepts, in `BYTES`")
	fs.env("upload-limit", "PAYOUTS_UPLOAD_LIMIT")
	fs.DurationVar(&f.sessionIdle, "session-idle", 30*time.Minute, "a console session ends after this long without a request")
	fs.env("session-idle", "PAYOUTS_SESSION_IDLE")
	fs.DurationVar(&f.sessionMax, "session-max", 12*time.Hour, "a console session ends this long after sign-in, however busy")
	fs.env("session-max", "PAYOUTS_SESSION_MAX")
	f.caps.register(fs)
}

// check validates the console flags before anything is opened.
func (f *consoleFlags) check() error {
	if f.addr == "" {
		if f.tlsCert != "" || f.tlsKey != "" || f.behindProxy || f.dataKey != "" {
			return usageErrorf("--tls-cert, --tls-key, --web-behind-tls-proxy and --data-key are for the console: add --web ADDR")
		}
		if len(f.caps.maxAmount)+len(f.caps.maxTotal) > 0 {
			return usageErrorf("serve's --max-amount and --max-total cap the console's uploads: add --web ADDR (a run's caps go to payouts run)")
		}
		return nil
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usageErrorf("--tls-cert and --tls-key go together")
	}
	if f.uploadLimit <= 0 || f.sessionIdle <= 0 || f.sessionMax <= 0 {
		return usageErrorf("--upload-limit, --session-idle and --session-max must be positive")
	}
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil {
		return usageErrorf("--web %s: %v — give HOST:PORT, e.g. 127.0.0.1:8443", f.addr, err)
	}
	if f.tlsCert == "" && !f.behindProxy && !isLoopback(host) {
		return usageErrorf("--web %s: refusing plain HTTP on a non-loopback address (passwords and card data would cross the network in clear) — give --tls-cert and --tls-key, or --web-behind-tls-proxy if a reverse proxy terminates TLS, or listen on 127.0.0.1", f.addr)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// webConsole is the running finance console (serve --web).
type webConsole struct {
	srv  *web.Server
	http *http.Server
	addr string
	done chan error
}

// startConsole opens the upload store (creating the data key on first
// start), resumes approved batches and starts listening.
func (f *consoleFlags) start(ctx context.Context, pay *paying, lf *ledgerFlag, engine batch.Config, log *slog.Logger) (*webConsole, error) {
	dir := filepath.Dir(lf.path)
	if lf.backend() == ledger.BackendPostgres {
		// A URL has no directory: the per-user state directory, where the
		// fingerprint key is. The uploads stay on this host's disk.
		if lf.fingerprintKey == "" {
			return nil, usageErrorf("the console of a PostgreSQL ledger keeps its data key and uploads beside the fingerprint key: pass --fingerprint-key FILE (or set HOME)")
		}
		dir = filepath.Dir(lf.fingerprintKey)
	}
	keyPath := f.dataKey
	if keyPath == "" {
		keyPath = filepath.Join(dir, web.DataKeyName)
	}
	key, created, err := web.LoadOrCreateDataKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("console data key: %w", err)
	}
	if created {
		log.Warn("made a new console data key: back it up with the ledger, or stored uploads cannot be paid after a loss", "path", keyPath)
	}
	uploads, err := web.NewUploads(filepath.Join(dir, "uploads"), key)
	if err != nil {
		return nil, err
	}
	mopts := web.DefaultManifestOptions()
	f.caps.apply(&mopts)
	srv, err := web.New(web.Config{
		DB: pay.db, Pike: pay.client, Intake: pay.intake, Uploads: uploads, Engine: engine,
		Owner: ledger.CurrentOwner("payouts serve --web"), Logger: log, ManifestOptions: mopts,
		MaxUploadBytes: f.uploadLimit, Secure: f.tlsCert != "" || f.behindProxy, TrustProxy: f.behindProxy,
		SessionIdle: f.sessionIdle, SessionMax: f.sessionMax,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("console listener on %s: %w — pass --web with a free address", f.addr, err)
	}
	// Resume (which destroys stored uploads no batch needs) before the
	// first request: an upload or rerun request arriving while it sweeps
	// would have its new file destroyed.
	if err := srv.Resume(ctx); err != nil {
		ln.Close()
		srv.Close()
		return nil, err
	}
	c := &webConsole{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1),
		http: &http.Server{Handler: srv, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}}
	go func() {
		var err error
		if f.tlsCert != "" {
			err = c.http.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			err = c.http.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		c.done <- err
	}()
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	log.Info("finance console", "url", scheme+"://"+c.addr+"/", "uploads", uploads.Dir(), "data_key", keyPath)
	return c, nil
}

// close stops the console: no new requests, payers stopped (the ledger
// keeps where they were; the next start resumes).
func (c *webConsole) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.srv.Close() // payers and live-progress streams end first, so Shutdown need not wait for them
	_ = c.http.Shutdown(ctx)
	<-c.done
}

// writeDataKey is `payouts keygen --data-key FILE`.
func writeDataKey(a *App, path string) error {
	if _, err := os.Stat(path); err == nil {
		return usageErrorf("%s already exists: refusing to overwrite a data key (the uploads it encrypts would be lost) — choose another --data-key", path)
	}
	if _, err := web.CreateDataKey(path); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "Wrote the console data key %s (mode 0600). Point serve at it with --data-key (PAYOUTS_DATA_KEY),\nand back it up apart from the uploads it encrypts.\n", path)
	return nil
}

// refuseConsoleBatch refuses to pay, from the CLI, a batch uploaded through
// the console that is not approved: four eyes would be bypassed (the same
// file is the same batch).
func refuseConsoleBatch(ctx context.Context, db *ledger.DB, batchID string) error {
	cb, err := db.ConsoleBatch(ctx, batchID)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil // not a console batch
	}
	if err != nil {
		return fmt.Errorf("console record of batch %s: %w", batchID, err)
	}
	switch cb.State {
	case ledger.ConsoleAwaitingApproval:
		return usageErrorf("batch %s was uploaded to the console by %s and waits for another person's approval there; nothing was sent", batchID, cb.RequestedBy)
	case ledger.ConsoleRejected:
		return usageErrorf("batch %s was rejected in the console; nothing was sent — correct the file and upload it again", batchID)
	}
	return nil
}

// refuseConsoleRerun refuses a rerun from the command line of a batch
// uploaded to the console: there a rerun needs a second person's approval,
// which the command line would bypass.
func refuseConsoleRerun(ctx context.Context, db *ledger.DB, batchID string) error {
	cb, err := db.ConsoleBatch(ctx, batchID)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("console record of batch %s: %w", batchID, err)
	}
	return usageErrorf("batch %s was uploaded to the console by %s: rerun its failed rows there (upload the corrected file on the batch's page; another person approves it); nothing was sent", batchID, cb.UploadedBy)
}
