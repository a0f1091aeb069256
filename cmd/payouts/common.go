package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/pike"
)

// WebhookPath is where the webhook listener receives Pike's webhooks.
const WebhookPath = "/webhooks/pike"

// confirmDeadline is pike.ConfirmDeadline as help and messages say it
// ("240 minutes").
var confirmDeadline = fmt.Sprintf("%.0f minutes", pike.ConfirmDeadline.Minutes())

// logFlags are the logging flags every command shares.
type logFlags struct {
	format string
	level  string
}

func (l *logFlags) register(fs *flagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.env("log-format", "PAYOUTS_LOG_FORMAT")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.env("log-level", "PAYOUTS_LOG_LEVEL")
}

// pikeFlags are the flags that connect to Pike.
type pikeFlags struct {
	url         string
	project     string
	privateKey  string
	publicKey   string
	submerchant string
	version     string
	concurrency int
	rate        float64
	timeout     time.Duration
}

func (p *pikeFlags) register(fs *flagSet) {
	fs.StringVar(&p.url, "pike-url", "", "Pike server root, e.g. https://proxy-demo.pikepayments.com")
	fs.env("pike-url", "PIKE_URL")
	fs.StringVar(&p.project, "project", "", "Pike project id (X-PARTNER-PROJECT)")
	fs.env("project", "PIKE_PROJECT")
	fs.StringVar(&p.privateKey, "private-key", "", "partner RSA private key, PEM file (PKCS#1 or PKCS#8)")
	fs.env("private-key", "PIKE_PRIVATE_KEY")
	fs.StringVar(&p.publicKey, "pike-public-key", "", "Pike's RSA public key, PEM file, to verify webhooks")
	fs.env("pike-public-key", "PIKE_PUBLIC_KEY")
	fs.StringVar(&p.submerchant, "submerchant", "", "X-PARTNER-SUBMERCHANT value, if Pike gave you one")
	fs.env("submerchant", "PIKE_SUBMERCHANT")
	fs.StringVar(&p.version, "api-version", "v1", "Pike API version: v1 or v2")
	fs.env("api-version", "PIKE_API_VERSION")
	fs.IntVar(&p.concurrency, "concurrency", 16, "maximum requests in flight to Pike")
	fs.env("concurrency", "PAYOUTS_CONCURRENCY")
	fs.Float64Var(&p.rate, "rate", 0, "maximum requests per second to Pike (0 = no limit)")
	fs.env("rate", "PAYOUTS_RATE")
	fs.DurationVar(&p.timeout, "request-timeout", 30*time.Second, "timeout of one HTTP request to Pike")
	fs.env("request-timeout", "PAYOUTS_REQUEST_TIMEOUT")
}

// check reports missing settings as a usage error naming flag and variable.
func (p *pikeFlags) check() error {
	var missing []string
	if p.url == "" {
		missing = append(missing, "--pike-url (PIKE_URL)")
	}
	if p.project == "" {
		missing = append(missing, "--project (PIKE_PROJECT)")
	}
	if p.privateKey == "" {
		missing = append(missing, "--private-key (PIKE_PRIVATE_KEY)")
	}
	if len(missing) > 0 {
		return usageErrorf("missing %s — `payouts keygen` makes a key pair; `payouts demo` runs everything against a local sandbox", strings.Join(missing, ", "))
	}
	if u := p.url; !strings.Contains(u, "://") {
		return usageErrorf("--pike-url (PIKE_URL) %q has no scheme: write https://%s (the server root, without /api/v1)", u, strings.TrimPrefix(u, "//"))
	}
	if p.concurrency < 1 {
		return usageErrorf("--concurrency must be at least 1")
	}
	if p.rate < 0 {
		return usageErrorf("--rate must not be negative")
	}
	return nil
}

// workers is how many rows the engine advances at once: enough to keep
// every request slot busy while other rows wait on the ledger or a lock.
func (p *pikeFlags) workers() int { return 2*p.concurrency + 16 }

// signer loads the private key. A bad key is an infrastructure error.
func (p *pikeFlags) signer() (*pike.Signer, error) {
	key, err := pike.LoadPrivateKey(p.privateKey)
	if err != nil {
		return nil, err
	}
	return pike.NewSigner(key)
}

// client builds the Pike client.
func (p *pikeFlags) client(signer *pike.Signer, log *slog.Logger) (*pike.Client, error) {
	v, err := pike.ParseVersion(p.version)
	if err != nil {
		return nil, usageErrorf("--api-version: %v", err)
	}
	opts := []pike.Option{
		pike.WithLogger(log),
		pike.WithVersion(v),
		pike.WithMaxInFlight(p.concurrency),
		pike.WithRequestTimeout(p.timeout),
		pike.WithHTTPClient(&http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: p.concurrency + 4,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}}),
	}
	if p.submerchant != "" {
		opts = append(opts, pike.WithSubmerchant(p.submerchant))
	}
	if p.rate > 0 {
		opts = append(opts, pike.WithRateLimit(p.rate, max(1, int(p.rate))))
	}
	return pike.NewClient(p.url, p.project, signer, opts...)
}

// verifier loads Pike's public key; nil when none was configured.
func (p *pikeFlags) verifier() (*pike.Verifier, error) {
	if p.publicKey == "" {
		return nil, nil
	}
	key, err := pike.LoadPublicKey(p.publicKey)
	if err != nil {
		return nil, err
	}
	return pike.NewVerifier(key)
}

// listener is a running webhook receiver.
type listener struct {
	srv   *http.Server
	conns *limitListener
	addr  string
	done  chan error
}

// listenWebhooks starts the webhook receiver on addr: verified webhooks are
// stored through intake before Pike gets its 200. Returns nil, nil when addr
// is empty or there is no verifier (the run then relies on polling).
func listenWebhooks(ctx context.Context, addr string, v *pike.Verifier, intake *batch.Intake, log *slog.Logger) (*listener, error) {
	if addr == "" || v == nil {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("webhook listener on %s: %w — is `payouts serve` or another run already listening? pass --listen with a free address, or --listen '' to rely on polling", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(WebhookPath, pike.NewWebhookHandler(v, intake.Handle, pike.WithHandlerLogger(log)))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	l := &listener{
		srv:   webhookServer(ctx, mux),
		conns: limitConns(ln, webhookMaxConns),
		addr:  ln.Addr().String(),
		done:  make(chan error, 1),
	}
	go func() {
		err := l.srv.Serve(l.conns)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		l.done <- err
	}()
	log.Info("receiving webhooks", "url", "http://"+l.addr+WebhookPath)
	return l, nil
}

// close stops the listener after letting deliveries being stored finish.
func (l *listener) close() {
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = l.srv.Shutdown(ctx)
	<-l.done
}

// isTerminal reports whether w is a terminal (progress bar) or not (cron:
// plain log lines).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
