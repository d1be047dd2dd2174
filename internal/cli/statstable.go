package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lkc-containers/lkc/internal/stats"
)

// statsColumn is one column of `lkc stats` and `lkc top`: its heading,
// the key that sorts by it in top, and how a sample shows and compares.
type statsColumn struct {
	name    string // --sort's name
	key     byte   // top's key
	heading string
	show    func(*stats.Sample) string
	less    func(a, b *stats.Sample) int // ascending
}

func byUint(f func(*stats.Sample) uint64) func(a, b *stats.Sample) int {
	return func(a, b *stats.Sample) int { return cmp.Compare(f(a), f(b)) }
}

var statsColumns = []statsColumn{
	{"id", 'i', "CONTAINER ID", func(s *stats.Sample) string { return s.ID },
		func(a, b *stats.Sample) int { return strings.Compare(a.ID, b.ID) }},
	{"state", 's', "STATE", func(s *stats.Sample) string { return s.Status },
		func(a, b *stats.Sample) int { return strings.Compare(a.Status, b.Status) }},
	{"cpu", 'c', "CPU %", func(s *stats.Sample) string { return fmt.Sprintf("%.2f%%", s.CPUPercent) },
		func(a, b *stats.Sample) int { return cmp.Compare(a.CPUPercent, b.CPUPercent) }},
	{"mem", 'm', "MEM USAGE / LIMIT", func(s *stats.Sample) string {
		return sizeBytes(s.MemoryUsed) + " / " + limitBytes(s.MemoryLimit)
	}, byUint(func(s *stats.Sample) uint64 { return s.MemoryUsed })},
	{"pids", 'p', "PIDS", func(s *stats.Sample) string { return fmt.Sprint(s.Pids) },
		byUint(func(s *stats.Sample) uint64 { return s.Pids })},
	{"block", 'b', "BLOCK I/O", func(s *stats.Sample) string {
		return sizeBytes(s.BlockRead) + " / " + sizeBytes(s.BlockWrite)
	}, byUint(func(s *stats.Sample) uint64 { return s.BlockRead + s.BlockWrite })},
	{"net", 'n', "NET I/O", func(s *stats.Sample) string {
		return sizeBytes(s.NetRx) + " / " + sizeBytes(s.NetTx)
	}, byUint(func(s *stats.Sample) uint64 { return s.NetRx + s.NetTx })},
	{"oom", 'o', "OOM", func(s *stats.Sample) string { return fmt.Sprint(s.OOMKills) },
		byUint(func(s *stats.Sample) uint64 { return s.OOMKills })},
	{"policy", 'y', "POLICY", func(s *stats.Sample) string { return s.Policy },
		func(a, b *stats.Sample) int { return strings.Compare(a.Policy, b.Policy) }},
}

// statsSort names a column and a direction. Counters sort largest first
// by default (what top is for), names A to Z.
type statsSort struct {
	col     int
	reverse bool
}

func parseStatsSort(name string) (statsSort, error) {
	for i, c := range statsColumns {
		if c.name == name {
			return statsSort{col: i, reverse: i >= 2 && c.name != "policy"}, nil
		}
	}
	names := make([]string, len(statsColumns))
	for i, c := range statsColumns {
		names[i] = c.name
	}
	return statsSort{}, fmt.Errorf("--sort %q: use one of %s", name, strings.Join(names, ", "))
}

// apply sorts samples by the column, ties by id.
func (o statsSort) apply(samples []stats.Sample) {
	less := statsColumns[o.col].less
	slices.SortStableFunc(samples, func(a, b stats.Sample) int {
		c := less(&a, &b)
		if o.reverse {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		return c
	})
}

// writeStatsTable writes samples as an aligned table; marked (-1: none) is
// the column whose heading top marks as the sort column.
func writeStatsTable(out io.Writer, samples []stats.Sample, marked int) error {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	for i, c := range statsColumns {
		h := c.heading
		if i == marked {
			h = "[" + h + "]"
		}
		fmt.Fprint(w, h, "\t")
	}
	fmt.Fprintln(w)
	for i := range samples {
		for _, c := range statsColumns {
			fmt.Fprint(w, c.show(&samples[i]), "\t")
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

// sizeBytes shows n rounded in binary units as docker stats does
// (1.5MiB); limits.go's humanBytes is exact instead.
func sizeBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.3g%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func limitBytes(n uint64) string {
	if n == 0 {
		return "unlimited"
	}
	return sizeBytes(n)
}

// minInterval is the shortest --interval of stats and top: CPU % divides
// the CPU time between two reads, which the kernel advances by whole
// scheduler ticks (4 ms at HZ=250) while a task runs, by the wall time
// between them, so shorter intervals show noise, and they make a busy
// loop of the command.
const minInterval = 10 * time.Millisecond

// checkInterval refuses an --interval that is not positive or is below
// minInterval.
func checkInterval(d time.Duration) error {
	switch {
	case d <= 0:
		return fmt.Errorf("--interval %v: must be positive", d)
	case d < minInterval:
		return fmt.Errorf("--interval %v: below the %v minimum", d, minInterval)
	}
	return nil
}
