//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/payouts/payouts/pike/sandbox"
)

// openPTY opens a pseudo-terminal pair of cols columns: the master end,
// which the test reads, and the terminal end, which the command gets as
// its stderr.
func openPTY(t *testing.T, cols uint16) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the terminal end: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: cols}); err != nil {
		t.Fatalf("set the window size: %v", err)
	}
	t.Cleanup(func() { master.Close(); tty.Close() })
	return master, tty
}

// screenLines replays what a terminal shows of out, line by line: a
// carriage return moves to column 0 (text written next overwrites), "\033[2K"
// clears the line, other escape sequences change no text. A line is what
// remains of it when the cursor left it.
func screenLines(out []byte) []string {
	var lines []string
	var line []rune
	col := 0
	s := []rune(string(out))
	for i := 0; i < len(s); i++ {
		switch r := s[i]; {
		case r == '\r':
			col = 0
		case r == '\n':
			lines = append(lines, strings.TrimRight(string(line), " "))
			line, col = nil, 0
		case r == 0x1b && i+1 < len(s) && s[i+1] == '[':
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			if j < len(s) && s[j] == 'K' && string(s[i+2:j]) == "2" {
				line = nil
			}
			i = j
		default:
			for len(line) <= col {
				line = append(line, ' ')
			}
			line[col] = r
			col++
		}
	}
	if len(line) > 0 {
		lines = append(lines, strings.TrimRight(string(line), " "))
	}
	return lines
}

var (
	// barRE is one drawing of the bar: description, percentage, bar,
	// count.
	barRE = regexp.MustCompile(`^(paying.*?)\s+\d+% \|[^|]*\| \((\d+)/16\)`)
	// finalRE is a final state's count in the bar's description.
	finalRE = regexp.MustCompile(`(succeeded|failed|cancelled|mismatch|review) (\d+)`)
)

