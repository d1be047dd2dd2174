package spec

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// linuxSpec is specs.Spec as Parse decodes it: the sections of other
// platforms are taken as raw JSON and not read.
type linuxSpec struct {
	specs.Spec
	Solaris json.RawMessage `json:"solaris,omitempty"`
	Windows json.RawMessage `json:"windows,omitempty"`
	VM      json.RawMessage `json:"vm,omitempty"`
	ZOS     json.RawMessage `json:"zos,omitempty"`
}

// oracle decodes data the way Parse would with encoding/json: with
// its reflection, minus the other platforms.
func oracle(data []byte) (*specs.Spec, error) {
	var s linuxSpec
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return nil, err
	}
	return &s.Spec, nil
}

// compare checks that Parse and the oracle agree on data: both fail, or
// both give the same spec.
func compare(t *testing.T, name string, data []byte) {
	t.Helper()
	want, wantErr := oracle(data)
	got, err := Parse(bytes.NewReader(data))
	switch {
	case (err != nil) != (wantErr != nil):
		t.Errorf("%s: Parse error %v, encoding/json error %v\ninput: %s", name, err, wantErr, data)
	case err == nil && !reflect.DeepEqual(got, want):
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s: Parse and encoding/json differ\n got %s\nwant %s\ninput: %s", name, g, w, data)
	}
}

// fullSpec is a spec with every field set, the other platforms' too.
func fullSpec() *specs.Spec {
	var s specs.Spec
	n := 0
	testutil.Fill(reflect.ValueOf(&s).Elem(), &n)
	return &s
}

// TestParseEveryField fails when a field of specs.Spec (after an update of
// runtime-spec, say) is not decoded, or decoded into another.
func TestParseEveryField(t *testing.T) {
	full := fullSpec()
	data, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "full spec", data)
	got, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	full.Solaris, full.Windows, full.VM, full.ZOS = nil, nil, nil, nil
	if !reflect.DeepEqual(got, full) {
		t.Errorf("a filled spec does not survive Marshal and Parse")
	}
	def, _ := json.MarshalIndent(Default(), "", "\t")
	compare(t, "lkc spec", def)
}

// cases are inputs on which Parse must agree with encoding/json, for the
// corners of its rules (internal/jsonc).
var cases = map[string]string{
	"empty":            `{}`,
	"null":             `null`,
	"trailing data":    `{"ociVersion":"1.0.2"} {"x"`,
	"case folding":     `{"OCIVERSION":"1","Process":{"ARGS":["a"],"Cwd":"/"},"LINUX":{"namespaces":[{"TYPE":"pid"}]}}`,
	"exact beats fold": `{"process":{"Args":["a"],"args":["b"],"ARGS":["c"]}}`,
	"kelvin sign":      "{\"linux\":{\"resources\":{\"memory\":{\"\u212aernel\":5}}},\"\u212a\":1}",
	"unknown keys":     `{"x":{"y":[1,{"z":null}]},"process":{"foo":"bar","args":["a"]},"linux":{"netDevices":{"eth0":{}}}}`,
	"platforms":        `{"windows":5,"solaris":"x","vm":[1],"zos":{"namespaces":7},"ociVersion":"1"}`,
	"nulls": `{"ociVersion":null,"process":null,"root":null,"mounts":null,"hooks":null,"annotations":null,"linux":null,
		"hostname":null}`,
	"nulls inside": `{"process":{"terminal":null,"user":null,"args":[null,"a",null],"oomScoreAdj":null,"consoleSize":{"height":null}},
		"annotations":{"a":null},"linux":{"resources":{"memory":{"limit":null,"useHierarchy":null}}}}`,
	"empty arrays and maps": `{"mounts":[],"annotations":{},"linux":{"sysctl":{},"namespaces":[],"resources":{"rdma":{}}},"process":{"args":[]}}`,
	"repeated keys merge":   `{"process":{"cwd":"/a"},"process":{"args":["x"]},"root":{"path":"p"},"root":{"readonly":true}}`,
	"repeated arrays reuse elements": `{"mounts":[{"destination":"/a","type":"t"},{"destination":"/b"},{"source":"s"}],
		"mounts":[{"destination":"/c"}],"mounts":[{"type":"u"},{},{}]}`,
	"repeated maps add": `{"annotations":{"a":"1"},"annotations":{"b":"2","a":"3"},"linux":{"timeOffsets":{"boottime":{"secs":1}},
		"timeOffsets":{"boottime":{"nanosecs":2}}}}`,
	"escapes": `{"hostname":"a\"b\\c\/d\u00e9\ud83d\ude00\n","process":{"env":["\u0041=\t"],"args":["\ud800","é"]},
		"annotations":{"k\u00e9y":"v"},"linux":{"sysctl":{"net.ipv4.\u0069p":"1"}}}`,
	"bad utf-8": "{\"hostname\":\"a\xffb\xc3\",\"process\":{\"args\":[\"\xed\xa0\x80\"]}}",
	"numbers": `{"process":{"user":{"uid":4294967295,"gid":0,"umask":18,"additionalGids":[0,1]},"oomScoreAdj":-1000,
		"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":0}],"consoleSize":{"height":-0}},
		"linux":{"resources":{"cpu":{"quota":-9223372036854775808,"shares":1024},"blockIO":{"weight":65535},
		"devices":[{"allow":false,"major":-1}]},"devices":[{"path":"/dev/x","type":"c","major":1,"minor":3,"fileMode":438}]}}`,
	"whitespace": " \n\t{ \"process\" :\r\n { \"args\" : [ \"a\" , \"b\" ] , \"cwd\" : \"/\" } , \"linux\" : { } } ",
	// Type errors: each input is refused.
	"string for bool":         `{"process":{"terminal":"true"}}`,
	"number for string":       `{"ociVersion":1}`,
	"object for string":       `{"hostname":{}}`,
	"array for struct":        `{"process":[]}`,
	"string for array":        `{"process":{"args":"a"}}`,
	"object for array":        `{"mounts":{}}`,
	"array for map":           `{"annotations":[]}`,
	"number for map value":    `{"annotations":{"a":1}}`,
	"bool for number":         `{"process":{"user":{"uid":true}}}`,
	"float for integer":       `{"process":{"user":{"uid":1.5}}}`,
	"exponent for integer":    `{"process":{"user":{"uid":1e3}}}`,
	"negative for unsigned":   `{"process":{"user":{"uid":-1}}}`,
	"minus zero for unsigned": `{"process":{"user":{"gid":-0}}}`,
	"too big for uint32":      `{"process":{"user":{"uid":4294967296}}}`,
	"too big for uint64":      `{"process":{"rlimits":[{"hard":18446744073709551616}]}}`,
	"too big for int64":       `{"linux":{"resources":{"cpu":{"quota":9223372036854775808}}}}`,
	"too big for uint16":      `{"linux":{"resources":{"blockIO":{"weight":65536}}}}`,
	"string for pointer":      `{"process":{"oomScoreAdj":"1"}}`,
	"error then valid":        `{"process":{"terminal":1,"args":["a"]},"hostname":"h"}`,
	"deep type error":         `{"linux":{"seccomp":{"syscalls":[{"names":["read"],"args":[{"index":"0"}]}]}}}`,
	"bad in unknown is fine":  `{"process":{"unknown":{"a":[1,2,{"b":"c"}]}}}`,
	// Syntax errors.
	"truncated":         `{"ociVersion": "1.0.2", "process": {`,
	"bad syntax":        `{"ociVersion": "1.0.2",}`,
	"empty input":       ``,
	"bad escape":        `{"hostname":"\x"}`,
	"control character": "{\"hostname\":\"a\x01\"}",
}

