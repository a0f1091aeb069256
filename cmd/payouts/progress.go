package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// progressView reports a batch's progress while a command drives it: on a
// terminal a bar on stderr (log lines are printed above it, see console),
// otherwise a plain log record every progressEvery (cron).
type progressView struct {
	app   *App
	verb  string // "paying", "approving", ...
	bar   *progressbar.ProgressBar
	log   *slog.Logger
	width int // the terminal's columns
	last  time.Time
	max   int
}

// progressEvery is how often a command not on a terminal logs its progress.
const progressEvery = 5 * time.Second

// progress returns the progress display of a command; total is the number
// of rows expected (the bar follows the ledger's counts once they come).
func (a *App) progress(log *slog.Logger, total int) *progressView {
	return a.progressOf(log, "paying", total)
}

func (a *App) progressOf(log *slog.Logger, verb string, total int) *progressView {
	p := &progressView{app: a, verb: verb, log: log, max: total}
	con := a.console()
	if !con.tty || a.jsonLogs() {
		return p
	}
	p.width = 100
	if f, ok := a.Stderr.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			p.width = w
		}
	}
	p.bar = progressbar.NewOptions(max(total, 1),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetWriter(barWriter{con}),
		progressbar.OptionSetDescription(verb),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		// No throttle: the engine reports once a second, and a throttled
		// Set after Describe would show a count behind its description.
		progressbar.OptionThrottle(0),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionClearOnFinish(),
	)
	return p
}

// watch is the engine's Watch callback: called about every second with the
// batch's counts and what its open rows wait for.
func (p *progressView) watch(pr batch.Progress) {
	settled, total := pr.Settled(), pr.Counts.Total()
	if p.bar != nil {
		if total > 0 && total != p.max {
			p.max = total
			p.bar.ChangeMax(total)
		}
		p.bar.Describe(p.describe(pr))
		_ = p.bar.Set(settled)
		if settled < p.max {
			p.app.console().showBar()
		} else {
			// Every row final: the bar finished (and cleared itself); done
			// removes it.
			p.app.console().dropDrawn()
		}
		return
	}
	if p.log == nil || time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	args := []any{"batch", pr.BatchID, "settled", settled, "total", total}
	for _, s := range ledger.States() {
		if n := pr.Counts[s]; n > 0 {
			args = append(args, string(s), n)
		}
	}
	if pr.Held > 0 {
		args = append(args, "held", pr.Held)
	}
	if pr.Waiting > 0 {
		args = append(args, "waiting", pr.Waiting)
		if !pr.NextPoll.IsZero() {
			args = append(args, "next_poll", pr.NextPoll.UTC().Format(time.RFC3339), "next_poll_in", time.Until(pr.NextPoll).Round(time.Second))
		}
	}
	p.log.Info("progress", args...)
}

// describe is the bar's description: the verb, the rows per state, and what
// the open rows wait for ("waiting for 12 webhooks; polling at 03:14:05"),
// cut to fit the terminal beside the bar and its count.
func (p *progressView) describe(pr batch.Progress) string {
	parts := []string{p.verb}
	for _, s := range []ledger.State{ledger.StateSucceeded, ledger.StateFailed, ledger.StateCancelled, ledger.StateMismatch, ledger.StateReview} {
		if n := pr.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	d := strings.Join(parts, " · ")
	what := "webhooks"
	if !p.app.listening {
		what = "results" // no webhook listener: polling only
	}
	switch {
	case pr.Waiting > 0 && !pr.NextPoll.IsZero():
		d += fmt.Sprintf(" — waiting for %d %s; polling at %s", pr.Waiting, what, pr.NextPoll.Local().Format("15:04:05"))
	case pr.Waiting > 0:
		d += fmt.Sprintf(" — waiting for %d %s", pr.Waiting, what)
	}
	if pr.Held > 0 {
		d += fmt.Sprintf(" — %d held for approval", pr.Held)
	}
	// The percentage, the bar and the count take about 40 columns; a line
	// that wraps could not be redrawn in place.
	if room := p.width - 40 - 2*len(fmt.Sprint(p.max)); len([]rune(d)) > room {
		d = truncate(d, max(room, 8))
	}
	return d
}

// update is the engine's Progress callback for the commands that pass
// counts only.
func (p *progressView) update(c batch.Counts) {
	p.watch(batch.Progress{Counts: c})
}

// done removes the bar.
func (p *progressView) done() {
	if p.bar != nil {
		_ = p.bar.Exit() // not Finish: that would draw every row as settled
		p.app.console().endBar()
	}
}
