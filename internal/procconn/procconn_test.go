package procconn

import (
	"encoding/binary"
	"os/exec"
	"testing"
	"time"

	"github.com/lkc-containers/lkc/internal/testutil"
)

// message builds one netlink message as the kernel sends a proc_event.
func message(what uint32, data ...uint32) []byte {
	var p []byte
	p = binary.NativeEndian.AppendUint32(p, what)
	p = binary.NativeEndian.AppendUint32(p, 1)   // cpu
	p = binary.NativeEndian.AppendUint64(p, 123) // timestamp
	for _, d := range data {
		p = binary.NativeEndian.AppendUint32(p, d)
	}
	return request(p)
}

func TestParse(t *testing.T) {
	b := append(message(Exec, 10, 10), message(Fork, 7, 7, 11, 11)...)
	b = append(b, message(UID, 12, 12, 1000, 1000)...)
	b = append(b, message(0x200, 13, 13)...) // comm: not asked for
	got := Parse(b, Exec|Fork|UID)
	want := []Event{{What: Exec, Time: 123, Pid: 10, Tgid: 10}, {What: Fork, Time: 123, Parent: 7, Pid: 11, Tgid: 11}, {What: UID, Time: 123, Pid: 12, Tgid: 12}}
	if len(got) != len(want) {
		t.Fatalf("Parse = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := Parse(b[:10], Exec); len(got) != 0 {
		t.Errorf("a truncated datagram gave %+v", got)
	}
}

// TestExecEvent subscribes for real and sees a child's exec.
func TestExecEvent(t *testing.T) {
	testutil.RequiresRoot(t)
	c, err := Open(Exec)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := c.Read(Exec | Fork)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if c.Filtered && e.What != Exec {
				t.Errorf("the kernel's filter let through %+v", e)
			}
			if e.What == Exec && e.Tgid == pid {
				return
			}
		}
	}
	t.Fatalf("no exec event for pid %d", pid)
}
