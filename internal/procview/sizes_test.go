package procview

import "testing"

// TestSizeBook: a size told for a node is read back for that node only:
// not for the slot's next generation, not for a node never told, and a
// slot beyond the book is never booked.
func TestSizeBook(t *testing.T) {
	b, err := openSizeBook(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.f.Close()
	node := nodeID(7, 3, 2)
	if _, ok := b.Told(node); ok {
		t.Fatal("a node never told is booked")
	}
	b.Tell(node, 1234)
	if size, ok := b.Told(node); !ok || size != 1234 {
		t.Errorf("told 1234, read back %d, %v", size, ok)
	}
	if _, ok := b.Told(nodeID(8, 3, 2)); ok {
		t.Error("the slot's next generation reads its predecessor's size")
	}
	b.Tell(node, 0)
	if size, ok := b.Told(node); !ok || size != 0 {
		t.Errorf("told 0, read back %d, %v", size, ok)
	}
	far := nodeID(1, bookSlots, 2)
	b.Tell(far, 10)
	if _, ok := b.Told(far); ok {
		t.Error("a slot beyond the book is booked")
	}
	again, err := openSizeBook(b.f)
	if err != nil {
		t.Fatal(err)
	}
	if size, ok := again.Told(node); !ok || size != 0 {
		t.Errorf("a second mapping of the memfd (a successor's) reads %d, %v", size, ok)
	}
}
