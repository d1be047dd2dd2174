package state

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/jsonc"
	"github.com/lkc-containers/lkc/internal/spec"
)

// A command reads the state file once, in a fresh process: what it pays
// is the first decode, per-type set-up included (encoding/json's field
// tables and decoders for State and every config type). The cold
// benchmarks time that first decode in a child process (this test binary,
// re-executed; TestMain), the generated decoder against json.Unmarshal.

const coldEnv = "LKC_STATE_COLD_LOAD" // decoder:file, for the child

// TestMain runs the child of the cold benchmarks when asked to, and the
// tests otherwise.
func TestMain(m *testing.M) {
	if how, path, ok := strings.Cut(os.Getenv(coldEnv), ":"); ok {
		coldLoadChild(how, path)
		return
	}
	os.Exit(m.Run())
}

// coldLoadChild decodes the file once and prints how long that took in
// ns.
func coldLoadChild(how, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	var s State
	start := time.Now()
	if how == "json" {
		err = json.Unmarshal(data, &s)
	} else {
		err = jsonc.Decode(data, &s, fieldsState)
	}
	elapsed := time.Since(start)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Printf("cold-load-ns %d\n", elapsed.Nanoseconds())
}

// BenchmarkColdLoad: the state of a container of `lkc spec`'s config
// (typical), and one with every field set, strings with escapes too
// (filled), each read by the generated decoder and by json.Unmarshal.
func BenchmarkColdLoad(b *testing.B) {
	states := map[string]*State{"typical": typicalState(b), "filled": {}}
	filler{rand.New(rand.NewPCG(7, 1))}.fill(reflect.ValueOf(states["filled"]).Elem())
	for _, name := range []string{"typical", "filled"} {
		for _, how := range []string{"generated", "json"} {
			b.Run(name+"/"+how, func(b *testing.B) { benchColdLoad(b, states[name], how) })
		}
	}
}

// typicalState is what create records for the default config.
func typicalState(b *testing.B) *State {
	bundle := b.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		b.Fatal(err)
	}
	c, err := spec.Convert(spec.Default(), "c1", bundle)
	if err != nil {
		b.Fatal(err)
	}
	return &State{ID: "c1", Bundle: bundle, Rootfs: c.Rootfs, Created: time.Now(), Owner: "root", InitPid: 12345,
		InitStart: 987654321, CgroupPaths: map[string]string{"memory": "/sys/fs/cgroup/memory/lkc/c1", "pids": "/sys/fs/cgroup/pids/lkc/c1"},
		Config: c}
}

// benchColdLoad reports the mean first decode of s's file in a fresh
// process as ns/load (ns/op is mostly the process start).
func benchColdLoad(b *testing.B, s *State, how string) {
	path := filepath.Join(b.TempDir(), stateFile)
	data, err := jsonc.Encode(s, fieldsState)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for b.Loop() {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), coldEnv+"="+how+":"+path)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		_, after, ok := strings.Cut(string(out), "cold-load-ns ")
		ns, err := strconv.ParseInt(strings.Fields(after + " ")[0], 10, 64)
		if !ok || err != nil {
			b.Fatalf("child said %q", out)
		}
		total += time.Duration(ns)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/load")
	b.ReportMetric(float64(len(data)), "bytes")
}
