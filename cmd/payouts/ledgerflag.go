package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// fingerprintKeyName is the fingerprint key file's name beside the ledger.
const fingerprintKeyName = "fingerprint.key"

// ledgerFlag is the --ledger flag, and --fingerprint-key for the commands
// that fingerprint card numbers.
//
// One ledger per deployment: its default is a fixed per-user location,
// never the working directory, and only `payouts init` creates it. A ledger
// made by accident (a run started from another directory) would forget
// every payout made before, and pay them again.
type ledgerFlag struct {
	path           string
	fingerprintKey string
	// announced: the command already said which ledger it uses (run's
	// first line), open does not repeat it.
	announced bool
}

func (l *ledgerFlag) register(fs *flagSet) {
	fs.StringVar(&l.path, "ledger", "", "the ledger made by payouts init: a SQLite `FILE` (default $XDG_STATE_HOME/payouts/payouts.db, or ~/.local/state/payouts/payouts.db without XDG_STATE_HOME), or a postgres:// URL shared by several hosts")
	fs.env("ledger", "PAYOUTS_LEDGER")
}

// registerFingerprintKey adds --fingerprint-key.
func (l *ledgerFlag) registerFingerprintKey(fs *flagSet) {
	fs.StringVar(&l.fingerprintKey, "fingerprint-key", "", "the card fingerprint key `FILE` made by payouts init (default "+fingerprintKeyName+" beside the ledger)")
	fs.env("fingerprint-key", "PAYOUTS_FINGERPRINT_KEY")
}

// resolve fills in the default ledger location and makes both paths
// absolute, so that what is printed is where the files are. A PostgreSQL
// ledger (a postgres:// URL) has no directory to keep the fingerprint key
// beside: its default key is the one beside the default SQLite ledger
// ($XDG_STATE_HOME/payouts/fingerprint.key), a file every host running
// against that ledger needs a copy of.
func (l *ledgerFlag) resolve(getenv func(string) string) error {
	if ledger.IsPostgresURL(l.path) {
		if l.fingerprintKey == "" {
			p, err := defaultLedgerPath(getenv)
			if err != nil {
				return nil // no default: the commands that need the key say so (errNoKeyLocation)
			}
			l.fingerprintKey = filepath.Join(filepath.Dir(p), fingerprintKeyName)
		}
		var err error
		if l.fingerprintKey, err = filepath.Abs(l.fingerprintKey); err != nil {
			return usageErrorf("--fingerprint-key %s: %v", l.fingerprintKey, err)
		}
		return nil
	}
	if l.path == "" {
		p, err := defaultLedgerPath(getenv)
		if err != nil {
			return err
		}
		l.path = p
	}
	var err error
	if l.path, err = filepath.Abs(l.path); err != nil {
		return usageErrorf("--ledger %s: %v", l.path, err)
	}
	if l.fingerprintKey == "" {
		l.fingerprintKey = filepath.Join(filepath.Dir(l.path), fingerprintKeyName)
	}
	if l.fingerprintKey, err = filepath.Abs(l.fingerprintKey); err != nil {
		return usageErrorf("--fingerprint-key %s: %v", l.fingerprintKey, err)
	}
	return nil
}

// defaultLedgerPath is the per-user ledger of the XDG base directory
// specification's state directory (XDG_STATE_HOME, which must be absolute,
// else ~/.local/state), the same wherever the command is started.
func defaultLedgerPath(getenv func(string) string) (string, error) {
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "payouts", "payouts.db"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "payouts", "payouts.db"), nil
	}
	return "", usageErrorf("no default ledger location: neither XDG_STATE_HOME nor HOME is set — pass --ledger FILE (or PAYOUTS_LEDGER)")
}

// display is the ledger's location fit to print: a PostgreSQL URL without
// its password.
func (l *ledgerFlag) display() string { return ledger.Redact(l.path) }

// backend names the ledger's engine.
func (l *ledgerFlag) backend() ledger.Backend {
	if ledger.IsPostgresURL(l.path) {
		return ledger.BackendPostgres
	}
	return ledger.BackendSQLite
}

