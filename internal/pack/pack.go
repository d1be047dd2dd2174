// Package pack is the compact binary encoding of messages that one lkc
// process sends another copy of the same binary (the init handshake). Both
// ends are built from the same source, so the form needs to be neither
// self-describing nor stable across versions: values are written in a fixed
// order, without names. It exists because encoding/json builds its per-type
// caches by reflection on the first use of a type, which cost `lkc init`
// 0.3-0.4 ms on every container start (docs/kernel.md).
//
// Integers are varints (zig-zag for every integer type, so one encoding
// serves them all), a bool is a byte, strings and byte slices are
// length-prefixed, a slice or map is its length followed by its elements,
// and a pointer is a bool followed by the value when set. A Reader never
// panics on bad input: the first error sticks, later reads return zero
// values, and Err reports it.
package pack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrShort is the error of a read past the end of the input.
var ErrShort = errors.New("pack: truncated input")

// Writer appends values to a buffer; its zero value is an empty buffer.
type Writer struct {
	b []byte
}

// Bytes returns what was written.
func (w *Writer) Bytes() []byte { return w.b }

// Uint writes an unsigned integer, such as a length.
func (w *Writer) Uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

// Bool writes a bool as one byte.
func (w *Writer) Bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// String writes a string.
func (w *Writer) String(s string) {
	w.Uint(uint64(len(s)))
	w.b = append(w.b, s...)
}

// Blob writes a byte slice; nil and empty read back as nil.
func (w *Writer) Blob(p []byte) {
	w.Uint(uint64(len(p)))
	w.b = append(w.b, p...)
}

// Reader reads values in the order a Writer wrote them.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads from b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error, or an error if input is left over: a
// message must be read whole, or the two ends disagree on its form.
func (r *Reader) Err() error {
	if r.err == nil && len(r.b) > 0 {
		return fmt.Errorf("pack: %d bytes left over", len(r.b))
	}
	return r.err
}

// fail records err (the first one sticks) and drops the rest of the input.
func (r *Reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

// Uint reads an unsigned integer.
func (r *Reader) Uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(ErrShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bool reads a bool.
func (r *Reader) Bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) == 0 {
		r.fail(ErrShort)
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail(fmt.Errorf("pack: bad bool %d", v))
	}
	return v == 1
}

// Len reads a length and checks that at least that many more bytes are
// left (every element takes at least one), so that a corrupt length cannot
// make the caller allocate without bound.
func (r *Reader) Len() int {
	n := r.Uint()
	if n > uint64(len(r.b)) {
		r.fail(ErrShort)
		return 0
	}
	return int(n)
}

func (r *Reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// String reads a string.
func (r *Reader) String() string { return string(r.next(r.Len())) }

// Blob reads a byte slice, nil when empty. It aliases the input.
func (r *Reader) Blob() []byte {
	p := r.next(r.Len())
	if len(p) == 0 {
		return nil
	}
	return p
}

// Integer is any integer type. Each is written as the zig-zag varint of
// its value converted to int64, which keeps every bit of a uint64 too.
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

func putNum[T Integer](w *Writer, p *T) { w.b = binary.AppendVarint(w.b, int64(*p)) }

// getNum reads an integer written by putNum from a T; a value T cannot
// hold is an error.
func getNum[T Integer](r *Reader, p *T) {
	if r.err != nil {
		*p = 0
		return
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(ErrShort)
		*p = 0
		return
	}
	r.b = r.b[n:]
	t := T(v)
	if int64(t) != v {
		r.fail(fmt.Errorf("pack: %d out of range for %T", v, t))
		t = 0
	}
	*p = t
}

// putPtr writes a bool that says whether p is set, then what it points to.
func putPtr[T any](w *Writer, p **T, elem valueCodec[T]) {
	w.Bool(*p != nil)
	if *p != nil {
		elem.put(w, *p)
	}
}

func getPtr[T any](r *Reader, p **T, elem valueCodec[T]) {
	*p = nil
	if r.Bool() {
		*p = new(T)
		elem.get(r, *p)
	}
}

// putSlice writes the length, then each element.
func putSlice[T any](w *Writer, p *[]T, elem valueCodec[T]) {
	w.Uint(uint64(len(*p)))
	for i := range *p {
		elem.put(w, &(*p)[i])
	}
}

// getSlice reads a slice written by putSlice; nil when empty.
func getSlice[T any](r *Reader, p *[]T, elem valueCodec[T]) {
	*p = nil
	if n := r.Len(); n > 0 {
		*p = make([]T, n)
		for i := range *p {
			elem.get(r, &(*p)[i])
		}
	}
}

// putMap writes the length, then each key and value in key order, so
// that equal maps encode alike.
func putMap[T any](w *Writer, p *map[string]T, elem valueCodec[T]) {
	w.Uint(uint64(len(*p)))
	for _, k := range slices.Sorted(maps.Keys(*p)) {
		w.String(k)
		v := (*p)[k]
		elem.put(w, &v)
	}
}

// getMap reads a map written by putMap; nil when empty.
func getMap[T any](r *Reader, p *map[string]T, elem valueCodec[T]) {
	*p = nil
	n := r.Len()
	if n == 0 {
		return
	}
	*p = make(map[string]T, n)
	for range n {
		k := r.String()
		var v T
		elem.get(r, &v)
		(*p)[k] = v
	}
}
