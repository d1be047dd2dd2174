package cgroups

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

func rule(allow bool, typ rune, major, minor int64, access string) config.DeviceRule {
	return config.DeviceRule{Allow: allow, Type: typ, Major: major, Minor: minor, Access: access}
}

func TestReduceDeviceRules(t *testing.T) {
	denyAll := rule(false, 'a', -1, -1, "rwm")
	tests := []struct {
		name  string
		rules []config.DeviceRule
		allow bool
		want  []devException
	}{
		{"empty denies all", nil, false, nil},
		{"deny all then grants", []config.DeviceRule{
			denyAll, rule(true, 'c', 1, 3, "rwm"), rule(true, 'b', -1, -1, "m"),
		}, false, []devException{
			{devKey{'b', -1, -1}, unix.BPF_DEVCG_ACC_MKNOD},
			{devKey{'c', 1, 3}, accessAll},
		}},
		{"grants merge", []config.DeviceRule{
			rule(true, 'c', 1, 3, "r"), rule(true, 'c', 1, 3, "w"),
		}, false, []devException{{devKey{'c', 1, 3}, unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_WRITE}}},
		{"deny takes back", []config.DeviceRule{
			rule(true, 'c', 1, 3, "rwm"), rule(false, 'c', 1, 3, "w"),
		}, false, []devException{{devKey{'c', 1, 3}, unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_MKNOD}}},
		{"a resets", []config.DeviceRule{
			rule(true, 'c', 1, 3, "rwm"), rule(true, 'a', -1, -1, "rwm"), rule(false, 'b', 8, 0, "rwm"),
		}, true, []devException{{devKey{'b', 8, 0}, accessAll}}},
		{"u is c", []config.DeviceRule{rule(true, 'u', 4, 1, "")}, false,
			[]devException{{devKey{'c', 4, 1}, accessAll}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := reduceDeviceRules(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			if p.defaultAllow != tt.allow || len(p.exceptions) != len(tt.want) {
				t.Fatalf("got %+v, want default allow %v and %+v", p, tt.allow, tt.want)
			}
			for i := range tt.want {
				if p.exceptions[i] != tt.want[i] {
					t.Errorf("exception %d: got %+v, want %+v", i, p.exceptions[i], tt.want[i])
				}
			}
		})
	}
}

func TestReduceDeviceRulesRefusesHole(t *testing.T) {
	_, err := reduceDeviceRules([]config.DeviceRule{
		rule(true, 'c', 1, -1, "rwm"), rule(false, 'c', 1, 3, "r"),
	})
	if err == nil || !strings.Contains(err.Error(), "punch a hole") {
		t.Fatalf("got %v, want a refusal to punch a hole", err)
	}
}

func TestDeviceProgramShape(t *testing.T) {
	p := devPolicy{exceptions: []devException{
		{devKey{'b', -1, -1}, unix.BPF_DEVCG_ACC_MKNOD}, // type + access check
		{devKey{'c', 1, 3}, accessAll},                  // type, major, minor
		{devKey{'c', 136, -1}, accessAll},               // type, major
	}}
	prog := deviceProgram(p)
	blocks := []int{1 + 3 + 2, 1 + 2 + 2, 1 + 1 + 2}
	want := 6 + blocks[0] + blocks[1] + blocks[2] + 2
	if len(prog) != want {
		t.Fatalf("got %d instructions, want %d", len(prog), want)
	}
	last := prog[len(prog)-2:]
	if last[0] != insn(opMov32K, 0, 0, 0, 0) || last[1].code != opExit {
		t.Errorf("program ends %+v, want r0 = 0 (deny) then exit", last)
	}
	// Every jump lands at the start of the next block, inside the program.
	start := 6
	for _, n := range blocks {
		for i := start; i < start+n; i++ {
			in := prog[i]
			if in.code&0x07 == unix.BPF_JMP && in.code != opExit {
				if to := i + 1 + int(in.off); to != start+n {
					t.Errorf("instruction %d jumps to %d, want %d", i, to, start+n)
				}
			}
		}
		if prog[start+n-1].code != opExit || prog[start+n-2] != insn(opMov32K, 0, 0, 0, 1) {
			t.Errorf("block at %d does not end by allowing", start)
		}
		start += n
	}
	// The deny-by-default mknod check is a subset test: r1 &= m; if r1 != r3 skip.
	if prog[9] != insn(opJneX, 1, 3, 2, 0) {
		t.Errorf("access check %+v", prog[9])
	}
	if got := len(encode(prog)); got != 8*len(prog) {
		t.Errorf("encoded %d bytes", got)
	}
}

func TestDeviceProgramDenyExceptionIntersects(t *testing.T) {
	prog := deviceProgram(devPolicy{defaultAllow: true, exceptions: []devException{
		{devKey{'c', 1, 3}, unix.BPF_DEVCG_ACC_WRITE},
	}})
	if prog[8] != insn(opAnd32K, 1, 0, 0, unix.BPF_DEVCG_ACC_WRITE) || prog[9].code != opJeqK {
		t.Errorf("deny exception should match any overlap: %+v", prog[6:12])
	}
	if prog[len(prog)-2].imm != 1 || prog[len(prog)-1].code != opExit {
		t.Errorf("program should end allowing: %+v", prog[len(prog)-2:])
	}
	if b := encode(prog[:1]); b[0] != 0x61 || b[1] != 0x12 {
		t.Errorf("ldxw r2, [r1+0] encodes as % x", b)
	}
}
