package container

import (
	"os"
	"reflect"
	"testing"
)

func TestMadeJoin(t *testing.T) {
	a, b, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	idmapped := Made{At: []int{1}, Wait: func() map[int]*os.File { return map[int]*os.File{1: a} }}
	served := Made{At: []int{5, 6}, Wait: func() map[int]*os.File { return map[int]*os.File{5: b} }}
	j := idmapped.join(served)
	if !reflect.DeepEqual(j.At, []int{1, 5, 6}) {
		t.Errorf("At %v, want [1 5 6]", j.At)
	}
	if got := j.Wait(); len(got) != 2 || got[1] != a || got[5] != b {
		t.Errorf("Wait() = %v, want 1: a, 5: b", got)
	}
	if j := (Made{}).join(served); !reflect.DeepEqual(j.At, served.At) {
		t.Errorf("nothing joined with served: At %v", j.At)
	}
	if j := idmapped.join(Made{}); !reflect.DeepEqual(j.At, idmapped.At) {
		t.Errorf("idmapped joined with nothing: At %v", j.At)
	}
}
