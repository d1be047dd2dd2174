package steplog

import (
	"strings"
	"testing"
)

func TestStepLogsNameAndDuration(t *testing.T) {
	var got []Entry
	Enable(func(e Entry) { got = append(got, e) })
	defer Enable(nil)
	Step("create: cgroup")()
	Printf("criu %s", "swrk 3")
	if len(got) != 2 || got[0].Step != "create: cgroup" || got[0].Duration <= 0 ||
		!strings.HasPrefix(got[0].Msg, "step create: cgroup took ") || got[1].Msg != "criu swrk 3" {
		t.Fatalf("entries: %+v", got)
	}
}

// TestOffCostsNothing checks that a step allocates nothing while off.
func TestOffCostsNothing(t *testing.T) {
	Enable(nil)
	if n := testing.AllocsPerRun(100, func() { Step("x")(); Printf("y %d", 1) }); n != 0 {
		t.Fatalf("a step while off allocates %v times", n)
	}
}
