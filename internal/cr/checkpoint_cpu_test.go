package cr

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLastCPU(t *testing.T) {
	line := "4242 (a) b) c) S 1 4242 4242 0 -1 4194560 155 0 0 0 0 0 0 0 20 0 1 0 1234 5000000 200 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	if got := lastCPU([]byte(line)); got != 1 {
		t.Errorf("lastCPU of a command with ') ' in it = %d, want 1", got)
	}
	if got := lastCPU([]byte("4242 (short) S 1 2 3\n")); got != -1 {
		t.Errorf("lastCPU of a short line = %d, want -1", got)
	}
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	var own unix.CPUSet
	if err := unix.SchedGetaffinity(0, &own); err != nil {
		t.Fatal(err)
	}
	if got := lastCPU(stat); got < 0 || !own.IsSet(got) {
		t.Errorf("lastCPU of /proc/self/stat = %d, not one of ours", got)
	}
}
