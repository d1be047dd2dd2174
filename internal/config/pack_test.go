package config

import (
	"errors"
	"reflect"
	"testing"

	"github.com/lkc-containers/lkc/internal/pack"
	"github.com/lkc-containers/lkc/internal/testutil"
)

func fullConfig() *Config {
	var c Config
	n := 0
	testutil.Fill(reflect.ValueOf(&c).Elem(), &n)
	return &c
}

func roundTrip(t *testing.T, in *Config) {
	t.Helper()
	var w pack.Writer
	PackConfig(&w, in)
	var out Config
	r := pack.NewReader(w.Bytes())
	UnpackConfig(r, &out)
	if err := r.Err(); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if !reflect.DeepEqual(in, &out) {
		t.Errorf("round trip changed the config:\n got %+v\nwant %+v", out, *in)
	}
}

func TestPackRoundTrip(t *testing.T) {
	roundTrip(t, fullConfig())
	roundTrip(t, &Config{})
	// Set but zero optional values stay set.
	zero, no := uint32(0), false
	roundTrip(t, &Config{Personality: &zero, Seccomp: &Seccomp{}, Process: Process{Capabilities: &Capabilities{}},
		Cgroup: Cgroup{Resources: Resources{MemoryUseHierarchy: &no, Rdma: map[string]RdmaLimit{"mlx": {}}}}})
}

func TestUnpackTruncated(t *testing.T) {
	var w pack.Writer
	PackConfig(&w, fullConfig())
	b := w.Bytes()
	for n := range len(b) {
		var c Config
		r := pack.NewReader(b[:n])
		UnpackConfig(r, &c)
		if !errors.Is(r.Err(), pack.ErrShort) {
			t.Fatalf("prefix of %d/%d bytes: Err() = %v, want pack.ErrShort", n, len(b), r.Err())
		}
	}
}

func FuzzUnpack(f *testing.F) {
	var w pack.Writer
	PackConfig(&w, fullConfig())
	f.Add(w.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Config
		r := pack.NewReader(b)
		UnpackConfig(r, &c)
		if r.Err() != nil {
			return
		}
		var again pack.Writer
		PackConfig(&again, &c)
		var c2 Config
		UnpackConfig(pack.NewReader(again.Bytes()), &c2)
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("decoded %+v, re-encoded and decoded %+v", c, c2)
		}
	})
}
