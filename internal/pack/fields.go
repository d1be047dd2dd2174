package pack

// A Field is one field of a struct: a pointer to it and how it is written
// and read. The generated code lists a struct's fields once
// (packFieldsX(v *X) []Field), in declaration order, and Write and Read
// both work from that list, so the two ends cannot disagree on the order.
// The codecs are values of empty (or one-pointer) generic types in
// interfaces, which cost no allocation, unlike a closure per field.
type Field struct {
	p any // a pointer to the field
	c fieldCodec
}

// Write writes fields in order.
func Write(w *Writer, fields []Field) {
	for _, f := range fields {
		f.c.put(w, f.p)
	}
}

// Read reads fields in order, as Write wrote them.
func Read(r *Reader, fields []Field) {
	for _, f := range fields {
		f.c.get(r, f.p)
	}
}

// fieldCodec writes and reads the value a Field's p points to.
type fieldCodec interface {
	put(w *Writer, p any)
	get(r *Reader, p any)
}

// valueCodec writes and reads a T: a field's value, or an element of one.
type valueCodec[T any] interface {
	put(w *Writer, p *T)
	get(r *Reader, p *T)
}

// Str is a string field.
func Str[T ~string](p *T) Field { return Field{p, value[T, strValue[T]]{}} }

// Bool is a bool field.
func Bool(p *bool) Field { return Field{p, value[bool, boolValue]{}} }

// Num is an integer field.
func Num[T Integer](p *T) Field { return Field{p, value[T, numValue[T]]{}} }

// Blob is a byte slice field; nil and empty read back as nil. It aliases
// the input.
func Blob(p *[]byte) Field { return Field{p, value[[]byte, blobValue]{}} }

// Struct is a field that holds a struct, whose fields are fields(p).
func Struct[T any](p *T, fields func(*T) []Field) Field {
	return Field{p, value[T, structValue[T]]{structValue[T]{fields}}}
}

// OptNum is a field that points to an integer.
func OptNum[T Integer](p **T) Field { return Field{p, pointer[T, numValue[T]]{}} }

// OptBool is a field that points to a bool.
func OptBool(p **bool) Field { return Field{p, pointer[bool, boolValue]{}} }

// StructPtr is a field that points to a struct.
func StructPtr[T any](p **T, fields func(*T) []Field) Field {
	return Field{p, pointer[T, structValue[T]]{structValue[T]{fields}}}
}

// Strs is a field that holds a slice of strings; empty reads back as nil.
func Strs[T ~string](p *[]T) Field { return Field{p, slice[T, strValue[T]]{}} }

// Nums is a field that holds a slice of integers; empty reads back as nil.
func Nums[T Integer](p *[]T) Field { return Field{p, slice[T, numValue[T]]{}} }

// Structs is a field that holds a slice of structs; empty reads back as
// nil.
func Structs[T any](p *[]T, fields func(*T) []Field) Field {
	return Field{p, slice[T, structValue[T]]{structValue[T]{fields}}}
}

// StrMap is a field that holds a map of strings; empty reads back as nil.
func StrMap[T ~string](p *map[string]T) Field { return Field{p, mapOf[T, strValue[T]]{}} }

// StructMap is a field that holds a map of structs; empty reads back as
// nil.
func StructMap[T any](p *map[string]T, fields func(*T) []Field) Field {
	return Field{p, mapOf[T, structValue[T]]{structValue[T]{fields}}}
}

// The field codecs: a T, a pointer to one, a slice or a map of them.

type value[T any, C valueCodec[T]] struct{ c C }

func (v value[T, C]) put(w *Writer, p any) { v.c.put(w, p.(*T)) }
func (v value[T, C]) get(r *Reader, p any) { v.c.get(r, p.(*T)) }

type pointer[T any, C valueCodec[T]] struct{ c C }

func (v pointer[T, C]) put(w *Writer, p any) { putPtr(w, p.(**T), v.c) }
func (v pointer[T, C]) get(r *Reader, p any) { getPtr(r, p.(**T), v.c) }

type slice[T any, C valueCodec[T]] struct{ c C }

func (v slice[T, C]) put(w *Writer, p any) { putSlice(w, p.(*[]T), v.c) }
func (v slice[T, C]) get(r *Reader, p any) { getSlice(r, p.(*[]T), v.c) }

type mapOf[T any, C valueCodec[T]] struct{ c C }

func (v mapOf[T, C]) put(w *Writer, p any) { putMap(w, p.(*map[string]T), v.c) }
func (v mapOf[T, C]) get(r *Reader, p any) { getMap(r, p.(*map[string]T), v.c) }

// The value codecs.

type strValue[T ~string] struct{}

func (strValue[T]) put(w *Writer, p *T) { w.String(string(*p)) }
func (strValue[T]) get(r *Reader, p *T) { *p = T(r.String()) }

type boolValue struct{}

func (boolValue) put(w *Writer, p *bool) { w.Bool(*p) }
func (boolValue) get(r *Reader, p *bool) { *p = r.Bool() }

type numValue[T Integer] struct{}

func (numValue[T]) put(w *Writer, p *T) { putNum(w, p) }
func (numValue[T]) get(r *Reader, p *T) { getNum(r, p) }

type blobValue struct{}

func (blobValue) put(w *Writer, p *[]byte) { w.Blob(*p) }
func (blobValue) get(r *Reader, p *[]byte) { *p = r.Blob() }

type structValue[T any] struct{ fields func(*T) []Field }

func (v structValue[T]) put(w *Writer, p *T) { Write(w, v.fields(p)) }
func (v structValue[T]) get(r *Reader, p *T) { Read(r, v.fields(p)) }
