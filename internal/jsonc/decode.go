package jsonc

import (
	"bytes"
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
func Decode[T any](data []byte, v *T, fields func(*T) []Field) error {
	if !json.Valid(data) {
		var raw json.RawMessage // for encoding/json's own words on where it breaks
		if err := json.Unmarshal(data, &raw); err != nil {
			return err
		}
		return fmt.Errorf("json: invalid input")
	}
	return DecodeChecked(data, v, fields)
}

// DecodeChecked is Decode of data already checked to be one well-formed
// JSON value (json.RawMessage decoded by encoding/json, say).
func DecodeChecked[T any](data []byte, v *T, fields func(*T) []Field) error {
	d := Decoder{data: data}
	d.object(fields(v))
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
	raw, plain := d.rawText()
	if plain {
		return string(raw)
	}
	return d.unquote(raw)
}

// unquote returns the value of the quoted string q, by encoding/json.
func (d *Decoder) unquote(q []byte) string {
	var s string
	if err := json.Unmarshal(q, &s); err != nil && d.err == nil {
		d.err = err
	}
	return s
}

// rawText consumes a string and returns its contents, unquoted, when it is
// plain (ASCII without escapes); else the quoted string and false.
func (d *Decoder) rawText() ([]byte, bool) {
	q := d.quoted()
	raw := q[1 : len(q)-1]
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return q, false
		}
	}
	return raw, true
}

// key consumes an object's key; it aliases the input when plain, as most
// are, so that looking it up costs no allocation.
func (d *Decoder) key() []byte {
	raw, plain := d.rawText()
	if plain {
		return raw
	}
	return []byte(d.unquote(raw))
}

// object decodes an object into fields; other keys are skipped. null
// leaves the fields alone.
func (d *Decoder) object(fields []Field) {
	if d.null() {
		return
	}
	if d.next() != '{' {
		d.typeError("object")
		return
	}
	d.members(func(key []byte) {
		i := lookup(fields, key)
		if i < 0 {
			d.skip()
			return
		}
		d.path = append(d.path, fields[i].key)
		fields[i].c.dec(d, fields[i].p)
		d.path = d.path[:len(d.path)-1]
	})
}

// lookup finds the field key selects: the one of that name, else the
// first whose name matches it case-insensitively, as encoding/json does;
// -1 if none.
func lookup(fields []Field, key []byte) int {
	for i := range fields {
		if fields[i].key == string(key) {
			return i
		}
	}
	for i := range fields {
		if bytes.EqualFold([]byte(fields[i].key), key) {
			return i
		}
	}
	return -1
}

// members calls member for each key of the object that is next, with the
// decoder at its value, which member must consume.
func (d *Decoder) members(member func(key []byte)) {
	d.off++ // {
	for d.next() != '}' {
		key := d.key()
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

// decStr decodes a string.
func decStr[T ~string](d *Decoder, p *T) {
	switch d.next() {
	case '"':
		*p = T(d.text())
	case 'n':
		d.null()
	default:
		d.typeError("string")
	}
}

// decBool decodes true or false.
func decBool(d *Decoder, p *bool) {
	switch d.next() {
	case 't', 'f':
		*p = d.literal()[0] == 't'
	case 'n':
		d.null()
	default:
		d.typeError("bool")
	}
}

// decNum takes an integer literal that T holds, as encoding/json does:
// strconv on the literal, so 1e3, 1.0 and, into an unsigned type, -0 fail.
func decNum[T Integer](d *Decoder, p *T) {
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

// decPtr decodes into what *p points to, allocated first if nil; null sets
// it to nil.
func decPtr[T any](d *Decoder, p **T, elem valueCodec[T]) {
	if d.null() {
		*p = nil
		return
	}
	if *p == nil {
		*p = new(T)
	}
	elem.dec(d, *p)
}

// opens reports whether the next value is an array or object (open is
// '[' or '{') for *p, a slice or map. null sets *p to nil, and another
// value is a type error; both are consumed.
func opens[T any](d *Decoder, open byte, p *T) bool {
	switch d.next() {
	case open:
		return true
	case 'n':
		d.null()
		var zero T
		*p = zero
	default:
		d.typeError(fmt.Sprintf("%T", *p))
	}
	return false
}

// decSlice decodes an array into *p the way encoding/json does: element i
// goes into the element already at i (a repeated key reuses them), the
// slice is cut to the array's length, and an empty array makes an empty,
// non-nil slice. null sets it to nil.
func decSlice[T any](d *Decoder, p *[]T, elem valueCodec[T]) {
	if !opens(d, '[', p) {
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
		elem.dec(d, &s[i])
		i++
	})
	if i == 0 {
		s = make([]T, 0)
	}
	*p = s[:i]
}

// decMap decodes an object into the map *p, made first if nil; each value
// starts from zero. null sets it to nil.
func decMap[T any](d *Decoder, p *map[string]T, elem valueCodec[T]) {
	if !opens(d, '{', p) {
		return
	}
	if *p == nil {
		*p = map[string]T{}
	}
	d.members(func(raw []byte) {
		var v T
		key := string(raw)
		d.path = append(d.path, key)
		elem.dec(d, &v)
		d.path = d.path[:len(d.path)-1]
		(*p)[key] = v
	})
}

// decUnmarshaler hands the next value to p's own UnmarshalJSON (time.Time's
// reads RFC 3339 itself), as encoding/json does, null included.
func decUnmarshaler(d *Decoder, p json.Unmarshaler) {
	d.space()
	start := d.off
	d.skip()
	if err := p.UnmarshalJSON(d.data[start:d.off]); err != nil && d.err == nil {
		d.err = err
	}
}
