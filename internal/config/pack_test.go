package config

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/lkc-containers/lkc/internal/pack"
)

// fill sets every field reachable from v to a value that differs from
// field to field and from the zero value, with integers at the far end of
// their range: a field Pack forgets, or writes in another order than
// Unpack reads, fails the round trip. Slices and maps get two elements.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-1<<(v.Type().Bits()-1) + int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(1<<v.Type().Bits() - 1 - uint64(*n))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	default:
		panic("fill: no case for " + v.Type().String())
	}
}

func fullConfig() *Config {
	var c Config
	n := 0
	fill(reflect.ValueOf(&c).Elem(), &n)
	return &c
}

func roundTrip(t *testing.T, in *Config) {
	t.Helper()
	var w pack.Writer
	in.Pack(&w)
	var out Config
	r := pack.NewReader(w.Bytes())
	out.Unpack(r)
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
	fullConfig().Pack(&w)
	b := w.Bytes()
	for n := range len(b) {
		var c Config
		r := pack.NewReader(b[:n])
		c.Unpack(r)
		if !errors.Is(r.Err(), pack.ErrShort) {
			t.Fatalf("prefix of %d/%d bytes: Err() = %v, want pack.ErrShort", n, len(b), r.Err())
		}
	}
}

func FuzzUnpack(f *testing.F) {
	var w pack.Writer
	fullConfig().Pack(&w)
	f.Add(w.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Config
		r := pack.NewReader(b)
		c.Unpack(r)
		if r.Err() != nil {
			return
		}
		var again pack.Writer
		c.Pack(&again)
		var c2 Config
		c2.Unpack(pack.NewReader(again.Bytes()))
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("decoded %+v, re-encoded and decoded %+v", c, c2)
		}
	})
}
