package metrics

import (
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/stats"
	"github.com/lkc-containers/lkc/internal/testutil"
)

func TestWriteParsesStrictly(t *testing.T) {
	cs := []Container{
		{Root: "/run/lkc", Sample: stats.Sample{ID: "web", Status: "running", CPUNanos: 1500000000,
			MemoryUsed: 4096, MemoryLimit: 1 << 20, NetRx: 10, OOMKills: 2, Pids: 3}},
		{Root: `/odd "root"\` + "\n", Sample: stats.Sample{ID: "db", Status: "paused", MemoryUsed: 1}},
		{Root: "/run/lkc", Sample: stats.Sample{ID: "gone", Status: "stopped", MemoryUsed: 7}},
	}
	var b strings.Builder
	if err := Write(&b, cs); err != nil {
		t.Fatal(err)
	}
	series, types, err := testutil.ParsePromText(b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	got := map[string]float64{}
	for _, s := range series {
		if s.Labels["id"] == "gone" {
			t.Errorf("a stopped container has series: %+v", s)
		}
		got[s.Name+"/"+s.Labels["name"]+"/"+s.Labels["root"]] = s.Value
	}
	for key, want := range map[string]float64{
		"container_cpu_usage_seconds_total/web//run/lkc":     1.5,
		"container_spec_memory_limit_bytes/web//run/lkc":     1 << 20,
		"container_oom_events_total/web//run/lkc":            2,
		"container_threads/web//run/lkc":                     3,
		"container_network_receive_bytes_total/web//run/lkc": 10,
		"container_memory_usage_bytes/db//odd \"root\"\\\n":  1,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	if _, ok := got["container_spec_memory_limit_bytes/db//odd \"root\"\\\n"]; ok {
		t.Error("an unlimited container has a memory limit series")
	}
	if types["container_cpu_usage_seconds_total"] != "counter" || types["container_memory_usage_bytes"] != "gauge" {
		t.Errorf("types %v", types)
	}
}

// The reader the tests check with must refuse what Prometheus refuses.
func TestParsePromTextRefuses(t *testing.T) {
	for _, bad := range []string{
		"a 1",                              // no final newline
		"a{b=\"c\" 1\n",                    // label set not closed
		"a{b=c} 1\n",                       // value not quoted
		"a{b=\"\\t\"} 1\n",                 // bad escape
		"a 1\na 2\n",                       // series twice
		"a 1\nb 1\na 2\n",                  // family split
		"# TYPE a counter\na -1\n",         // negative counter
		"a 1\n# TYPE a gauge\n",            // TYPE after samples
		"# TYPE a gauge\n# TYPE a gauge\n", // TYPE twice
		"a  1\n",                           // two spaces
		"1a 1\n",                           // bad name
		"a 0x10\n",                         // Go float syntax
	} {
		if _, _, err := testutil.ParsePromText(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
