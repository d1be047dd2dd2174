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

// Strings writes a string slice.
func (w *Writer) Strings(s []string) {
	w.Uint(uint64(len(s)))
	for _, v := range s {
		w.String(v)
	}
}

// StringMap writes a map of strings, in key order so that equal maps
// encode alike.
func (w *Writer) StringMap(m map[string]string) {
	w.Uint(uint64(len(m)))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.String(k)
		w.String(m[k])
	}
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

// Strings reads a string slice, nil when empty.
func (r *Reader) Strings() []string {
	n := r.Len()
	if n == 0 {
		return nil
	}
	s := make([]string, n)
	for i := range s {
		s[i] = r.String()
	}
	return s
}

// StringMap reads a map of strings, nil when empty.
func (r *Reader) StringMap() map[string]string {
	n := r.Len()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.String()
		m[k] = r.String()
	}
	return m
}

// Integer is any integer type. Each is written as the zig-zag varint of
// its value converted to int64, which keeps every bit of a uint64 too.
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// Num writes an integer.
func Num[T Integer](w *Writer, v T) { w.b = binary.AppendVarint(w.b, int64(v)) }

// ReadNum reads an integer written by Num from a T; a value T cannot hold
// is an error.
func ReadNum[T Integer](r *Reader) T {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(ErrShort)
		return 0
	}
	r.b = r.b[n:]
	t := T(v)
	if int64(t) != v {
		r.fail(fmt.Errorf("pack: %d out of range for %T", v, t))
		return 0
	}
	return t
}

// OptNum writes an optional integer.
func OptNum[T Integer](w *Writer, p *T) {
	w.Bool(p != nil)
	if p != nil {
		Num(w, *p)
	}
}

// ReadOptNum reads an integer written by OptNum.
func ReadOptNum[T Integer](r *Reader) *T {
	if !r.Bool() {
		return nil
	}
	v := ReadNum[T](r)
	return &v
}

// Nums writes a slice of integers.
func Nums[T Integer](w *Writer, s []T) {
	w.Uint(uint64(len(s)))
	for _, v := range s {
		Num(w, v)
	}
}

// ReadNums reads a slice written by Nums, nil when empty.
func ReadNums[T Integer](r *Reader) []T {
	n := r.Len()
	if n == 0 {
		return nil
	}
	s := make([]T, n)
	for i := range s {
		s[i] = ReadNum[T](r)
	}
	return s
}

// Slice writes a slice, each element with put.
func Slice[T any](w *Writer, s []T, put func(*Writer, *T)) {
	w.Uint(uint64(len(s)))
	for i := range s {
		put(w, &s[i])
	}
}

// ReadSlice reads a slice written by Slice, each element with get; nil
// when empty.
func ReadSlice[T any](r *Reader, get func(*Reader, *T)) []T {
	n := r.Len()
	if n == 0 {
		return nil
	}
	s := make([]T, n)
	for i := range s {
		get(r, &s[i])
	}
	return s
}

// OptBool writes an optional bool.
func OptBool(w *Writer, p *bool) {
	w.Bool(p != nil)
	if p != nil {
		w.Bool(*p)
	}
}

// ReadOptBool reads a bool written by OptBool.
func ReadOptBool(r *Reader) *bool {
	if !r.Bool() {
		return nil
	}
	v := r.Bool()
	return &v
}

// Ptr writes an optional value with put.
func Ptr[T any](w *Writer, p *T, put func(*Writer, *T)) {
	w.Bool(p != nil)
	if p != nil {
		put(w, p)
	}
}

// ReadPtr reads a value written by Ptr with get.
func ReadPtr[T any](r *Reader, get func(*Reader, *T)) *T {
	if !r.Bool() {
		return nil
	}
	v := new(T)
	get(r, v)
	return v
}

// Map writes a map in key order, each value with put.
func Map[T any](w *Writer, m map[string]T, put func(*Writer, *T)) {
	w.Uint(uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.String(k)
		v := m[k]
		put(w, &v)
	}
}

// ReadMap reads a map written by Map, each value with get; nil when empty.
func ReadMap[T any](r *Reader, get func(*Reader, *T)) map[string]T {
	n := r.Len()
	if n == 0 {
		return nil
	}
	m := make(map[string]T, n)
	for range n {
		k := r.String()
		var v T
		get(r, &v)
		m[k] = v
	}
	return m
}
