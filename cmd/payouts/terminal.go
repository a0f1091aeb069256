package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
)

// console is stderr as every command shares it. Log records and plain
// lines go through it so that on a terminal they are printed above the
// progress bar (the bar's line is cleared, the text written, the bar drawn
// again below it) and never run into it; with --log-format json every line
// is a JSON record.
type console struct {
	mu  sync.Mutex
	w   io.Writer // the real stderr
	tty bool
	// bar is the progress bar's current line as last drawn ("" when no bar
	// is shown): what is drawn again after a line is printed above it.
	bar string
	// drawn is what the progress bar rendered since it was last shown:
	// the bar renders on each of Describe and Set, and only the drawing
	// after both (showBar) has a count that agrees with its description.
	drawn string
}

// write prints p (whole lines) above the progress bar, if one is shown.
func (c *console) write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bar == "" {
		return c.w.Write(p)
	}
	var b bytes.Buffer
	b.WriteString("\r\033[2K") // back to column 0, clear the bar's line
	b.Write(p)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(c.bar)
	if _, err := c.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// drawBar takes what the progress bar renders; showBar draws it.
func (c *console) drawBar(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drawn += string(p)
	return len(p), nil
}

// showBar draws the progress bar's last rendering in place of the bar's
// line.
func (c *console) showBar() {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := ""
	for _, seg := range strings.Split(c.drawn, "\r") {
		if strings.TrimSpace(strings.ReplaceAll(seg, "\033[0K", "")) != "" {
			line = seg
		}
	}
	c.drawn = ""
	if line == "" || line == c.bar {
		return
	}
	c.bar = line
	io.WriteString(c.w, "\r"+line)
}

// dropDrawn forgets the bar's renderings not shown.
func (c *console) dropDrawn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drawn = ""
}

// endBar forgets the bar once it is finished and cleared.
func (c *console) endBar() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bar != "" {
		io.WriteString(c.w, "\r\033[2K")
	}
	c.bar = ""
}

// consoleWriter is the io.Writer of the log handler and of plain lines.
type consoleWriter struct{ c *console }

func (w consoleWriter) Write(p []byte) (int, error) { return w.c.write(p) }

// barWriter is the progress bar's io.Writer.
type barWriter struct{ c *console }

func (w barWriter) Write(p []byte) (int, error) { return w.c.drawBar(p) }

// console returns the App's stderr console, made on first use.
func (a *App) console() *console {
	a.conOnce.Do(func() {
		a.con = &console{w: a.Stderr, tty: isTerminal(a.Stderr)}
	})
	return a.con
}

// jsonLogs reports whether every line on stderr is a JSON record
// (--log-format json, PAYOUTS_LOG_FORMAT=json).
func (a *App) jsonLogs() bool { return a.logs.format == "json" }

// logger returns the command's logger, built from the log flags on first
// use: text or JSON records on stderr through the console. Durations are
// written as strings ("1.5s"), in JSON too.
func (a *App) logger() (*slog.Logger, error) {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	if a.log != nil {
		return a.log, nil
	}
	var lvl slog.Level // info before the flags are parsed
	if err := lvl.UnmarshalText([]byte(a.logs.level)); a.logs.level != "" && err != nil {
		return nil, usageErrorf("--log-level %q: use debug, info, warn or error", a.logs.level)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationsAsText}
	w := consoleWriter{a.console()}
	switch a.logs.format {
	case "text", "":
		a.log = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(w, opts))
	default:
		return nil, usageErrorf("--log-format %q: use text or json", a.logs.format)
	}
	return a.log, nil
}

// durationsAsText writes time.Duration attributes as "1.5s", not as
// nanoseconds.
func durationsAsText(_ []string, at slog.Attr) slog.Attr {
	if at.Value.Kind() == slog.KindDuration {
		return slog.String(at.Key, at.Value.Duration().String())
	}
	return at
}

// jsonLogger returns the logger when the logs are JSON, for what is
// otherwise a plain line on stderr (the ledger in use), and nil otherwise.
func (a *App) jsonLogger() *slog.Logger {
	if !a.jsonLogs() {
		return nil
	}
	log, err := a.logger()
	if err != nil {
		return nil
	}
	return log
}

// say prints a message for the person at the terminal on stderr: a plain
// line, printed above the progress bar, or an INFO record with JSON logs.
// Leading and trailing blank lines are layout, dropped from records.
func (a *App) say(msg string, args ...any) {
	if log := a.jsonLogger(); log != nil {
		log.Info(strings.TrimSpace(msg), args...)
		return
	}
	line := msg
	for i := 0; i+1 < len(args); i += 2 {
		line += fmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	a.console().write([]byte(line + "\n"))
}

// fail prints the error that ends the command: "payouts: ERR" on stderr,
// or with JSON logs an ERROR record with the exit code.
func (a *App) fail(err error, code int) {
	if a.jsonLogs() {
		if log, lerr := a.logger(); lerr == nil {
			log.Error(err.Error(), "exit_code", code)
			return
		}
	}
	a.console().write([]byte("payouts: " + err.Error() + "\n"))
}

// clock formats t as a clock time in UTC and in the local time zone, for a
// person reading a deadline: "2026-11-30 14:05:00 UTC (17:05:00 MSK local)".
func clock(t time.Time) string {
	u := t.UTC().Format("2006-01-02 15:04:05 UTC")
	l := t.Local()
	if name, _ := l.Zone(); name == "UTC" {
		return u
	}
	return u + " (" + l.Format("15:04:05 MST") + " local)"
}

// startLine is the first line of `payouts run`: the batch, its rows, the
// totals per currency, the ledger it uses and the Pike it pays through.
func (a *App) startLine(batchID string, sum manifest.Summary, ledgerPath, pikeURL string, mode batch.ConfirmMode) {
	// A PostgreSQL URL is printed without its password, and named so.
	backend := string((&ledgerFlag{path: ledgerPath}).backend())
	ledgerPath = ledger.Redact(ledgerPath)
	if log := a.jsonLogger(); log != nil {
		totals := map[string]string{}
		for c, v := range sum.Totals {
			totals[c] = manifest.FormatAmount(v, c)
		}
		log.Info("run", "batch", batchID, "rows", sum.Rows, "totals", totals, "ledger", ledgerPath, "backend", backend, "pike_url", pikeURL, "confirm", string(mode))
		return
	}
	line := fmt.Sprintf("batch %s: %d rows, %s; ledger %s (%s); Pike %s", batchID, sum.Rows, totalsLine(sum.Totals), ledgerPath, backend, pikeURL)
	if mode == batch.ConfirmHold {
		line += "; confirm hold (rows wait for `payouts approve`)"
	}
	a.say(line)
}

// errw is stderr for text a command prints for people: above the progress
// bar on a terminal, and with JSON logs one INFO record per line.
func (a *App) errw() io.Writer {
	if log := a.jsonLogger(); log != nil {
		return &recordWriter{log: log}
	}
	return consoleWriter{a.console()}
}

// recordWriter turns each line written to it into a log record.
type recordWriter struct {
	log  *slog.Logger
	part []byte
}

func (w *recordWriter) Write(p []byte) (int, error) {
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := strings.TrimSpace(string(w.part[:i])); line != "" {
			w.log.Info(line)
		}
		w.part = w.part[i+1:]
	}
}

// stdinTerminal reports whether standard input is a terminal: a person who
// can answer a prompt.
func (a *App) stdinTerminal() bool {
	if a.StdinTerminal != nil {
		return *a.StdinTerminal
	}
	f, ok := a.Stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
