package config

import (
	"reflect"
	"testing"
)

func TestParseIDList(t *testing.T) {
	for in, want := range map[string][]int{"": nil, "3": {3}, "0-3,7": {0, 1, 2, 3, 7}, "5,1,2-3": {1, 2, 3, 5}} {
		ids, err := ParseIDList(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		wantSet := map[int]bool{}
		for _, id := range want {
			wantSet[id] = true
		}
		if !reflect.DeepEqual(ids, wantSet) {
			t.Errorf("ParseIDList(%q) = %v, want %v", in, ids, wantSet)
		}
	}
	for _, bad := range []string{"-", "1-", "-3", "a", "2-1", "0-70000", "0 - 1"} {
		if _, err := ParseIDList(bad); err == nil {
			t.Errorf("ParseIDList(%q): no error", bad)
		}
	}
}
