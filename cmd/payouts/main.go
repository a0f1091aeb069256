// Command payouts pays a CSV manifest of card payouts through Pike, exactly
// once per row, and proves it afterwards. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Exit codes (DESIGN.md).
const (
	ExitOK      = 0 // all rows succeeded / command succeeded
	ExitPartial = 1 // some rows failed, cancelled, unknown or pending at exit
	ExitUsage   = 2 // bad input or usage; nothing was sent to Pike
	ExitInfra   = 3 // infrastructure: ledger, network, keys
)

func main() {
	ctx, stop := notifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	app := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Interrupted: stop}
	code := app.Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// interruptError is the cause of the root context's cancellation when a
// signal arrived: only then is a command interrupted (a context cancelled
// because the command ended is not).
type interruptError struct{ sig os.Signal }

func (e *interruptError) Error() string { return e.sig.String() + " received" }

// notifyContext is signal.NotifyContext whose cancellation cause is an
// *interruptError when (and only when) one of sigs arrived. stop ends the
// signal delivery (a second signal then has its default effect: exit) and
// cancels the context with no such cause.
func notifyContext(parent context.Context, sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			cancel(&interruptError{sig: s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// signalled reports whether ctx ended because a signal arrived.
func signalled(ctx context.Context) bool {
	var ie *interruptError
	return errors.As(context.Cause(ctx), &ie)
}

// App holds what every subcommand shares: its streams and environment, so
// tests can run commands in-process.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Interrupted, when set, stops signal delivery to the root context so a
	// second SIGINT kills the process at once (default Go behaviour).
	Interrupted func()

	// StdinTerminal, when set, says whether Stdin is a terminal (tests of
	// the approve prompt); by default the file is asked.
	StdinTerminal *bool

	logs      logFlags // --log-format and --log-level, on every command
	listening bool     // a webhook listener runs (what the progress bar waits for)
	log       *slog.Logger
	logMu     sync.Mutex
	con       *console
	conOnce   sync.Once
}

// Command is one subcommand.
type Command interface {
	// Name is the word after `payouts`.
	Name() string
	// Synopsis is one line for `payouts help`.
	Synopsis() string
	// Usage is the full help text, flags excluded.
	Usage() string
	// Run runs the command with args (flags included). Errors are mapped to
	// exit codes by exitCode.
	Run(ctx context.Context, args []string) error
}

func (a *App) commands() []Command {
	cmds := []Command{
		&initCommand{app: a},
		&validateCommand{app: a},
		&runCommand{app: a},
		&statusCommand{app: a},
		&reportCommand{app: a},
		&approveCommand{app: a, reject: false},
		&approveCommand{app: a, reject: true},
		&rerunCommand{app: a},
		&decideCommand{app: a},
		&serveCommand{app: a},
		&sandboxCommand{app: a},
		&demoCommand{app: a},
		&keygenCommand{app: a},
		&userCommand{app: a},
		&versionCommand{app: a},
	}
	return cmds
}

// Main runs the command line args and returns the exit code.
func (a *App) Main(ctx context.Context, args []string) int {
	if a.Getenv == nil {
		a.Getenv = func(string) string { return "" }
	}
	// Until a command's flags are parsed, the variable decides whether an
	// error (an unknown command) is a JSON record.
	a.logs.format = a.Getenv("PAYOUTS_LOG_FORMAT")
	err := a.dispatch(ctx, args)
	code := exitCode(err)
	if err != nil {
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Err != nil {
			a.fail(err, code)
		}
	}
	return code
}

func (a *App) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		if !a.jsonLogs() {
			a.printHelp(a.Stderr)
		}
		return usageErrorf("no command given")
	}
	name := args[0]
	switch name {
	case "--version", "-version", "-v":
		name, args = "version", append([]string{"version"}, args[1:]...)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			c := a.lookup(args[1])
			if c == nil {
				return usageErrorf("unknown command %q: run `payouts help` for the list", args[1])
			}
			return c.Run(ctx, []string{"-h"})
		}
		a.printHelp(a.Stdout)
		return nil
	}
	c := a.lookup(name)
	if c == nil {
		if s := a.suggest(name); s != "" {
			return usageErrorf("unknown command %q — did you mean `payouts %s`? (`payouts help` lists them all)", name, s)
		}
		if !a.jsonLogs() {
			a.printHelp(a.Stderr)
		}
		return usageErrorf("unknown command %q: run `payouts help` for the list", name)
	}
	return c.Run(ctx, args[1:])
}

func (a *App) lookup(name string) Command {
	for _, c := range a.commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

func (a *App) printHelp(w io.Writer) {
	fmt.Fprintln(w, "payouts pays a CSV manifest of card payouts through Pike, exactly once per row.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: payouts COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range a.commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.Name(), c.Synopsis())
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `payouts help COMMAND` for a command's flags, environment variables and an example.")
	fmt.Fprintln(w, "Exit codes: 0 all rows succeeded; 1 some rows failed, cancelled, unknown or pending;")
	fmt.Fprintln(w, "2 bad input or usage (nothing sent to Pike); 3 infrastructure error (ledger, network, keys).")
}

// ExitError carries an explicit exit code. Err may be nil when the command
// already printed what the user needs to know.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError is bad usage or bad input: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps an error to the exit codes of DESIGN.md: an ExitError's
// code, 2 for a usageError, and 3 (infrastructure) for any other error, so
// errors of the ledger, the network or the keys are returned as they are.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitInfra
}
