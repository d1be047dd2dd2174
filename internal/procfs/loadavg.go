package procfs

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// The kernel's load average arithmetic (kernel/sched/loadavg.c): fixed
// point with 11 fraction bits, one sample every 5 s, decay factors
// 1/exp(5s/1min), 1/exp(5s/5min), 1/exp(5s/15min).
const (
	fshift     = 11
	fixed1     = 1 << fshift
	loadPeriod = 5 * time.Second
)

var loadExp = [3]uint64{1884, 2014, 2037}

// maxCatchUp bounds the periods folded in at once after a gap in sampling
// (demand-driven sampling stops while nobody reads): 15 minutes' worth
// decays every average to the current value's neighbourhood anyway.
const maxCatchUp = 180

// Load is a container's 1/5/15-minute load average. There is no
// per-cgroup load average in the kernel, so the daemon calls Sample every
// 5 s for every served container from one timer; Load keeps the averages
// and the last count of tasks, which /proc/stat's procs_running and
// loadavg's running/total fields show.
type Load struct {
	mu      sync.Mutex
	avg     [3]uint64 // fixed point
	at      time.Time // the end of the last period folded in
	tasks   tasks
	sampled time.Time
}

// Sample counts c's running and blocked tasks and folds them into the
// averages, once per 5 s period that has passed since the last sample.
func (l *Load) Sample(c *Container, now time.Time) error { return Default.Sample(l, c, now) }

// Sample is Load.Sample on h.
func (h *Host) Sample(l *Load, c *Container, now time.Time) error {
	t, err := h.tasks(c)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tasks, l.sampled = t, now
	active := uint64(t.running+t.blocked) * fixed1
	periods := 1
	if !l.at.IsZero() {
		periods = int(now.Sub(l.at) / loadPeriod)
		l.at = l.at.Add(time.Duration(periods) * loadPeriod)
	} else {
		l.at = now
	}
	for i := 0; i < min(periods, maxCatchUp); i++ {
		for j := range l.avg {
			l.avg[j] = calcLoad(l.avg[j], loadExp[j], active)
		}
	}
	return nil
}

// calcLoad is the kernel's calc_load: one step of the exponential average,
// rounded up while the load rises.
func calcLoad(load, exp, active uint64) uint64 {
	n := load*exp + active*(fixed1-exp)
	if active >= load {
		n += fixed1 - 1
	}
	return n / fixed1
}

// snapshot returns the averages and the task counts of the last sample,
// when it is recent enough to stand for now.
func (l *Load) snapshot(now time.Time) (avg [3]uint64, t tasks, fresh bool) {
	if l == nil {
		return avg, t, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.avg, l.tasks, !l.sampled.IsZero() && now.Sub(l.sampled) < 2*loadPeriod
}

// currentTasks returns c's task counts: the sampler's when fresh (once
// the cgroup is known to be still there: read says the caller read its
// files in this render), else counted now.
func (h *Host) currentTasks(c *Container, read bool) ([3]uint64, tasks, error) {
	avg, t, fresh := c.Load.snapshot(h.Now())
	if fresh && read {
		return avg, t, nil
	}
	if fresh {
		dir, _, err := h.threadsFile(c)
		if err == nil {
			_, err = os.Stat(dir) // threadsFile's answer may be a second old
		}
		return avg, t, err
	}
	t, err := h.tasks(c)
	return avg, t, err
}

// loadString formats a fixed-point average as the kernel does: two
// decimals, rounded (LOAD_INT/LOAD_FRAC of the value plus FIXED_1/200).
func loadString(v uint64) string {
	v += fixed1 / 200
	return fmt.Sprintf("%d.%02d", v>>fshift, ((v&(fixed1-1))*100)>>fshift)
}

func renderLoadavg(h *Host, c *Container) ([]byte, error) {
	avg, t, err := h.currentTasks(c, false)
	if err != nil {
		return nil, err
	}
	t = t.withReader()
	return []byte(fmt.Sprintf("%s %s %s %d/%d %d\n", loadString(avg[0]), loadString(avg[1]), loadString(avg[2]),
		t.running, t.total, t.lastPid)), nil
}
