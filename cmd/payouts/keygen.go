package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/payouts/payouts/pike"
)

// keygenCommand implements `payouts keygen`.
type keygenCommand struct {
	app     *App
	out     string
	dataKey string
}

func (c *keygenCommand) Name() string     { return "keygen" }
func (c *keygenCommand) Synopsis() string { return "make an RSA key pair to register with Pike" }
func (c *keygenCommand) Usage() string {
	return `Usage: payouts keygen --out DIR

Writes a new RSA-2048 key pair: DIR/partner-private.pem (PKCS#8, mode 0600:
keep it secret, it signs every request that moves money) and
DIR/partner-public.pem (PKIX: hand it to your Pike manager). Existing files
are never overwritten.

With --data-key FILE (alone or with --out) it writes the finance console's
data key instead: 32 random bytes (hex, mode 0600) that encrypt uploaded
manifests at rest (payouts serve --web makes one on its first start if
there is none).

Example:
  payouts keygen --out /etc/payouts/keys
  payouts keygen --data-key /var/lib/payouts/console-data.key`
}

func (c *keygenCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	fs.StringVar(&c.out, "out", "", "directory to write the key pair into (created if missing)")
	fs.env("out", "PAYOUTS_KEYGEN_OUT")
	fs.StringVar(&c.dataKey, "data-key", "", "write a new console data key to `FILE` (mode 0600; refuses to overwrite)")
	fs.env("data-key", "PAYOUTS_KEYGEN_DATA_KEY")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if (c.out == "" && c.dataKey == "") || fs.NArg() > 0 {
		return usageErrorf("keygen needs --out DIR (or --data-key FILE) and no arguments")
	}
	if c.dataKey != "" {
		if err := writeDataKey(c.app, c.dataKey); err != nil {
			return err
		}
		if c.out == "" {
			return nil
		}
	}
	priv, pub, err := writeKeyPair(c.out, "partner")
	if err != nil {
		return err
	}
	fmt.Fprintf(c.app.Stdout, `Wrote %s (private, mode 0600) and %s (public).

Next:
  1. Send %s to your Pike manager to register it for your project
     (Pike verifies every request's X-PARTNER-SIGN with it).
  2. Ask the manager for Pike's public key (it signs webhooks) and your project id.
  3. Configure payouts:
       export PIKE_PRIVATE_KEY=%s PIKE_PUBLIC_KEY=/path/to/pike-public.pem PIKE_PROJECT=<id>
  Keep the private key out of backups you do not control; it also keys the card
  fingerprints in the ledger.
`, priv, pub, pub, priv)
	return nil
}

// writeKeyPair generates an RSA-2048 pair into dir as NAME-private.pem
// (0600) and NAME-public.pem, refusing to overwrite either.
func writeKeyPair(dir, name string) (privPath, pubPath string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	privPath = filepath.Join(dir, name+"-private.pem")
	pubPath = filepath.Join(dir, name+"-public.pem")
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return "", "", usageErrorf("%s already exists: refusing to overwrite a key — choose another --out", p)
		}
	}
	key, err := pike.GenerateKey()
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	privPEM, err := pike.EncodePrivateKeyPEM(key)
	if err != nil {
		return "", "", err
	}
	pubPEM, err := pike.EncodePublicKeyPEM(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	if err := writeNew(privPath, privPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

// writeNew creates path with data and mode, failing if it exists.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
