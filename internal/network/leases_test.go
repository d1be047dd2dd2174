package network

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// TestRemoveLeases: the leases of one container's interface go from
// host-local's store (its dataDir, a directory per network); another
// interface's, another container's and host-local's own files stay.
func TestRemoveLeases(t *testing.T) {
	data := t.TempDir()
	store := filepath.Join(data, "net")
	files := map[string]string{
		"10.0.0.2":           "abc\r\neth0",
		"fd00::2":            "abc\r\neth0",
		"10.0.0.3":           "abc\r\neth1",
		"10.0.0.4":           "other\r\neth0",
		"10.0.0.5":           "abc", // before 0.8: no interface
		"lock":               "",
		"last_reserved_ip.0": "10.0.0.5",
	}
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(store, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion":"1.0.0","name":"net","plugins":[
		{"type":"bridge","ipam":{"type":"host-local","dataDir":"` + data + `"}},{"type":"portmap"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := removeLeases(list, "abc", "eth0"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(store)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"10.0.0.3", "10.0.0.4", "last_reserved_ip.0", "lock"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}

// TestIntendedAttachments: the intents written before ADD are listed as
// attachments, but those libcni's cache names too, and removeIntent
// removes one.
func TestIntendedAttachments(t *testing.T) {
	cache := t.TempDir()
	rec := &record{ContainerID: "abc", CacheDir: cache}
	for _, ifName := range []string{"eth0", "eth1"} {
		a := attachment{Name: "net", IfName: ifName, Config: []byte(`{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"bridge"}]}`)}
		if err := writeIntent("/run/lkc/c", rec, a); err != nil {
			t.Fatal(err)
		}
	}
	cached := &libcni.NetworkAttachment{Network: "net", ContainerID: "abc", IfName: "eth0"}
	atts, err := intendedAttachments(cache, map[string]bool{attachmentKey(cached): true})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 || atts[0].IfName != "eth1" || atts[0].NetNS != "/run/lkc/c/netns" {
		t.Fatalf("intended attachments %+v, want eth1 of /run/lkc/c alone", atts)
	}
	in, err := readIntent(cache, atts[0])
	if err != nil || in == nil || in.ListName != "net" {
		t.Fatalf("readIntent = %+v, %v", in, err)
	}
	if err := removeIntent(cache, "net", "abc", "eth1"); err != nil {
		t.Fatal(err)
	}
	if in, err := readIntent(cache, atts[0]); in != nil || err != nil {
		t.Errorf("intent left after removeIntent: %+v, %v", in, err)
	}
}
