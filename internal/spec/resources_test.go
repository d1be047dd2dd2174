package spec

import (
	"errors"
	"strings"
	"testing"
)

func TestParseResources(t *testing.T) {
	r, err := ParseResources(strings.NewReader(`{"memory":{"limit":134217728},"pids":{"limit":10},"cpu":{"cpus":"0"},"devices":[{"allow":false,"access":"rwm"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if *r.MemoryLimit != 128<<20 || *r.PidsLimit != 10 || r.CPUs != "0" {
		t.Errorf("resources %+v", r)
	}
	if r.MemorySwap != nil || r.CPUShares != nil || r.Devices != nil {
		t.Errorf("fields not in the JSON are set: %+v", r)
	}
	for _, bad := range []string{`{"memory":`, `{"memory":{"limit":10,"swap":5}}`, `{"cpu":{"quota":10}}`} {
		if _, err := ParseResources(strings.NewReader(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseResources(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}
