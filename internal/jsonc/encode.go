package jsonc

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Encoder writes JSON as json.Marshal does, byte for byte (the order of the
// fields, omitempty, escaping, sorted map keys).
type Encoder struct {
	b   []byte
	err error // the first error of a json.Marshaler
}

// Encode renders v by fields, the generated field list of a T.
func Encode[T any](v *T, fields func(*T) []Field) ([]byte, error) {
	e := Encoder{b: make([]byte, 0, 4096)}
	e.object(fields(v))
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// object writes the fields that omitempty keeps, in their order.
func (e *Encoder) object(fields []Field) {
	e.b = append(e.b, '{')
	first := true
	for i := range fields {
		f := &fields[i]
		if f.omit {
			continue
		}
		if !first {
			e.b = append(e.b, ',')
		}
		first = false
		e.b = appendString(e.b, f.key)
		e.b = append(e.b, ':')
		f.c.enc(e, f.p)
	}
	e.b = append(e.b, '}')
}

func (e *Encoder) null() { e.b = append(e.b, "null"...) }

func encBool(e *Encoder, p *bool) { e.b = strconv.AppendBool(e.b, *p) }

func encStr[T ~string](e *Encoder, p *T) { e.b = appendString(e.b, string(*p)) }

func encNum[T Integer](e *Encoder, p *T) {
	if signed := ^T(0) < 0; signed {
		e.b = strconv.AppendInt(e.b, int64(*p), 10)
	} else {
		e.b = strconv.AppendUint(e.b, uint64(*p), 10)
	}
}

// encMarshaler writes what v's own MarshalJSON returns (time.Time's RFC
// 3339); its error is Encode's.
func encMarshaler(e *Encoder, v json.Marshaler) {
	b, err := v.MarshalJSON()
	if err != nil {
		if e.err == nil {
			e.err = err
		}
		b = []byte("null")
	}
	e.b = append(e.b, b...)
}

// encPtr writes what p points to; nil is null.
func encPtr[T any](e *Encoder, p **T, elem valueCodec[T]) {
	if *p == nil {
		e.null()
		return
	}
	elem.enc(e, *p)
}

// encSlice writes an array, each element with elem; nil is null.
func encSlice[T any](e *Encoder, p *[]T, elem valueCodec[T]) {
	s := *p
	if s == nil {
		e.null()
		return
	}
	e.b = append(e.b, '[')
	for i := range s {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		elem.enc(e, &s[i])
	}
	e.b = append(e.b, ']')
}

// encMap writes a map as an object with its keys sorted, as encoding/json
// does; nil is null.
func encMap[T any](e *Encoder, p *map[string]T, elem valueCodec[T]) {
	m := *p
	if m == nil {
		e.null()
		return
	}
	e.b = append(e.b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendString(e.b, k)
		e.b = append(e.b, ':')
		v := m[k]
		elem.enc(e, &v)
	}
	e.b = append(e.b, '}')
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
