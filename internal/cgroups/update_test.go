package cgroups

import (
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestMergeResources(t *testing.T) {
	cur := &config.Resources{MemoryLimit: i64(100), PidsLimit: i64(5), CPUs: "0-1",
		Devices: []config.DeviceRule{{Allow: true, Type: 'a', Access: "rwm"}}}
	got, err := mergeResources(cur, &config.Resources{MemoryLimit: i64(200), Mems: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if *got.MemoryLimit != 200 || *got.PidsLimit != 5 || got.CPUs != "0-1" || got.Mems != "0" || len(got.Devices) != 1 {
		t.Errorf("merged %+v", got)
	}
	if *cur.MemoryLimit != 100 {
		t.Error("merge changed the current resources")
	}
}

func TestWithMemoryPair(t *testing.T) {
	cur := &config.Resources{MemoryLimit: i64(100), MemorySwap: i64(300)}
	if r := withMemoryPair(cur, &config.Resources{MemorySwap: i64(400)}); *r.MemoryLimit != 100 {
		t.Errorf("swap alone: memory %v, want the recorded 100", r.MemoryLimit)
	}
	if r := withMemoryPair(cur, &config.Resources{MemoryLimit: i64(200)}); *r.MemorySwap != 300 {
		t.Errorf("memory alone: swap %v, want the recorded 300", r.MemorySwap)
	}
	if r := withMemoryPair(cur, &config.Resources{MemoryLimit: i64(-1)}); *r.MemorySwap != -1 {
		t.Errorf("unlimited memory: swap %v, want -1", r.MemorySwap)
	}
	if r := withMemoryPair(&config.Resources{}, &config.Resources{PidsLimit: i64(1)}); r.MemoryLimit != nil || r.MemorySwap != nil {
		t.Errorf("no memory change touched memory: %+v", r)
	}
}
