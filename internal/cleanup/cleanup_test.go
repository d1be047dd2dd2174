package cleanup

import (
	"errors"
	"slices"
	"testing"
)

func TestRunUndoesEverythingLastFirst(t *testing.T) {
	var got []string
	var s Stack
	s.Add(func() { got = append(got, "dir") })
	s.Always(func() { got = append(got, "staging") })
	s.Add(func() { got = append(got, "cgroup") })
	s.Run()
	if want := []string{"cgroup", "staging", "dir"}; !slices.Equal(got, want) {
		t.Fatalf("Run undid %v, want %v", got, want)
	}
	s.Run()
	if len(got) != 3 {
		t.Fatalf("a second Run undid again: %v", got)
	}
}

func TestDoneKeepsTheWorkAndHandsBackStaging(t *testing.T) {
	var got []string
	var s Stack
	s.Add(func() { got = append(got, "dir") })
	s.Always(func() { got = append(got, "root mount") })
	s.Always(func() { got = append(got, "binds") })
	release := s.Done()
	if len(got) != 0 {
		t.Fatalf("Done undid %v before it was asked", got)
	}
	release()
	if want := []string{"binds", "root mount"}; !slices.Equal(got, want) {
		t.Fatalf("Done's release undid %v, want %v", got, want)
	}
	s.Run()
	if len(got) != 2 {
		t.Fatalf("Run after Done undid the operation's work: %v", got)
	}
}

func TestBackgroundReleasesOnlyASuccess(t *testing.T) {
	for _, fail := range []bool{false, true} {
		var s Stack
		released := 0
		wait := Background(func() (int, error) {
			if fail {
				return 0, errors.New("no")
			}
			return 7, nil
		}, func(v int) { released += v }, &s)
		v, err := wait()
		if fail != (err != nil) || !fail && v != 7 {
			t.Fatalf("fail=%v: got %d, %v", fail, v, err)
		}
		s.Run()
		if want := map[bool]int{false: 7, true: 0}[fail]; released != want {
			t.Fatalf("fail=%v: released %d, want %d", fail, released, want)
		}
	}
}
