// Package metrics is the daemon's Prometheus endpoint: GET /metrics
// answers every container of the configured lkc roots with the series
// names and labels cAdvisor uses, so dashboards built for cAdvisor work on
// lkc containers. It reads internal/stats on each scrape and keeps nothing
// between scrapes, and serves the text exposition format over its own small
// HTTP/1.1 server (server.go says why not net/http).
package metrics

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/lkc-containers/lkc/internal/stats"
)

// series is one metric family: its cAdvisor name, type, help and value.
// ok says whether a sample has the value (a limit that is not set has
// none).
type series struct {
	name, kind, help string
	value            func(*stats.Sample) (float64, bool)
}

func counter(name, help string, f func(*stats.Sample) uint64) series {
	return series{name, "counter", help, func(s *stats.Sample) (float64, bool) { return float64(f(s)), true }}
}

func gauge(name, help string, f func(*stats.Sample) uint64) series {
	return series{name, "gauge", help, func(s *stats.Sample) (float64, bool) { return float64(f(s)), true }}
}

// limit is a gauge present only when the limit is set.
func limit(name, help string, f func(*stats.Sample) uint64) series {
	return series{name, "gauge", help, func(s *stats.Sample) (float64, bool) { return float64(f(s)), f(s) != 0 }}
}

var families = []series{
	{"container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.",
		func(s *stats.Sample) (float64, bool) { return float64(s.CPUNanos) / 1e9, true }},
	gauge("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.",
		func(s *stats.Sample) uint64 { return s.MemoryUsed }),
	gauge("container_memory_working_set_bytes", "Current working set in bytes.",
		func(s *stats.Sample) uint64 { return s.MemoryWorkingSet }),
	gauge("container_memory_cache", "Number of bytes of page cache memory.",
		func(s *stats.Sample) uint64 { return s.MemoryCache }),
	limit("container_spec_memory_limit_bytes", "Memory limit for the container.",
		func(s *stats.Sample) uint64 { return s.MemoryLimit }),
	counter("container_network_receive_bytes_total", "Cumulative count of bytes received (every interface but lo).",
		func(s *stats.Sample) uint64 { return s.NetRx }),
	counter("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted (every interface but lo).",
		func(s *stats.Sample) uint64 { return s.NetTx }),
	counter("container_fs_reads_bytes_total", "Cumulative count of bytes read (every block device).",
		func(s *stats.Sample) uint64 { return s.BlockRead }),
	counter("container_fs_writes_bytes_total", "Cumulative count of bytes written (every block device).",
		func(s *stats.Sample) uint64 { return s.BlockWrite }),
	counter("container_oom_events_total", "Count of out of memory events observed for the container.",
		func(s *stats.Sample) uint64 { return s.OOMKills }),
	gauge("container_threads", "Number of threads running inside the container.",
		func(s *stats.Sample) uint64 { return s.Pids }),
	limit("container_threads_max", "Maximum number of threads allowed inside the container.",
		func(s *stats.Sample) uint64 { return s.PidsLimit }),
}

// Container is one container's sample and the root it is under.
type Container struct {
	Root   string
	Sample stats.Sample
}

// Write renders cs in the text exposition format (version 0.0.4): per
// family a HELP and a TYPE line, then one sample per container that is
// not stopped, labelled id and name (the container id, which is also its
// name: OCI containers have no other) and root.
func Write(w io.Writer, cs []Container) error {
	var b strings.Builder
	for _, f := range families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.kind)
		for i := range cs {
			s := &cs[i].Sample
			if s.Status == "stopped" {
				continue
			}
			v, ok := f.value(s)
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "%s{id=%s,name=%s,root=%s} %s\n", f.name,
				quote(s.ID), quote(s.ID), quote(cs[i].Root), strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// quote escapes a label value as the format asks: backslash, double quote
// and newline.
func quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
