package jsonc

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Encoder writes JSON as json.Marshal does, byte for byte (the order of the
// fields, omitempty, escaping, sorted map keys), for generated code that
// calls it field by field: Open, then Key and a value for each member,
// then Close.
type Encoder struct {
	b   []byte
	err error // the first error of a json.Marshaler
}

// Encode renders v with encode, a generated function.
func Encode[T any](v *T, encode func(*Encoder, *T)) ([]byte, error) {
	e := Encoder{b: make([]byte, 0, 4096)}
	encode(&e, v)
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// Open starts an object.
func (e *Encoder) Open() { e.b = append(e.b, '{') }

// Close ends an object.
func (e *Encoder) Close() { e.b = append(e.b, '}') }

// Key starts a member, after a comma unless it is the object's first.
func (e *Encoder) Key(name string) {
	if e.b[len(e.b)-1] != '{' {
		e.b = append(e.b, ',')
	}
	e.b = appendString(e.b, name)
	e.b = append(e.b, ':')
}

// Null writes null (a nil pointer, slice or map).
func (e *Encoder) Null() { e.b = append(e.b, "null"...) }

// Bool writes true or false.
func (e *Encoder) Bool(v bool) { e.b = strconv.AppendBool(e.b, v) }

// Marshaler writes what v's own MarshalJSON returns (time.Time's RFC 3339).
func (e *Encoder) Marshaler(v json.Marshaler) {
	b, err := v.MarshalJSON()
	if err != nil {
		if e.err == nil {
			e.err = err
		}
		b = []byte("null")
	}
	e.b = append(e.b, b...)
}

// WriteStr writes a string.
func WriteStr[T ~string](e *Encoder, v T) { e.b = appendString(e.b, string(v)) }

// WriteNum writes an integer.
func WriteNum[T Integer](e *Encoder, v T) {
	if signed := ^T(0) < 0; signed {
		e.b = strconv.AppendInt(e.b, int64(v), 10)
	} else {
		e.b = strconv.AppendUint(e.b, uint64(v), 10)
	}
}

// WriteSlice writes an array, each element with encode; nil is null.
func WriteSlice[T any](e *Encoder, s []T, encode func(*Encoder, *T)) {
	if s == nil {
		e.Null()
		return
	}
	e.b = append(e.b, '[')
	for i := range s {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		encode(e, &s[i])
	}
	e.b = append(e.b, ']')
}

// WriteStrs writes an array of strings.
func WriteStrs[T ~string](e *Encoder, s []T) {
	WriteSlice(e, s, func(e *Encoder, v *T) { WriteStr(e, *v) })
}

// WriteNums writes an array of integers.
func WriteNums[T Integer](e *Encoder, s []T) {
	WriteSlice(e, s, func(e *Encoder, v *T) { WriteNum(e, *v) })
}

// WriteMap writes a map as an object with its keys sorted, as
// encoding/json does; nil is null.
func WriteMap[T any](e *Encoder, m map[string]T, encode func(*Encoder, *T)) {
	if m == nil {
		e.Null()
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.Open()
	for _, k := range keys {
		e.Key(k)
		v := m[k]
		encode(e, &v)
	}
	e.Close()
}

// WriteStrMap writes a map of strings.
func WriteStrMap[T ~string](e *Encoder, m map[string]T) {
	WriteMap(e, m, func(e *Encoder, v *T) { WriteStr(e, *v) })
}

// appendString writes s quoted. A string that encoding/json would escape
// any part of (quotes, backslashes, control characters, <, > and &,
// anything beyond ASCII) is left to it, which is cheap for a string: the
// exact escaping (invalid UTF-8, U+2028) stays its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
