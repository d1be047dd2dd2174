package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

type report struct {
	Host      host              `json:"host"`
	Seed      uint64            `json:"seed"`
	Namespace string            `json:"namespace"`
	Scenarios []*scenarioResult `json:"scenarios"`
}

type host struct {
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
}

func currentHost() host {
	h := host{Kernel: "unknown", CPUs: runtime.NumCPU()}
	if release, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(release))
	}
	return h
}

func (r *report) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "lkc bench: kernel %s, %d CPUs, shuffle seed %d\n%s\n",
		r.Host.Kernel, r.Host.CPUs, r.Seed, r.Namespace)
	for _, sc := range r.Scenarios {
		writeScenario(w, sc)
	}
	return nil
}

func writeScenario(w io.Writer, sc *scenarioResult) {
	fmt.Fprintf(w, "\nscenario %s: %s\n", sc.Name, sc.Desc)
	fmt.Fprintf(w, "%d measured iterations after %d warm-up; each runs every variant once, in a fresh random order\n\n",
		sc.Iterations, sc.Warmup)
	if sc.Interrupted {
		fmt.Fprint(w, "INTERRUPTED: partial results\n\n")
	}
	nameW, ratioW := 8, 16 // widened to the longest name (lifecycle's lkc-create)
	for _, vr := range sc.Variants {
		nameW = max(nameW, len(vr.Name))
	}
	for _, r := range sc.Ratios {
		ratioW = max(ratioW, len(r.Num)+1+len(r.Den))
	}
	fmt.Fprintf(w, "%-*s %5s %5s %10s %8s %8s %8s %10s\n", nameW, "variant", "runs", "fail", "wall p50", "p10", "p90", "p99", "cpu p50")
	for _, vr := range sc.Variants {
		writeVariantRow(w, vr, nameW)
	}
	cpu := "user+sys of the whole process tree"
	if sc.CPU != "" {
		cpu = sc.CPU
	}
	fmt.Fprintf(w, "(milliseconds; cpu = %s)\n\n", cpu)
	fmt.Fprintf(w, "%-*s %6s %6s\n", ratioW, "ratio of medians", "wall", "cpu")
	for _, r := range sc.Ratios {
		fmt.Fprintf(w, "%-*s %6s %6s\n", ratioW, r.Num+"/"+r.Den, fmtRatio(r.Wall), fmtRatio(r.CPU))
	}
	fmt.Fprintln(w)
	writeNotes(w, sc)
}

func writeVariantRow(w io.Writer, vr *variantResult, nameW int) {
	if vr.Unavailable != "" {
		fmt.Fprintf(w, "%-*s FAILED (see below)\n", nameW, vr.Name)
		return
	}
	if vr.Wall == nil {
		fmt.Fprintf(w, "%-*s %5d %5d %10s %8s %8s %8s %10s\n", nameW, vr.Name, vr.Runs, vr.Failures, "-", "-", "-", "-", "-")
		return
	}
	fmt.Fprintf(w, "%-*s %5d %5d %10.3f %8.3f %8.3f %8.3f %10.3f\n", nameW, vr.Name, vr.Runs, vr.Failures,
		vr.Wall.P50, vr.Wall.P10, vr.Wall.P90, vr.Wall.P99, vr.CPU.P50)
}

// writeNotes lists each variant's details and problems under the table.
func writeNotes(w io.Writer, sc *scenarioResult) {
	for _, vr := range sc.Variants {
		fmt.Fprintf(w, "  %-6s %s\n", vr.Name, vr.Desc)
		if vr.Info != "" {
			fmt.Fprintf(w, "         %s\n", vr.Info)
		}
		if vr.Notes != "" {
			fmt.Fprintf(w, "         %s\n", vr.Notes)
		}
		for _, problem := range []struct{ label, text string }{
			{"unavailable", vr.Unavailable},
			{"first error", vr.FirstError},
			{"cleanup error", vr.CleanupError},
		} {
			if problem.text != "" {
				fmt.Fprintf(w, "         %s: %s\n", problem.label, problem.text)
			}
		}
	}
}

func fmtRatio(r *float64) string {
	if r == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *r)
}
