package clients

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestCRIPodStartBench measures, when LKC_CRI_BENCH=N is set, a pod's
// start (crictl runp, create, start of one container) and teardown
// (stopp, rmp) N times per runtime handler on each containerd, lkc and
// runc taking turns in a shuffled order in the same daemon, and logs the
// medians. Each figure includes the crictl processes' own start, the same
// for both handlers, which it logs too (crictl version).
func TestCRIPodStartBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LKC_CRI_BENCH"))
	if n <= 0 {
		t.Skip("set LKC_CRI_BENCH=N to measure pod start and teardown N times per runtime")
	}
	requireSetup(t)
	for i, b := range criBuilds() {
		t.Run("containerd-"+b.name, func(t *testing.T) {
			requireCRI(t, b)
			d := startCRI(t, b, i)
			start := map[string][]time.Duration{}
			stop := map[string][]time.Duration{}
			rts := runtimes()
			for round := 0; round < n; round++ {
				rand.Shuffle(len(rts), func(a, b int) { rts[a], rts[b] = rts[b], rts[a] })
				for _, rt := range rts {
					s, e := criPodRound(t, d, rt, round)
					start[rt.name] = append(start[rt.name], s)
					stop[rt.name] = append(stop[rt.name], e)
				}
			}
			// crictl's own start and a round trip, which every figure
			// holds three (start) or two (teardown) of.
			var trip []time.Duration
			for range n {
				t0 := time.Now()
				r := d.crictl(t, "version")
				if r.code != 0 {
					t.Fatalf("%v", r)
				}
				trip = append(trip, time.Since(t0))
			}
			t.Logf("containerd %s: crictl version median %v", b.name, median(trip))
			for _, rt := range runtimes() {
				t.Logf("containerd %s, %s: pod start median %v, teardown median %v (%d runs)",
					b.name, rt.name, median(start[rt.name]), median(stop[rt.name]), n)
			}
		})
	}
}

// criPodRound starts a pod with one running container and tears it down,
// timing both.
func criPodRound(t *testing.T, d *criDaemon, rt ociRuntime, round int) (start, stop time.Duration) {
	r := &criRuntime{d: d, t: t, rt: rt, root: criRuntimeRoot(d.dir, rt.name) + "/" + criNamespace}
	parent := cgroupParent(t, "bench-"+rt.name+"-"+strconv.Itoa(round))
	t0 := time.Now()
	pod := r.runPod("bench-"+strconv.Itoa(round), parent, map[string]int{"pid": nsContainer})
	pod.startOnly(pod.container("sleep", []string{"sleep", "3600"}, nil))
	t1 := time.Now()
	r.must("stopp", pod.id)
	r.must("rmp", pod.id)
	pod.gone = true
	return t1.Sub(t0), time.Since(t1)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(100 * time.Microsecond)
}
