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
	pack.Write(&w, PackFieldsConfig(in))
	var out Config
	r := pack.NewReader(w.Bytes())
	pack.Read(r, PackFieldsConfig(&out))
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
	pack.Write(&w, PackFieldsConfig(fullConfig()))
	b := w.Bytes()
	for n := range len(b) {
		var c Config
		r := pack.NewReader(b[:n])
		pack.Read(r, PackFieldsConfig(&c))
		if !errors.Is(r.Err(), pack.ErrShort) {
			t.Fatalf("prefix of %d/%d bytes: Err() = %v, want pack.ErrShort", n, len(b), r.Err())
		}
	}
}

func FuzzUnpack(f *testing.F) {
	var w pack.Writer
	pack.Write(&w, PackFieldsConfig(fullConfig()))
	f.Add(w.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Config
		r := pack.NewReader(b)
		pack.Read(r, PackFieldsConfig(&c))
		if r.Err() != nil {
			return
		}
		var again pack.Writer
		pack.Write(&again, PackFieldsConfig(&c))
		var c2 Config
		pack.Read(pack.NewReader(again.Bytes()), PackFieldsConfig(&c2))
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("decoded %+v, re-encoded and decoded %+v", c, c2)
		}
	})
}
