package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/web"
)

// userCommand implements `payouts user add|list|disable|passwd`.
type userCommand struct {
	app    *App
	ledger ledgerFlag
	roles  string
	stdin  bool
}

func (c *userCommand) Name() string { return "user" }
func (c *userCommand) Synopsis() string {
	return "console users and roles (add, list, disable, passwd)"
}
func (c *userCommand) Usage() string {
	return `Usage: payouts user add NAME --role ROLE[,ROLE] --password-stdin
       payouts user list
       payouts user disable NAME
       payouts user passwd NAME --password-stdin

Manages the users of the finance console (payouts serve --web). Roles:
  maker     uploads manifests and asks for reruns
  approver  approves or rejects what another person uploaded (never her own)
  viewer    reads batches and downloads reports
  admin     manages users (from this command)
Passwords (at least 12 characters) are read from the first line of stdin and
stored as argon2id hashes in the ledger. Disabling a user or changing a
password ends the user's sessions. Every change is in the audit log.

Example:
  printf '%s\n' "$PASSWORD" | payouts user add anna --role maker --password-stdin`
}

func (c *userCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.ledger.register(fs)
	fs.StringVar(&c.roles, "role", "", "roles of a new user, comma-separated: maker, approver, viewer, admin")
	fs.env("role", "PAYOUTS_USER_ROLE")
	fs.BoolVar(&c.stdin, "password-stdin", false, "read the password from the first line of stdin")
	fs.env("password-stdin", "PAYOUTS_PASSWORD_STDIN")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() == 0 {
		return usageErrorf("user needs a subcommand: add, list, disable or passwd — see `payouts help user`")
	}
	verb, rest := fs.Arg(0), fs.Args()[1:]
	need := 1
	if verb == "list" {
		need = 0
	}
	switch verb {
	case "add", "list", "disable", "passwd":
	default:
		return usageErrorf("user %s: unknown subcommand; use add, list, disable or passwd", verb)
	}
	if len(rest) != need {
		return usageErrorf("user %s takes %d argument(s) — see `payouts help user`", verb, need)
	}
	var roles []ledger.Role
	if verb == "add" {
		var err error
		if roles, err = ledger.ParseRoles(c.roles); err != nil {
			return usageErrorf("--role: %v", err)
		}
	} else if c.roles != "" {
		return usageErrorf("--role is only for user add")
	}
	var hash string
	if verb == "add" || verb == "passwd" {
		if !c.stdin {
			return usageErrorf("user %s needs --password-stdin (passwords never go on the command line)", verb)
		}
		pw, err := bufio.NewReader(c.app.Stdin).ReadString('\n')
		if err != nil && pw == "" {
			return usageErrorf("no password on stdin")
		}
		if hash, err = web.HashPassword(strings.TrimRight(pw, "\r\n")); err != nil {
			return usageErrorf("%v", err)
		}
	}
	db, err := c.ledger.open(ctx, c.app, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	by := ledger.AuditEntry{Actor: cliActor()}
	switch verb {
	case "list":
		return c.list(ctx, db)
	case "add":
		err = db.AddUser(ctx, rest[0], roles, hash, by)
	case "disable":
		err = db.DisableUser(ctx, rest[0], by)
	case "passwd":
		err = db.SetUserPassword(ctx, rest[0], hash, by)
	}
	switch {
	case errors.Is(err, ledger.ErrExists):
		return usageErrorf("user %s already exists — use `payouts user passwd` to change the password", rest[0])
	case errors.Is(err, ledger.ErrNotFound):
		return usageErrorf("no user %s — `payouts user list` shows them", rest[0])
	case errors.Is(err, ledger.ErrInvalidChange):
		return usageErrorf("%v", err)
	case err != nil:
		return err
	}
	fmt.Fprintf(c.app.Stdout, "user %s: %s done\n", rest[0], verb)
	return nil
}

func (c *userCommand) list(ctx context.Context, db *ledger.DB) error {
	users, err := db.Users(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLES\tSTATUS\tCREATED")
	now := time.Now()
	for _, u := range users {
		status := "active"
		switch {
		case u.Disabled:
			status = "disabled"
		case u.Locked(now):
			status = "locked until " + u.LockedUntil.Format(time.RFC3339)
		}
		var rs []string
		for _, r := range u.Roles {
			rs = append(rs, string(r))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, strings.Join(rs, ","), status, u.CreatedAt.Format("2006-01-02"))
	}
	return tw.Flush()
}

// cliActor names the operating-system user in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}
