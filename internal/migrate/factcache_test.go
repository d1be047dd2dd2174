package migrate

import (
	"errors"
	"testing"
	"time"
)

// A host's facts are read once for the offers of a few seconds, again
// once they are older, again for another CRIU, and a failed reading is
// not kept.
func TestFactsCache(t *testing.T) {
	now := time.Unix(1000, 0)
	reads := 0
	fail := false
	c := &FactsCache{
		now: func() time.Time { return now },
		read: func(criu string) (*Facts, error) {
			reads++
			if fail {
				return nil, errors.New("criu gone")
			}
			return &Facts{Kernel: criu}, nil
		},
	}
	get := func(criu string, wantReads int) {
		t.Helper()
		f, err := c.Get(criu)
		if err != nil || f.Kernel != criu {
			t.Fatalf("Get(%q) = %+v, %v", criu, f, err)
		}
		if reads != wantReads {
			t.Fatalf("Get(%q): %d readings, want %d", criu, reads, wantReads)
		}
	}
	get("", 1)
	for i := 0; i < 10; i++ {
		get("", 1)
	}
	now = now.Add(factsTTL - time.Millisecond)
	get("", 1)
	now = now.Add(time.Millisecond)
	get("", 2)
	get("/opt/criu", 3)
	get("", 4)
	now = now.Add(factsTTL)
	fail = true
	if _, err := c.Get(""); err == nil {
		t.Fatal("a failed reading gave facts")
	}
	fail = false
	get("", 6)
}
