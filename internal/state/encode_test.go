package state

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/jsonc"
)

// someStrings are what fill puts in string fields, map keys included: plain
// ones and every kind encoding/json escapes.
var someStrings = []string{
	"", "x", "/run/lkc/c1", "a<b>&c", `quo"te back\slash`, "tab\tnl\ncr\r\x00\x1f\x7f",
	"\b\f", "é ü 日本", "\u2028\u2029", "bad \xff utf-8 \xc3", "\U0001F600",
}

// filler sets the fields reachable from a value at random: each is left
// zero, made empty (slices and maps: non-nil and empty), or given a value,
// integers often at the ends of their range, so that over many seeds every
// omitempty case and every field is written.
type filler struct{ r *rand.Rand }

var timeType = reflect.TypeFor[time.Time]()

func (f filler) fill(v reflect.Value) {
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Unix(1700000000+f.r.Int64N(1e9), f.r.Int64N(1e9)).UTC()))
		return
	}
	if f.r.IntN(4) == 0 {
		return // zero
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(someStrings[f.r.IntN(len(someStrings))])
	case reflect.Bool:
		v.SetBool(f.r.IntN(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		v.SetInt([]int64{-1 << (bits - 1), 1<<(bits-1) - 1, -1, 1, f.r.Int64N(1000)}[f.r.IntN(5)])
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint([]uint64{1<<v.Type().Bits() - 1, 1, f.r.Uint64N(1000)}[f.r.IntN(3)])
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		f.fill(v.Elem())
	case reflect.Slice:
		n := f.r.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range f.r.IntN(4) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			f.fill(k)
			f.fill(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			f.fill(v.Field(i))
		}
	default:
		panic("fill: no case for " + v.Type().String())
	}
}

func checkEncode(t *testing.T, s *State) {
	t.Helper()
	want, wantErr := json.Marshal(s)
	got, err := jsonc.Encode(s, fieldsState)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("encode error %v, json.Marshal error %v", err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
	if err == nil {
		checkDecode(t, got)
	}
}

// checkDecode: the state read back is what json.Unmarshal reads, and
// both refuse what either refuses.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	var want, got State
	wantErr := json.Unmarshal(data, &want)
	err := jsonc.Decode(data, &got, fieldsState)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decode error %v, json.Unmarshal error %v\ninput: %q", err, wantErr, data)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decode differs from json.Unmarshal:\n got %+v\nwant %+v\ninput: %q", got, want, data)
	}
}

// TestEncodeIsJSONMarshal: the state file is what json.Marshal wrote, byte
// for byte, whatever is set, and it reads back as json.Unmarshal reads it.
func TestEncodeIsJSONMarshal(t *testing.T) {
	checkEncode(t, &State{})
	checkEncode(t, &State{Config: &config.Config{}})
	for seed := range uint64(2000) {
		var s State
		filler{rand.New(rand.NewPCG(seed, 1))}.fill(reflect.ValueOf(&s).Elem())
		checkEncode(t, &s)
	}
}

func TestEncodeRefusesWhatJSONRefuses(t *testing.T) {
	checkEncode(t, &State{Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
}

func FuzzEncodeStrings(f *testing.F) {
	for _, s := range someStrings {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		checkEncode(t, &State{ID: a, CgroupPaths: map[string]string{a: b, b: a},
			Config: &config.Config{Process: config.Process{Args: []string{a, b}}, Annotations: map[string]string{b: a}}})
	})
}

// decodeCases are state files on which the decoder must agree with
// json.Unmarshal: the corners of encoding/json's rules, and refusals.
var decodeCases = []string{
	`{}`, `null`, `[]`, `{"id":1}`, `{"initPid":"1"}`, `{"initPid":1.5}`, `{"initStart":-1}`,
	`{"created":"2024-01-02T03:04:05.123456789Z"}`, `{"created":null}`, `{"created":"yesterday"}`, `{"created":5}`,
	`{"ID":"a","Id":"b","config":{"process":{"ARGS":["x"]}}}`, `{"config":null}`, `{"config":{}}`,
	`{"cgroupPaths":{"":"/a","cpu":"\u00e9"},"cgroupPaths":{"b":"c"}}`, `{"cgroupParents":[]}`,
	`{"config":{"cgroup":{"resources":{"rdma":{"mlx":{"hcaHandles":3}},"memoryUseHierarchy":null}}}}`,
	`{"config":{"devices":[{"type":99,"major":-1}],"mounts":[{"flags":18446744073709551615}]}}`,
	`{"config":{"mounts":[{"flags":18446744073709551616}]}}`, `{"owner":"a"} x`, `{"owner":"a"`, ``,
	`{"config":{"seccomp":{"syscalls":[{"args":[{"index":"0"}]}]}}}`, `{"unknown":{"a":[1,{"b":null}]}}`,
}

func TestDecodeAgreesWithJSONUnmarshal(t *testing.T) {
	for _, in := range decodeCases {
		checkDecode(t, []byte(in))
	}
}

func FuzzDecode(f *testing.F) {
	for _, in := range decodeCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
	})
}
