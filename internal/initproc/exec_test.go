package initproc

import (
	"strings"
	"testing"
)

func TestGroupListShort(t *testing.T) {
	if got := groupList([]uint32{1, 2, 3}); got != "[1 2 3]" {
		t.Errorf("three groups: %q", got)
	}
	many := make([]uint32, 70000)
	for i := range many {
		many[i] = uint32(i)
	}
	got := groupList(many)
	if !strings.HasPrefix(got, "(70000 groups: [0 1 2 3 4 5 6 7] ...)") || len(got) > 100 {
		t.Errorf("70000 groups: %q", got)
	}
}
