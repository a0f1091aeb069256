package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// initCommand implements `payouts init`.
type initCommand struct {
	app     *App
	ledger  ledgerFlag
	migrate bool
}

func (c *initCommand) Name() string     { return "init" }
func (c *initCommand) Synopsis() string { return "create the ledger and its card fingerprint key" }
func (c *initCommand) Usage() string {
	return `Usage: payouts init [--ledger FILE] [--fingerprint-key FILE] [--migrate-fingerprints]

Creates the ledger (directories 0700, file 0600) and the card fingerprint key
beside it (fingerprint.key, 0600): 32 random bytes with which the ledger's
keyed card fingerprints are made. Every other command refuses a ledger that
does not exist, so a run started from another directory, or by another
user, cannot make a new, empty ledger and pay everything again.

Back up both: without its key, runs and reruns of the ledger refuse to start
(exit 3). The key is kept out of the ledger so that a copy of the ledger alone
(a backup, a file sent to support) cannot be used to test card numbers against
its fingerprints: store the key's backup apart from the ledger's.

On an existing ledger it changes nothing and says so, after checking that the
fingerprint key is the ledger's. A ledger made by an older payouts, whose
fingerprints were derived from the partner private key, keeps them until
--migrate-fingerprints: once no row is in flight, that clears them (a rerun
records a new one) and moves the ledger to the key file, so that the partner
key can be rotated.

Example:
  payouts init
  payouts init --ledger /var/lib/payouts/payouts.db`
}

func (c *initCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.ledger.register(fs)
	c.ledger.registerFingerprintKey(fs)
	fs.BoolVar(&c.migrate, "migrate-fingerprints", false, "move a ledger whose fingerprints were derived from the partner key to the fingerprint key file (no row may be in flight)")
	fs.env("migrate-fingerprints", "PAYOUTS_MIGRATE_FINGERPRINTS")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("init takes no arguments — the ledger is --ledger FILE")
	}
	if err := c.ledger.resolve(c.app.Getenv); err != nil {
		return err
	}
	c.ledger.announce(c.app.errw(), c.app.jsonLogger())
	return c.app.initLedger(ctx, &c.ledger, c.migrate, c.app.Stdout)
}

// initLedger creates the ledger and its fingerprint key, or checks them if
// the ledger exists (see initCommand's usage), telling w what it did.
func (a *App) initLedger(ctx context.Context, l *ledgerFlag, migrate bool, w io.Writer) error {
	exists, err := ledgerExists(ctx, l)
	if err != nil {
		return err
	}
	if !exists && l.backend() == ledger.BackendSQLite {
		if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
			return fmt.Errorf("create ledger directory: %w", err)
		}
	}
	db, err := ledger.Open(ctx, l.path)
	if err != nil {
		return fmt.Errorf("open ledger %s: %w", l.display(), err)
	}
	defer db.Close()
	if exists {
		fmt.Fprintf(w, "ledger %s already exists\n", l.display())
	} else {
		fmt.Fprintf(w, "created ledger %s\n", l.display())
	}
	id, err := db.FingerprintKeyID(ctx)
	if err != nil {
		return err
	}
	if id != "" {
		if _, err := l.readFingerprintKey(id); err != nil {
			return err
		}
		fmt.Fprintf(w, "fingerprint key %s is the ledger's\n", l.fingerprintKey)
		return nil
	}
	batches, err := db.Batches(ctx)
	if err != nil {
		return err
	}
	if len(batches) > 0 && !migrate {
		fmt.Fprintf(w, "its card fingerprints are derived from the partner private key (made by an older payouts), so a new partner key would stop its unstarted rows: once no row is in flight, run `payouts init --migrate-fingerprints` to move it to the fingerprint key %s\n", l.fingerprintKey)
		return nil
	}
	fp, made, err := l.fingerprintKeyFile()
	if err != nil {
		return err
	}
	err = db.AdoptFingerprintKey(ctx, fp.KeyID())
	switch {
	case errors.Is(err, ledger.ErrLegacyFingerprints):
		return a.migrateFingerprints(ctx, db, l, fp, made, w)
	case err != nil:
		return err
	}
	sayKey(w, l, made)
	fmt.Fprintln(w, "Back up both; store the key's backup apart from the ledger's (see `payouts help init`).")
	return nil
}

// ledgerExists reports whether the ledger was made already: the file, or
// the tables in the PostgreSQL database.
func ledgerExists(ctx context.Context, l *ledgerFlag) (bool, error) {
	if l.backend() == ledger.BackendSQLite {
		_, err := os.Stat(l.path)
		return err == nil, nil
	}
	db, err := ledger.Open(ctx, l.path, ledger.MustExist())
	switch {
	case errors.Is(err, ledger.ErrNoLedger):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("open ledger %s: %w", l.display(), err)
	}
	return true, db.Close()
}

// migrateFingerprints moves a legacy ledger to the key file fp.
func (a *App) migrateFingerprints(ctx context.Context, db *ledger.DB, l *ledgerFlag, fp *batch.Fingerprinter, made bool, w io.Writer) error {
	n, err := db.MigrateFingerprints(ctx, fp.KeyID())
	var ue *ledger.UnfinishedRowsError
	switch {
	case errors.As(err, &ue):
		return usageErrorf("%v — finish them first (`payouts run` or `payouts serve`; this ledger keeps its partner-key fingerprints meanwhile), then run `payouts init --migrate-fingerprints` again; nothing was changed", ue)
	case err != nil:
		return err
	}
	sayKey(w, l, made)
	fmt.Fprintf(w, "cleared the %d card fingerprints made with the partner key (a rerun records a new one); new fingerprints use %s, and the partner key can be rotated\n", n, l.fingerprintKey)
	return nil
}

func sayKey(w io.Writer, l *ledgerFlag, made bool) {
	if made {
		fmt.Fprintf(w, "created fingerprint key %s\n", l.fingerprintKey)
	} else {
		fmt.Fprintf(w, "fingerprint key %s (existing) is the ledger's\n", l.fingerprintKey)
	}
}

// fingerprintKeyFile reads the fingerprint key file, or makes it (and its
// directory, 0700) if there is none; made says which.
func (l *ledgerFlag) fingerprintKeyFile() (fp *batch.Fingerprinter, made bool, err error) {
	if l.fingerprintKey == "" {
		return nil, false, errNoKeyLocation()
	}
	fp, err = batch.ReadFingerprintKey(l.fingerprintKey)
	if !errors.Is(err, fs.ErrNotExist) {
		return fp, false, err
	}
	if err := os.MkdirAll(filepath.Dir(l.fingerprintKey), 0o700); err != nil {
		return nil, false, fmt.Errorf("fingerprint key directory: %w", err)
	}
	fp, err = batch.WriteFingerprintKey(l.fingerprintKey)
	return fp, err == nil, err
}
