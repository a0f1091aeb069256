package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// flagSet is a flag.FlagSet whose flags may also come from environment
// variables (the flag wins over the variable), and whose -h output shows the
// command's usage, every flag with its variable and default, and an example.
type flagSet struct {
	*flag.FlagSet
	app  *App
	cmd  Command
	envs map[string]string // flag name -> environment variable
	// hidden flags still work but are left out of the help: deprecated
	// spellings kept for old scripts.
	hidden map[string]bool
}

// newFlagSet returns command c's empty flag set. Parse errors are returned,
// not printed: the caller reports them as usage errors.
func newFlagSet(a *App, c Command) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(c.Name(), flag.ContinueOnError), app: a, cmd: c, envs: map[string]string{}}
	fs.SetOutput(io.Discard)
	a.logs.register(fs)
	return fs
}

// hide leaves flag name out of the help; it still works.
func (f *flagSet) hide(name string) {
	if f.hidden == nil {
		f.hidden = map[string]bool{}
	}
	f.hidden[name] = true
}

// env records that flag name also reads environment variable env.
func (f *flagSet) env(name, env string) { f.envs[name] = env }

// StringEnv defines a string flag that also reads env.
func (f *flagSet) StringEnv(name, env, def, usage string) *string {
	p := f.String(name, def, usage)
	if env != "" {
		f.env(name, env)
	}
	return p
}

// DurationEnv defines a duration flag stored in p that also reads env.
func (f *flagSet) DurationEnv(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.DurationVar(p, name, def, usage)
	f.env(name, env)
}

// errHelp is returned by parse when -h was given: the usage was printed and
// the command exits 0.
var errHelp = errors.New("help requested")

// parse parses args, then fills every flag not given on the command line
// from its environment variable. Bad flags are usage errors (exit 2).
//
// Flags may come before or after positional arguments (`payouts run FILE
// --dry-run` works); a lone "--" ends the flags.
func (f *flagSet) parse(args []string) error {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.app.Stdout)
				return errHelp
			}
			f.envLogFormat()
			return usageErrorf("%s: %s — run `payouts help %s`", f.Name(), dashDash(err), f.Name())
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...) // everything after "--" is positional
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave the positionals where NArg and Arg find them.
	if err := f.Parse(append([]string{"--"}, pos...)); err != nil {
		return usageErrorf("%s: %v", f.Name(), err)
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for name, env := range f.envs {
		if set[name] {
			continue
		}
		v := f.app.Getenv(env)
		if v == "" {
			continue
		}
		if err := f.Set(name, v); err != nil {
			return usageErrorf("environment variable %s=%q for --%s: %v", env, v, name, err)
		}
	}
	return nil
}

// envLogFormat applies PAYOUTS_LOG_FORMAT when the command line could not
// be parsed, so that even that error is a JSON record when asked.
func (f *flagSet) envLogFormat() {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == "log-format" })
	if v := f.app.Getenv("PAYOUTS_LOG_FORMAT"); !set && v != "" {
		_ = f.Set("log-format", v)
	}
}

// dashDash quotes flags in the flag package's errors the way they are
// written on the command line and in help: "--foo", not "-foo".
func dashDash(err error) string {
	s := err.Error()
	for _, p := range []string{"defined: -", "argument: -", "flag -", "syntax: -"} {
		if i := strings.Index(s, p); i >= 0 && !strings.HasPrefix(s[i+len(p):], "-") {
			s = s[:i+len(p)] + "-" + s[i+len(p):]
		}
	}
	return s
}

// printUsage writes the command's help: usage text, then flags.
func (f *flagSet) printUsage(w io.Writer) {
	fmt.Fprintln(w, strings.TrimRight(f.cmd.Usage(), "\n"))
	var any bool
	f.VisitAll(func(*flag.Flag) { any = true })
	if !any {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	f.VisitAll(func(fl *flag.Flag) {
		if f.hidden[fl.Name] {
			return
		}
		name, usage := flag.UnquoteUsage(fl)
		line := "  --" + fl.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "        %s", usage)
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" && fl.DefValue != "[]" {
			fmt.Fprintf(w, " (default %s)", fl.DefValue)
		}
		if env := f.envs[fl.Name]; env != "" {
			fmt.Fprintf(w, " [$%s]", env)
		}
		fmt.Fprintln(w)
	})
}

// helpOK adapts errHelp to a nil error for Run methods:
//
//	if err := fs.parse(args); err != nil { return helpOK(err) }
func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// listFlag is a repeatable flag whose values may also be comma-separated
// lists (--row A --row B,C).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
