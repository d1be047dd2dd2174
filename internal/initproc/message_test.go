package initproc

import (
	"reflect"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestMessageRoundTrip(t *testing.T) {
	umask := uint32(0o22)
	msgs := []Message{
		{},
		{
			Config: &config.Config{
				ID: "c1", Rootfs: "/r", Namespaces: []config.Namespace{{Type: "pid"}, {Type: "network", Path: "/proc/1/ns/net"}},
				Process: config.Process{Args: []string{"/bin/true"}, Umask: &umask},
			},
			CgroupPaths: map[string]string{"cpu": "/sys/fs/cgroup/cpu/lkc/c1", "": "/sys/fs/cgroup/lkc/c1"},
			PreserveFDs: 2, Exec: true, NoNewKeyring: true,
			CreateState: []byte(`{"status":"creating"}`), StartState: []byte(`{"status":"created"}`),
			SeccompState: []byte(`{}`),
		},
	}
	for _, in := range msgs {
		b, err := in.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var out Message
		if err := out.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
		}
	}
}

func TestMessageRefusesOtherForms(t *testing.T) {
	good, _ := (&Message{Config: &config.Config{ID: "c1"}}).MarshalBinary()
	for name, b := range map[string][]byte{
		"json":      []byte(`{"config":{"id":"c1"}}`),
		"version 2": append([]byte{2}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(good, 0),
	} {
		var m Message
		if err := m.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
