package daemonapi

import (
	"encoding/json"
	"testing"

	"github.com/lkc-containers/lkc/internal/hostconf"
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
