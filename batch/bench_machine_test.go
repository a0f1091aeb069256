package batch_test

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// machineSample is a reading of the whole machine's CPU counters, to tell
// how busy the shared machine was during a run (Linux only; zero elsewhere).
type machineSample struct {
	ok        bool
	busy, all int64         // jiffies from /proc/stat
	pressure  time.Duration // "some" CPU pressure stall time (/proc/pressure/cpu)
	havePSI   bool
	at        time.Time
}

func sampleMachine() machineSample {
	s := machineSample{at: time.Now()}
	if f, err := os.Open("/proc/stat"); err == nil {
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 && fields[0] == "cpu" {
				for i, v := range fields[1:] {
					n, _ := strconv.ParseInt(v, 10, 64)
					s.all += n
					if i != 3 && i != 4 { // idle, iowait
						s.busy += n
					}
				}
				s.ok = true
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		for _, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0]) {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				if err == nil {
					s.pressure, s.havePSI = time.Duration(us)*time.Microsecond, true
				}
			}
		}
	}
	return s
}

// machineLoad is what happened between two samples: the share of the
// machine's CPU that was busy (every process, ours included), and the
// share of wall time in which some runnable task waited for a CPU.
func machineLoad(a, b machineSample) (busyPct, pressurePct float64, ok bool) {
	if !a.ok || !b.ok || b.all == a.all {
		return 0, 0, false
	}
	busyPct = 100 * float64(b.busy-a.busy) / float64(b.all-a.all)
	if a.havePSI && b.havePSI {
		pressurePct = 100 * float64(b.pressure-a.pressure) / float64(b.at.Sub(a.at))
	}
	return busyPct, pressurePct, true
}