// TestProgressBarPTY runs the real binary with its stderr on a
// pseudo-terminal against a Pike that fails a third of its calls (the
// client logs every retry while the bar is shown) and checks what the
// terminal shows: a bar that says what it waits for, and every log line on
// its own line from column 0, with no piece of the bar in it.
func TestProgressBarPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	p := newCLIPike(t, sandbox.Config{Faults: sandbox.Faults{FailBeforeApply: 0.3, Latency: 40 * time.Millisecond},
		ReadyDelay: 300 * time.Millisecond, FinishDelay: 300 * time.Millisecond})
	var rows [][5]string
	for i := range 16 {
		rows = append(rows, [5]string{fmt.Sprintf("PTY-%02d", i), fmt.Sprintf("%d", 1000+i), "RUB", sandbox.CardMir, "Иванов Иван"})
	}
	m := p.manifest("pty.csv", rows...)
	bin := filepath.Join(t.TempDir(), "payouts")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	master, tty := openPTY(t, 120)
	cmd := exec.Command(bin, "run", m, "--concurrency", "2", "--poll-after", "1s")
	cmd.Env = append(os.Environ(), "TZ=UTC")
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds it; EOF (EIO) on the master once it exits
	var screen bytes.Buffer
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(&screen, master)
		copied <- err
	}()
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err := <-copied; err != nil && !errors.Is(err, syscall.EIO) {
		t.Fatalf("read the terminal: %v", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != ExitOK {
		t.Fatalf("run: exit %d\nstdout:\n%s\nterminal:\n%q", code, stdout.String(), screen.String())
	}

	lines := screenLines(screen.Bytes())
	var logs, bars int
	var waiting bool
	for _, l := range lines {
		if strings.Contains(l, "level=") {
			logs++
			if !strings.HasPrefix(l, "time=") || strings.Contains(l, "paying") || strings.Contains(l, "█") {
				t.Errorf("log line run into the progress bar: %q", l)
			}
		}
		if strings.Contains(l, "paying") {
			bars++
			waiting = waiting || strings.Contains(l, "waiting for")
		}
	}
	// The bar is cleared at the end: it is on the last line drawn, if any.
	if logs == 0 || !bytes.Contains(screen.Bytes(), []byte("pike retry")) {
		t.Errorf("no retry was logged: the test shows nothing\n%s", strings.Join(lines, "\n"))
	}
	if !bytes.Contains(screen.Bytes(), []byte("paying")) || !bytes.Contains(screen.Bytes(), []byte("/16)")) {
		t.Errorf("no progress bar with its count was drawn:\n%q", screen.String())
	}
	// Each drawing of the bar: its count is the rows it says are final.
	draws := 0
	for _, seg := range strings.Split(screen.String(), "\r") {
		m := barRE.FindStringSubmatch(seg)
		if m == nil {
			continue
		}
		draws++
		final := 0
		for _, c := range finalRE.FindAllStringSubmatch(m[1], -1) {
			n, _ := strconv.Atoi(c[2])
			final += n
		}
		if got, _ := strconv.Atoi(m[2]); got != final {
			t.Errorf("the bar counts %d rows settled but its description says %d are final: %q", got, final, seg)
		}
	}
	if draws == 0 {
		t.Errorf("no drawing of the bar found:\n%q", screen.String())
	}
	if !bytes.Contains(screen.Bytes(), []byte("waiting for")) {
		t.Errorf("the bar never said what it waits for:\n%q", screen.String())
	}
	if !strings.HasPrefix(lines[0], "batch ") || !strings.Contains(lines[0], "16 rows, RUB 16,120.00") {
		t.Errorf("first line: got %q, want the run's start line", lines[0])
	}
	t.Logf("%d log lines, %d lines with the bar, waiting shown: %v", logs, bars, waiting)
	if os.Getenv("PTY_DUMP") != "" {
		os.WriteFile(os.Getenv("PTY_DUMP"), screen.Bytes(), 0o644)
	}
}

// TestApprovePromptPTY: approve run by a person at a terminal (standard
// input and error on a pseudo-terminal) shows its preview, asks, and acts
// on "y"; its progress bar and log lines do not run into each other.
func TestApprovePromptPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("held.csv", heldRows()...)
	code, stdout, stderr := p.run("run", m, "--confirm", "hold")
	if code != ExitOK {
		t.Fatalf("hold run: exit %d\n%s%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	bin := filepath.Join(t.TempDir(), "payouts")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	master, tty := openPTY(t, 120)
	cmd := exec.Command(bin, "approve", "--batch", id[:4], "--as", "Anna")
	cmd.Env = os.Environ()
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &out, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen bytes.Buffer
	prompted := make(chan struct{})
	copied := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		asked := false
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if !asked && bytes.Contains(screen.Bytes(), []byte("[y/N] ")) {
				asked = true
				close(prompted)
			}
			if err != nil {
				copied <- err
				return
			}
		}
	}()
	select {
	case <-prompted:
		if _, err := master.Write([]byte("y\n")); err != nil {
			t.Fatal(err)
		}
	case err := <-copied:
		t.Fatalf("approve ended without asking (%v):\n%q\n%s", err, screen.String(), out.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("approve: %v\nterminal:\n%q\nstdout:\n%s", err, screen.String(), out.String())
	}
	<-copied
	if want := "Approve 3 payouts totalling EUR 20.00, RUB 151,500.50? [y/N] "; !strings.Contains(screen.String(), want) {
		t.Errorf("prompt: want %q in\n%q", want, screen.String())
	}
	if !strings.Contains(out.String(), "Approve 3 rows of batch "+id) {
		t.Errorf("no preview on stdout:\n%s", out.String())
	}
	for ref, r := range p.ledgerRows(id) {
		if r.State != "succeeded" {
			t.Errorf("%s: got %s after approve, want succeeded", ref, r.State)
		}
	}
	for _, l := range screenLines(screen.Bytes()) {
		if strings.Contains(l, "level=") && !strings.HasPrefix(l, "time=") {
			t.Errorf("log line run into the progress bar: %q", l)
		}
	}
}