// announce prints which ledger the command uses: one line on stderr, or a
// log record when log is set (JSON logs, for log shippers). A password in
// a PostgreSQL URL is never printed.
func (l *ledgerFlag) announce(w io.Writer, log *slog.Logger) {
	if log != nil {
		log.Info("ledger", "path", l.display(), "backend", string(l.backend()))
		return
	}
	fmt.Fprintf(w, "ledger: %s (%s)\n", l.display(), l.backend())
}

// errNoLedger is wrapped by the error of open when the ledger does not exist.
var errNoLedger = errors.New("no ledger")

// open resolves, announces and opens the ledger, which must exist: every
// command but init refuses to create one (exit 3, wrapping errNoLedger).
func (l *ledgerFlag) open(ctx context.Context, a *App, log *slog.Logger) (*ledger.DB, error) {
	if err := l.resolve(a.Getenv); err != nil {
		return nil, err
	}
	if log == nil {
		log = a.jsonLogger()
	}
	if !l.announced {
		l.announce(consoleWriter{a.console()}, log)
	}
	db, err := ledger.Open(ctx, l.path, ledger.MustExist())
	switch {
	case errors.Is(err, ledger.ErrNoLedger):
		return nil, fmt.Errorf("%w at %s — run `payouts init` to create it, or point --ledger (PAYOUTS_LEDGER) at the ledger of your payouts; nothing was sent", errNoLedger, l.display())
	case err != nil:
		return nil, fmt.Errorf("open ledger %s: %w", l.display(), err)
	}
	return db, nil
}

// fingerprinter returns the card fingerprinter of db: the key file, checked
// against the key id the ledger recorded, so that a wrong or missing key
// stops the command before any row is touched (exit 3). A ledger made
// before key files (no id recorded) keeps the key derived from the partner
// private key, which signer loads.
func (l *ledgerFlag) fingerprinter(ctx context.Context, db *ledger.DB, signer func() (*pike.Signer, error), log *slog.Logger) (*batch.Fingerprinter, error) {
	id, err := db.FingerprintKeyID(ctx)
	if err != nil {
		return nil, err
	}
	if id == "" {
		log.Warn("this ledger's card fingerprints are derived from the partner private key (it was made by an older payouts): a new partner key would stop its unstarted rows — once no row is in flight, run `payouts init --migrate-fingerprints`",
			"ledger", l.display())
		s, err := signer()
		if err != nil {
			return nil, fmt.Errorf("partner private key: %w", err)
		}
		key, err := batch.FingerprintKeyFromSigner(s)
		if err != nil {
			return nil, err
		}
		fp, err := batch.NewFingerprinter(key)
		if err != nil {
			return nil, err
		}
		return fp, nil
	}
	fp, err := l.readFingerprintKey(id)
	if err != nil {
		return nil, err
	}
	return fp, nil
}

// errNoKeyLocation: a PostgreSQL ledger, no --fingerprint-key and no
// per-user state directory to find the key in.
func errNoKeyLocation() error {
	return usageErrorf("no default fingerprint key location for the PostgreSQL ledger: neither XDG_STATE_HOME nor HOME is set — pass --fingerprint-key FILE (or PAYOUTS_FINGERPRINT_KEY)")
}

// readFingerprintKey reads the key file and checks it is the key id.
func (l *ledgerFlag) readFingerprintKey(id string) (*batch.Fingerprinter, error) {
	if l.fingerprintKey == "" {
		return nil, errNoKeyLocation()
	}
	fp, err := batch.ReadFingerprintKey(l.fingerprintKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("no fingerprint key at %s: ledger %s needs the key `payouts init` made with it (key id %s) — restore it from your backup, or point --fingerprint-key (PAYOUTS_FINGERPRINT_KEY) at it; nothing was sent",
			l.fingerprintKey, l.display(), id)
	case err != nil:
		return nil, fmt.Errorf("%w — nothing was sent", err)
	case fp.KeyID() != id:
		return nil, fmt.Errorf("fingerprint key %s (key id %s) is not the key of ledger %s (key id %s) — point --fingerprint-key (PAYOUTS_FINGERPRINT_KEY) at the key made with this ledger; nothing was sent",
			l.fingerprintKey, fp.KeyID(), l.display(), id)
	}
	return fp, nil
}
