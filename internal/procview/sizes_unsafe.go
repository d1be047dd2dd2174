package procview

import "unsafe"

// bookWord is word i of the size book's mapping, for atomic access.
func bookWord(mem []byte, i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&mem[i*8]))
}
