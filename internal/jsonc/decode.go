package jsonc

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decoding without reflection, by encoding/json's rules:
//
//   - a key selects the field of that name, else the first field whose name
//     matches it case-insensitively; other keys are ignored;
//   - null sets a pointer, slice or map to nil and leaves other values alone;
//   - a value goes into what the field already holds: a repeated key merges
//     into the struct a pointer points to, and a repeated array decodes into
//     the elements already there (an empty array is an empty, non-nil slice);
//   - a number must be an integer literal that the field's type holds;
//   - a value of the wrong type is an error, and decoding goes on to report
//     the first one.

// Decoder reads one JSON value that is known to be well formed (Decode
// checks it first).
type Decoder struct {
	data []byte
	off  int
	err  error    // the first type error
	path []string // of the value being decoded, for errors
}

// Decode checks that data is one well-formed JSON value, as json.Unmarshal
// does, and fills *v from it with decode, a generated function. The check
// is encoding/json's scanner (json.Valid), which builds no per-type tables.
func Decode[T any](data []byte, v *T, decode func(*Decoder, *T)) error {
	if !json.Valid(data) {
		var raw json.RawMessage // for encoding/json's own words on where it breaks
		if err := json.Unmarshal(data, &raw); err != nil {
			return err
		}
		return fmt.Errorf("json: invalid input")
	}
	return DecodeChecked(data, v, decode)
}

// DecodeChecked is Decode of data already checked to be one well-formed
// JSON value (json.RawMessage decoded by encoding/json, say).
func DecodeChecked[T any](data []byte, v *T, decode func(*Decoder, *T)) error {
	d := Decoder{data: data}
	decode(&d, v)
	return d.err
}

func (d *Decoder) space() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// next returns the first byte of the next value, which says its kind: '{',
// '[', '"', 't', 'f', 'n' or (a number) '-' or a digit.
func (d *Decoder) next() byte {
	d.space()
	return d.data[d.off]
}

// typeError records that the next value cannot go into a want (the first
// such error is the one reported), and skips it.
func (d *Decoder) typeError(want string) {
	if d.err == nil {
		var got string
		switch d.next() {
		case '{':
			got = "object"
		case '[':
			got = "array"
		case '"':
			got = "string"
		case 't', 'f':
			got = "bool"
		default:
			got = "number " + string(d.peekLiteral())
		}
		d.err = fmt.Errorf("json: cannot unmarshal %s into %s of type %s", got, strings.Join(d.path, "."), want)
	}
	d.skip()
}

// null consumes a null if it is next.
func (d *Decoder) null() bool {
	if d.next() != 'n' {
		return false
	}
	d.off += len("null")
	return true
}

// skip consumes the next value.
func (d *Decoder) skip() {
	switch d.next() {
	case '"':
		d.quoted()
	case '{', '[':
		depth := 0
		for {
			switch d.data[d.off] {
			case '"':
				d.quoted()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			d.off++
			if depth == 0 {
				return
			}
		}
	default:
		d.literal()
	}
}

// literal consumes a number, true, false or null.
func (d *Decoder) literal() []byte {
	start := d.off
	for d.off < len(d.data) && strings.IndexByte(",}] \t\n\r", d.data[d.off]) < 0 {
		d.off++
	}
	return d.data[start:d.off]
}

func (d *Decoder) peekLiteral() []byte {
	start := d.off
	lit := d.literal()
	d.off = start
	return lit
}

// quoted consumes a string and returns it with its quotes.
func (d *Decoder) quoted() []byte {
	start := d.off
	d.off++
	for d.data[d.off] != '"' {
		if d.data[d.off] == '\\' {
			d.off++
		}
		d.off++
	}
	d.off++
	return d.data[start:d.off]
}

// text consumes a string and returns its value. A string with escapes or
// beyond ASCII is unquoted by encoding/json itself (decoding into a string
// builds no tables), so that its replacement of bad UTF-8 and surrogates
// is the one applied.
func (d *Decoder) text() string {
	q := d.quoted()
	raw := q[1 : len(q)-1]
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			var s string
			if err := json.Unmarshal(q, &s); err != nil && d.err == nil {
				d.err = err
			}
			return s
		}
	}
	return string(raw)
}

// Object decodes an object whose keys are names: member(i) decodes the
// value of the key that selects names[i]; other keys are skipped. null
// leaves the fields alone.
func (d *Decoder) Object(names []string, member func(i int)) {
	if d.null() {
		return
	}
	if d.next() != '{' {
		d.typeError("object")
		return
	}
	d.members(func(key string) {
		i := lookup(names, key)
		if i < 0 {
			d.skip()
			return
		}
		d.path = append(d.path, names[i])
		member(i)
		d.path = d.path[:len(d.path)-1]
	})
}

// lookup finds the name key selects: the one it equals, else the first it
// matches case-insensitively, as encoding/json does; -1 if none.
func lookup(names []string, key string) int {
	for i, n := range names {
		if n == key {
			return i
		}
	}
	for i, n := range names {
		if strings.EqualFold(n, key) {
			return i
		}
	}
	return -1
}

