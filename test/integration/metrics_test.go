package integration

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// freePort returns a loopback address no one listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeConf(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(os.Getenv("LKC_CONFIG"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// scrape GETs /metrics and parses it strictly.
func scrape(t *testing.T, addr string) ([]testutil.Series, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %s, Content-Type %q", resp.Status, ct)
	}
	series, _, err := testutil.ParsePromText(string(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return series, nil
}

// TestMetricsEndpoint: with metrics.listen the daemon serves cAdvisor's
// series for a running container of metrics.roots, across a kill of its
// worker (the socket is the holder's), and stops serving when it stops.
func TestMetricsEndpoint(t *testing.T) {
	d := newDaemonEnv(t)
	addr := freePort(t)
	writeConf(t, "metrics.listen = "+addr+"\nmetrics.roots = "+d.root+"\n")
	id := d.shmHog(16, "sleep 1000", nil)
	st := d.start()
	check := func() {
		t.Helper()
		series, err := scrape(t, addr)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, s := range series {
			if s.Labels["id"] == id && s.Labels["name"] == id && s.Labels["root"] == d.root {
				got[s.Name] = s.Value
			}
		}
		if got["container_memory_usage_bytes"] < 16<<20 || got["container_memory_working_set_bytes"] <= 0 {
			t.Errorf("memory series %v, want usage >= 16 MiB", got)
		}
		for _, name := range []string{"container_cpu_usage_seconds_total", "container_threads",
			"container_network_receive_bytes_total", "container_fs_reads_bytes_total", "container_oom_events_total"} {
			if _, ok := got[name]; !ok {
				t.Errorf("no %s for %s in %v", name, id, got)
			}
		}
	}
	check()
	kill9(t, st.WorkerPid)
	check() // waits in the held socket's backlog for the next worker
	d.mustLkc("daemon", "stop")
	if _, err := scrape(t, addr); err == nil {
		t.Error("/metrics still answers after lkc daemon stop")
	}
}

// TestMetricsBadListen: a metrics.listen that is not HOST:PORT, or that
// cannot be bound, fails the daemon's start with one line and leaves no
// daemon behind.
func TestMetricsBadListen(t *testing.T) {
	d := newDaemonEnv(t)
	conf := os.Getenv("LKC_CONFIG")
	writeConf(t, "metrics.listen = 9323\n")
	d.failLkc(`^lkc: daemon: `+conf+` line 1: metrics.listen: "9323": use HOST:PORT such as 127.0.0.1:9323$`, "daemon", "--detach")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	writeConf(t, "metrics.listen = "+busy.Addr().String()+"\n")
	d.failLkc(`^lkc: daemon: lkc daemon did not start: starting service metrics: metrics.listen `+busy.Addr().String()+`: .*address already in use`, "daemon", "--detach")
	if pids := d.processes(); len(pids) != 0 {
		t.Errorf("a failed start left daemon processes %v", pids)
	}
}
