package netpolicy

import (
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestV6OnlyBitMatchesCilium: lkc's reading of the running kernel's BTF
// finds skc_ipv6only where cilium/ebpf's BTF parser (tests only) does.
func TestV6OnlyBitMatchesCilium(t *testing.T) {
	if _, err := os.Stat(vmlinuxBTF); err != nil {
		t.Skip(err)
	}
	got, err := v6onlyBit()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	var sc *btf.Struct
	if err := spec.TypeByName("sock_common", &sc); err != nil {
		t.Fatal(err)
	}
	for _, m := range sc.Members {
		if m.Name != "skc_ipv6only" {
			continue
		}
		off := uint32(m.Offset)
		want := sockBit{off: int16(off / 8), mask: 1 << (off % 8)}
		if !littleEndian {
			want.mask = 0x80 >> (off % 8)
		}
		if m.BitfieldSize != 1 || got != want {
			t.Errorf("got %+v, want %+v (cilium: offset %d, %d bits)", got, want, m.Offset, m.BitfieldSize)
		}
		return
	}
	t.Fatal("cilium finds no skc_ipv6only")
}

// TestFindBitfieldErrors: a blob that is not BTF, or lacks the struct,
// is an error, not a made-up place.
func TestFindBitfieldErrors(t *testing.T) {
	if _, err := findBitfield([]byte("not btf at all, not at all"), "sock_common", "skc_ipv6only"); err == nil {
		t.Error("garbage: no error")
	}
	b, err := os.ReadFile(vmlinuxBTF)
	if err != nil {
		t.Skip(err)
	}
	if _, err := findBitfield(b, "no_such_struct_here", "x"); err == nil {
		t.Error("a missing struct: no error")
	}
	if _, err := findBitfield(b, "sock_common", "skc_family"); err == nil {
		t.Error("a member that is not a one-bit field: no error")
	}
}