func TestParseAgreesWithEncodingJSON(t *testing.T) {
	for name, in := range cases {
		compare(t, name, []byte(in))
	}
}

func TestParseTypeErrorNamesTheField(t *testing.T) {
	_, err := Parse(strings.NewReader(`{"linux":{"resources":{"memory":{"limit":"1G"}}}}`))
	if err == nil || !strings.Contains(err.Error(), "linux.resources.memory.limit") {
		t.Errorf("error %v does not name linux.resources.memory.limit", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, in := range cases {
		f.Add([]byte(in))
	}
	full, _ := json.Marshal(fullSpec())
	f.Add(full)
	def, _ := json.Marshal(Default())
	f.Add(def)
	f.Fuzz(func(t *testing.T, data []byte) {
		compare(t, "fuzz", data)
	})
}

// compareAs checks that parse and encoding/json agree on data decoded as
// a T: both fail, or both give the same value.
func compareAs[T any](t *testing.T, name string, data []byte, parse func(io.Reader) (*T, error)) {
	t.Helper()
	want := new(T)
	wantErr := json.NewDecoder(bytes.NewReader(data)).Decode(want)
	got, err := parse(bytes.NewReader(data))
	switch {
	case (err != nil) != (wantErr != nil):
		t.Errorf("%s: error %v, encoding/json error %v\ninput: %s", name, err, wantErr, data)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Errorf("%s: decoders differ\n got %+v\nwant %+v\ninput: %s", name, got, want, data)
	}
}

// TestParseProcessAndResources: process.json (`exec --process`) and
// `update --resources` are read by the same decoder as config.json, and
// agree with encoding/json.
func TestParseProcessAndResources(t *testing.T) {
	full := fullSpec()
	proc, _ := json.Marshal(full.Process)
	res, _ := json.Marshal(full.Linux.Resources)
	inputs := map[string]string{"full process": string(proc), "full resources": string(res),
		"process":     `{"args":["sh"],"cwd":"/","user":{"uid":1},"capabilities":{"bounding":["CAP_KILL"]},"Terminal":true}`,
		"resources":   `{"memory":{"limit":1024,"swap":-1},"pids":{"limit":10},"CPU":{"cpus":"0"},"devices":[{"allow":false}]}`,
		"wrong types": `{"args":"sh","memory":{"limit":"1G"}}`}
	for name, in := range cases {
		inputs[name] = in
	}
	for name, in := range inputs {
		compareAs(t, name, []byte(in), ParseProcess)
		compareAs(t, name, []byte(in), ParseResources)
	}
}
