package migrate

import (
	"errors"
	"testing"
)

// Sessions running at a time see each other's promised bytes, and a
// session's end gives its bytes back.
func TestRoomBookPromises(t *testing.T) {
	var b roomBook
	const free = 100
	fits := func(n int64) func(int64) error {
		return func(promised int64) error {
			if promised+n > free {
				return errors.New("no room")
			}
			return nil
		}
	}
	give1, err := b.take(60, fits(60))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.take(60, fits(60)); err == nil {
		t.Fatal("a second 60 of 100 was promised while the first holds 60")
	}
	give2, err := b.take(40, fits(40))
	if err != nil {
		t.Fatalf("40 beside 60 of 100: %v", err)
	}
	give1()
	give2()
	if b.promised != 0 {
		t.Fatalf("promised %d after both ended", b.promised)
	}
}
