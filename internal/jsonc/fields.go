package jsonc

import (
	"encoding/json"
	"time"
)

// A Field is one member of a struct's JSON object: its key, a pointer to
// the value, and how that is read and written. The generated code lists a
// struct's fields once (fieldsX(v *X) []Field), in declaration order under
// their json tags, and the decoder and the encoder both work from that
// list. The codecs are values of empty (or one-pointer) generic types in
// interfaces, which cost no allocation, unlike a closure per field.
type Field struct {
	key  string
	omit bool // omitempty and empty: the encoder leaves it out
	p    any  // a pointer to the field
	c    fieldCodec
}

// fieldCodec reads and writes the value a Field's p points to.
type fieldCodec interface {
	dec(d *Decoder, p any)
	enc(e *Encoder, p any)
}

// valueCodec reads and writes a T: a field's value, or an element of one.
type valueCodec[T any] interface {
	dec(d *Decoder, p *T)
	enc(e *Encoder, p *T)
}

// Str is a string field.
func Str[T ~string](key string, p *T, omitempty bool) Field {
	return Field{key, omitempty && *p == "", p, value[T, strValue[T]]{}}
}

// Bool is a bool field.
func Bool(key string, p *bool, omitempty bool) Field {
	return Field{key, omitempty && !*p, p, value[bool, boolValue]{}}
}

// Num is an integer field.
func Num[T Integer](key string, p *T, omitempty bool) Field {
	return Field{key, omitempty && *p == 0, p, value[T, numValue[T]]{}}
}

// Time is a time.Time field, in its own MarshalJSON's form (RFC 3339).
func Time(key string, p *time.Time) Field {
	return Field{key, false, p, value[time.Time, timeValue]{}}
}

// Raw is a field that holds JSON text as it is (json.RawMessage): read
// as the value's text, written as given (encoding/json would compact it).
func Raw(key string, p *json.RawMessage, omitempty bool) Field {
	return Field{key, omitempty && len(*p) == 0, p, value[json.RawMessage, rawValue]{}}
}

// Struct is a field that holds a struct, whose fields are fields(p).
// omitempty never leaves a struct out, as in encoding/json.
func Struct[T any](key string, p *T, fields func(*T) []Field) Field {
	return Field{key, false, p, value[T, structValue[T]]{structValue[T]{fields}}}
}

// OptNum is a field that points to an integer.
func OptNum[T Integer](key string, p **T, omitempty bool) Field {
	return Field{key, omitempty && *p == nil, p, pointer[T, numValue[T]]{}}
}

// OptBool is a field that points to a bool.
func OptBool(key string, p **bool, omitempty bool) Field {
	return Field{key, omitempty && *p == nil, p, pointer[bool, boolValue]{}}
}

// StructPtr is a field that points to a struct.
func StructPtr[T any](key string, p **T, omitempty bool, fields func(*T) []Field) Field {
	return Field{key, omitempty && *p == nil, p, pointer[T, structValue[T]]{structValue[T]{fields}}}
}

// Strs is a field that holds a slice of strings.
func Strs[T ~string](key string, p *[]T, omitempty bool) Field {
	return Field{key, omitempty && len(*p) == 0, p, slice[T, strValue[T]]{}}
}

// Nums is a field that holds a slice of integers.
func Nums[T Integer](key string, p *[]T, omitempty bool) Field {
	return Field{key, omitempty && len(*p) == 0, p, slice[T, numValue[T]]{}}
}

// Structs is a field that holds a slice of structs.
func Structs[T any](key string, p *[]T, omitempty bool, fields func(*T) []Field) Field {
	return Field{key, omitempty && len(*p) == 0, p, slice[T, structValue[T]]{structValue[T]{fields}}}
}

// StrMap is a field that holds a map of strings.
func StrMap[T ~string](key string, p *map[string]T, omitempty bool) Field {
	return Field{key, omitempty && len(*p) == 0, p, mapOf[T, strValue[T]]{}}
}

// StructMap is a field that holds a map of structs.
func StructMap[T any](key string, p *map[string]T, omitempty bool, fields func(*T) []Field) Field {
	return Field{key, omitempty && len(*p) == 0, p, mapOf[T, structValue[T]]{structValue[T]{fields}}}
}

// The field codecs: a T, a pointer to one, a slice or a map of them.

type value[T any, C valueCodec[T]] struct{ c C }

func (v value[T, C]) dec(d *Decoder, p any) { v.c.dec(d, p.(*T)) }
func (v value[T, C]) enc(e *Encoder, p any) { v.c.enc(e, p.(*T)) }

type pointer[T any, C valueCodec[T]] struct{ c C }

func (v pointer[T, C]) dec(d *Decoder, p any) { decPtr(d, p.(**T), v.c) }
func (v pointer[T, C]) enc(e *Encoder, p any) { encPtr(e, p.(**T), v.c) }

type slice[T any, C valueCodec[T]] struct{ c C }

func (v slice[T, C]) dec(d *Decoder, p any) { decSlice(d, p.(*[]T), v.c) }
func (v slice[T, C]) enc(e *Encoder, p any) { encSlice(e, p.(*[]T), v.c) }

type mapOf[T any, C valueCodec[T]] struct{ c C }

func (v mapOf[T, C]) dec(d *Decoder, p any) { decMap(d, p.(*map[string]T), v.c) }
func (v mapOf[T, C]) enc(e *Encoder, p any) { encMap(e, p.(*map[string]T), v.c) }

// The value codecs.

type strValue[T ~string] struct{}

func (strValue[T]) dec(d *Decoder, p *T) { decStr(d, p) }
func (strValue[T]) enc(e *Encoder, p *T) { encStr(e, p) }

type boolValue struct{}

func (boolValue) dec(d *Decoder, p *bool) { decBool(d, p) }
func (boolValue) enc(e *Encoder, p *bool) { encBool(e, p) }

type numValue[T Integer] struct{}

func (numValue[T]) dec(d *Decoder, p *T) { decNum(d, p) }
func (numValue[T]) enc(e *Encoder, p *T) { encNum(e, p) }

type timeValue struct{}

func (timeValue) dec(d *Decoder, p *time.Time) { decUnmarshaler(d, p) }
func (timeValue) enc(e *Encoder, p *time.Time) { encMarshaler(e, *p) }

type rawValue struct{}

func (rawValue) dec(d *Decoder, p *json.RawMessage) { decUnmarshaler(d, p) }
func (rawValue) enc(e *Encoder, p *json.RawMessage) { encMarshaler(e, *p) }

type structValue[T any] struct{ fields func(*T) []Field }

func (v structValue[T]) dec(d *Decoder, p *T) { d.object(v.fields(p)) }
func (v structValue[T]) enc(e *Encoder, p *T) { e.object(v.fields(p)) }
