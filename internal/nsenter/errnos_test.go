package nsenter

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestErrnosHeaderIsGos checks errnos.h against Go's own table: the
// constructor must word every errno as Go's init does. It fails when the
// header is stale (run `go generate ./internal/nsenter`).
func TestErrnosHeaderIsGos(t *testing.T) {
	data, err := os.ReadFile("errnos.h")
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`(?m)^\t\[(\d+)\] = ("(?:[^"\\]|\\.)*"),$`)
	got := map[int]string{}
	for _, m := range entry.FindAllStringSubmatch(string(data), -1) {
		e, _ := strconv.Atoi(m[1])
		text, err := strconv.Unquote(m[2])
		if err != nil {
			t.Fatalf("errnos.h entry %s: %v", m[0], err)
		}
		got[e] = text
	}
	for e := 1; e < 256; e++ {
		want := unix.Errno(e).Error()
		if strings.HasPrefix(want, "errno ") {
			want = "" // Go has no text: neither has the header, both say "errno N"
		}
		if got[e] != want {
			t.Errorf("errnos.h has %q for errno %d, Go says %q", got[e], e, want)
		}
	}
	if len(got) < 100 {
		t.Errorf("errnos.h has %d entries: stale or unparsed", len(got))
	}
}