// members calls member for each key of the object that is next, with the
// decoder at its value, which member must consume.
func (d *Decoder) members(member func(key string)) {
	d.off++ // {
	for d.next() != '}' {
		key := d.text()
		d.space()
		d.off++ // :
		member(key)
		if d.next() == ',' {
			d.off++
		}
	}
	d.off++
}

// elements calls element for each element of the array that is next.
func (d *Decoder) elements(element func()) {
	d.off++ // [
	for d.next() != ']' {
		element()
		if d.next() == ',' {
			d.off++
		}
	}
	d.off++
}

// The values of fields, by type. Each consumes the next value.

// Integer is every integer type a field may have.
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// Str decodes a string.
func Str[T ~string](d *Decoder, p *T) {
	switch d.next() {
	case '"':
		*p = T(d.text())
	case 'n':
		d.null()
	default:
		d.typeError("string")
	}
}

// Bool decodes true or false.
func Bool(d *Decoder, p *bool) {
	switch d.next() {
	case 't', 'f':
		*p = d.literal()[0] == 't'
	case 'n':
		d.null()
	default:
		d.typeError("bool")
	}
}

// Num takes an integer literal that T holds, as encoding/json does:
// strconv on the literal, so 1e3, 1.0 and, into an unsigned type, -0 fail.
func Num[T Integer](d *Decoder, p *T) {
	switch c := d.next(); {
	case c == 'n':
		d.null()
	case c == '-' || '0' <= c && c <= '9':
		lit := d.peekLiteral()
		v, ok := parseInteger[T](string(lit))
		if !ok {
			d.typeError(fmt.Sprintf("%T", v))
			return
		}
		d.off += len(lit)
		*p = v
	default:
		d.typeError(fmt.Sprintf("%T", *p))
	}
}

func parseInteger[T Integer](lit string) (T, bool) {
	if signed := ^T(0) < 0; signed {
		n, err := strconv.ParseInt(lit, 10, 64)
		return T(n), err == nil && int64(T(n)) == n
	}
	n, err := strconv.ParseUint(lit, 10, 64)
	return T(n), err == nil && uint64(T(n)) == n
}

// Ptr decodes into what *p points to, allocated first if nil; null sets
// it to nil.
func Ptr[T any](d *Decoder, p **T, decode func(*Decoder, *T)) {
	if d.null() {
		*p = nil
		return
	}
	if *p == nil {
		*p = new(T)
	}
	decode(d, *p)
}

// OptNum decodes an optional integer.
func OptNum[T Integer](d *Decoder, p **T) { Ptr(d, p, Num[T]) }

// OptBool decodes an optional bool.
func OptBool(d *Decoder, p **bool) { Ptr(d, p, Bool) }

// Slice decodes an array into *p the way encoding/json does: element i
// goes into the element already at i (a repeated key reuses them), the
// slice is cut to the array's length, and an empty array makes an empty,
// non-nil slice. null sets it to nil.
func Slice[T any](d *Decoder, p *[]T, decode func(*Decoder, *T)) {
	switch d.next() {
	case 'n':
		d.null()
		*p = nil
		return
	case '[':
	default:
		d.typeError(fmt.Sprintf("%T", *p))
		return
	}
	s, i := *p, 0
	d.elements(func() {
		if i >= cap(s) {
			s = slices.Grow(s, 1)
		}
		if i >= len(s) {
			s = s[:i+1]
		}
		decode(d, &s[i])
		i++
	})
	if i == 0 {
		s = make([]T, 0)
	}
	*p = s[:i]
}

// Strs decodes an array of strings.
func Strs[T ~string](d *Decoder, p *[]T) { Slice(d, p, Str[T]) }

// Nums decodes an array of integers.
func Nums[T Integer](d *Decoder, p *[]T) { Slice(d, p, Num[T]) }

// Map decodes an object into the map *p, made first if nil; each value
// starts from zero. null sets it to nil.
func Map[T any](d *Decoder, p *map[string]T, decode func(*Decoder, *T)) {
	switch d.next() {
	case 'n':
		d.null()
		*p = nil
		return
	case '{':
	default:
		d.typeError(fmt.Sprintf("%T", *p))
		return
	}
	if *p == nil {
		*p = map[string]T{}
	}
	d.members(func(key string) {
		var v T
		d.path = append(d.path, key)
		decode(d, &v)
		d.path = d.path[:len(d.path)-1]
		(*p)[key] = v
	})
}

// StrMap decodes an object of strings.
func StrMap(d *Decoder, p *map[string]string) { Map(d, p, Str[string]) }

// Unmarshaler hands the next value to p's own UnmarshalJSON (time.Time's
// reads RFC 3339 itself), as encoding/json does, null included.
func Unmarshaler(d *Decoder, p json.Unmarshaler) {
	d.space()
	start := d.off
	d.skip()
	if err := p.UnmarshalJSON(d.data[start:d.off]); err != nil && d.err == nil {
		d.err = err
	}
}
