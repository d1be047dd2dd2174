package spec

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decoding config.json without reflection.
//
// encoding/json builds, on the first decode of a type, field tables and
// encoders for every type reachable from it: for specs.Spec that is most of
// the runtime spec, 0.55-0.7 ms of the start of every `lkc run` and
// `create`, against 0.05 ms for the decoding itself (docs/kernel.md). So
// encoding/json only checks the syntax (into a json.RawMessage, which
// builds no tables) and this decoder fills the runtime-spec types by hand
// (decode_types.go), reproducing encoding/json's rules:
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
//
// The one difference: the sections of other platforms (solaris, windows, vm,
// zos) are skipped unread, as Convert never reads them. decode_test.go
// compares the two decoders on every field and fuzzes them against each
// other.

// decoder reads one JSON value that encoding/json has checked is well formed.
type decoder struct {
	data []byte
	off  int
	err  error    // the first type error
	path []string // of the value being decoded, for errors
}

// A field is a key of a JSON object and what decodes its value.
type field struct {
	name   string
	decode func()
}

func (d *decoder) space() {
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
func (d *decoder) next() byte {
	d.space()
	return d.data[d.off]
}

// typeError records that the next value cannot go into a want (the first
// such error is the one reported), and skips it.
func (d *decoder) typeError(want string) {
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
func (d *decoder) null() bool {
	if d.next() != 'n' {
		return false
	}
	d.off += len("null")
	return true
}

// skip consumes the next value.
func (d *decoder) skip() {
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
func (d *decoder) literal() []byte {
	start := d.off
	for d.off < len(d.data) && strings.IndexByte(",}] \t\n\r", d.data[d.off]) < 0 {
		d.off++
	}
	return d.data[start:d.off]
}

func (d *decoder) peekLiteral() []byte {
	start := d.off
	lit := d.literal()
	d.off = start
	return lit
}

// quoted consumes a string and returns it with its quotes.
func (d *decoder) quoted() []byte {
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
func (d *decoder) text() string {
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

// object decodes an object into fields; null leaves them alone.
func (d *decoder) object(fields ...field) {
	if d.null() {
		return
	}
	if d.next() != '{' {
		d.typeError("object")
		return
	}
	d.members(func(key string) {
		f := lookup(fields, key)
		if f == nil {
			d.skip()
			return
		}
		d.path = append(d.path, f.name)
		f.decode()
		d.path = d.path[:len(d.path)-1]
	})
}

// lookup finds the field key selects: the one of that name, else the first
// whose name matches it case-insensitively, as encoding/json does.
func lookup(fields []field, key string) *field {
	for i := range fields {
		if fields[i].name == key {
			return &fields[i]
		}
	}
	for i := range fields {
		if strings.EqualFold(fields[i].name, key) {
			return &fields[i]
		}
	}
	return nil
}

// members calls member for each key of the object that is next, with the
// decoder at its value, which member must consume.
func (d *decoder) members(member func(key string)) {
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
func (d *decoder) elements(element func()) {
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

type integer interface {
	~int | ~int32 | ~int64 | ~uint | ~uint16 | ~uint32 | ~uint64
}

func str[T ~string](d *decoder, p *T) {
	switch d.next() {
	case '"':
		*p = T(d.text())
	case 'n':
		d.null()
	default:
		d.typeError("string")
	}
}

func boolean(d *decoder, p *bool) {
	switch d.next() {
	case 't', 'f':
		*p = d.literal()[0] == 't'
	case 'n':
		d.null()
	default:
		d.typeError("bool")
	}
}

// num takes an integer literal that T holds, as encoding/json does:
// strconv on the literal, so 1e3, 1.0 and, into an unsigned type, -0 fail.
func num[T integer](d *decoder, p *T) {
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

func parseInteger[T integer](lit string) (T, bool) {
	if signed := ^T(0) < 0; signed {
		n, err := strconv.ParseInt(lit, 10, 64)
		return T(n), err == nil && int64(T(n)) == n
	}
	n, err := strconv.ParseUint(lit, 10, 64)
	return T(n), err == nil && uint64(T(n)) == n
}

// ptr decodes into what *p points to, allocated first if nil; null sets
// it to nil.
func ptr[T any](d *decoder, p **T, decode func(*T)) {
	if d.null() {
		*p = nil
		return
	}
	if *p == nil {
		*p = new(T)
	}
	decode(*p)
}

func optNum[T integer](d *decoder, p **T) {
	ptr(d, p, func(v *T) { num(d, v) })
}

func optBool(d *decoder, p **bool) {
	ptr(d, p, func(v *bool) { boolean(d, v) })
}

// slice decodes an array into *p the way encoding/json does: element i
// goes into the element already at i (a repeated key reuses them), the
// slice is cut to the array's length, and an empty array makes an empty,
// non-nil slice. null sets it to nil.
func slice[T any](d *decoder, p *[]T, decode func(*T)) {
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
		decode(&s[i])
		i++
	})
	if i == 0 {
		s = make([]T, 0)
	}
	*p = s[:i]
}

func strs[T ~string](d *decoder, p *[]T) {
	slice(d, p, func(v *T) { str(d, v) })
}

func nums[T integer](d *decoder, p *[]T) {
	slice(d, p, func(v *T) { num(d, v) })
}

// mapOf decodes an object into the map *p, made first if nil; each value
// starts from zero. null sets it to nil.
func mapOf[T any](d *decoder, p *map[string]T, decode func(*T)) {
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
		decode(&v)
		d.path = d.path[:len(d.path)-1]
		(*p)[key] = v
	})
}

func strMap(d *decoder, p *map[string]string) {
	mapOf(d, p, func(v *string) { str(d, v) })
}
