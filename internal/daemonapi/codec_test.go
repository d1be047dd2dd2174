package daemonapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/testutil"
)

// TestRequestsEncodedAsEncodingJSON: hello, adopt and release, encoded
// from their field lists, are the bytes encoding/json makes of them, for
// roots that need escaping and features and generations set or not.
func TestRequestsEncodedAsEncodingJSON(t *testing.T) {
	root := "/var/lib/<lkc> \"odd\"\\ \u2028 \x01"
	for _, tc := range []struct {
		op string
		in any
	}{
		{OpHello, &Hello{Versions: Versions}},
		{OpHello, &Hello{}},
		{OpAdopt, &Adopt{Container: Container{Root: root, ID: "a"}, Features: hostconf.Features{Proc: true}}},
		{OpAdopt, &Adopt{Container: Container{Root: "/r", ID: "b"}, Features: hostconf.Features{OOMPolicy: "kill-largest"}}},
		{OpAdopt, &Adopt{Container: Container{Root: "/r", ID: "c"}}},
		{OpRelease, &Release{Container: Container{Root: root, ID: "a"}, Gen: 7}},
		{OpRelease, &Release{Container: Container{Root: "/r", ID: "b"}}},
		{OpStatus, nil},
	} {
		got, err := request(tc.op, 3, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var body json.RawMessage
		if tc.in != nil {
			if body, err = json.Marshal(tc.in); err != nil {
				t.Fatal(err)
			}
		}
		want, err := json.Marshal(&Request{V: Version, Op: tc.op, Seq: 3, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s %+v:\n got %s\nwant %s", tc.op, tc.in, got, want)
		}
	}
	b, err := encodeBody(&Adopt{Container: Container{Root: "/r", ID: "a"}})
	if err != nil || string(b) != `{"root":"/r","id":"a","features":{}}` {
		t.Errorf("adopt body %s, %v", b, err)
	}
}

// TestAnswersDecodedAsEncodingJSON: the answers to hello and adopt, and
// their envelope, decode from field lists to what encoding/json makes of
// the same bytes: unknown members skipped, absent ones left alone, null
// pointers, escapes.
func TestAnswersDecodedAsEncodingJSON(t *testing.T) {
	adopt := `{"slot":3,"gen":9,"procDir":"/run/lkcd/proc/3","files":["proc/meminfo","sys/devices/system/cpu/online"],"flat":["proc-meminfo","sys-devices-system-cpu-online"],` +
		`"seccomp":{"path":"/run/lkcd/seccomp.sock","metadata":"/r\u003c"},"features":{"proc":true},"later":[1,{"x":null}]}`
	for _, tc := range []struct {
		msg      string
		out, std any
	}{
		{`{"v":1,"seq":1,"body":{"version":1,"build":"b \"x\""}}`, &HelloReply{}, &HelloReply{}},
		{`{"v":1,"seq":2,"body":` + adopt + `}`, &AdoptReply{}, &AdoptReply{}},
		{`{"v":1,"seq":2,"body":{"slot":0,"gen":1,"seccomp":null,"features":{}}}`, &AdoptReply{Files: []string{"kept"}}, &AdoptReply{Files: []string{"kept"}}},
		{`{"v":1,"seq":2,"error":"no such thing","class":"not-exist"}`, &AdoptReply{}, &AdoptReply{}},
	} {
		var resp, stdResp Response
		if err := decodeResponse([]byte(tc.msg), len(tc.msg), &resp); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(tc.msg), &stdResp); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(resp, stdResp) {
			t.Errorf("envelope of %s:\n got %+v\nwant %+v", tc.msg, resp, stdResp)
		}
		if len(resp.Body) == 0 {
			continue
		}
		if err := decodeBody(resp.Body, tc.out); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(resp.Body, tc.std); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(tc.out, tc.std) {
			t.Errorf("body of %s:\n got %+v\nwant %+v", tc.msg, tc.out, tc.std)
		}
	}
}

// TestCodecsCoverEveryField fills every field of each message the field
// lists carry: encoded, it is what encoding/json makes of it; decoded
// from encoding/json's bytes, it is the value again. A field added to a
// type and not to its list fails here.
func TestCodecsCoverEveryField(t *testing.T) {
	n := 0
	for _, v := range []any{&Hello{}, &Adopt{}, &Release{}, &HelloReply{}, &AdoptReply{}} {
		testutil.Fill(reflect.ValueOf(v).Elem(), &n)
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if isRequestBody(v) {
			got, err := encodeBody(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%T encoded:\n got %s\nwant %s", v, got, want)
			}
			continue
		}
		out := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := decodeBody(want, out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out, v) {
			t.Errorf("%T decoded:\n got %+v\nwant %+v", v, out, v)
		}
	}
}

func isRequestBody(v any) bool {
	switch v.(type) {
	case *Hello, *Adopt, *Release:
		return true
	}
	return false
}
