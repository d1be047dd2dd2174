package pack

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

type sample struct {
	u     uint64
	b     bool
	s     string
	blob  []byte
	ss    []string
	m     map[string]string
	i64   int64
	u64   uint64
	u16   uint16
	r     rune
	p     uintptr
	opt   *uint32
	none  *int
	nums  []int
	pairs []pair
	ob    *bool
	ptr   *pair
	pm    map[string]pair
	one   pair
}

type pair struct {
	k string
	v int32
}

// fields lists every field of s, each kind of Field once at least.
func (s *sample) fields() []Field {
	return []Field{Num(&s.u), Bool(&s.b), Str(&s.s), Blob(&s.blob), Strs(&s.ss), StrMap(&s.m),
		Num(&s.i64), Num(&s.u64), Num(&s.u16), Num(&s.r), Num(&s.p), OptNum(&s.opt), OptNum(&s.none),
		Nums(&s.nums), Structs(&s.pairs, pairFields), OptBool(&s.ob), StructPtr(&s.ptr, pairFields),
		StructMap(&s.pm, pairFields), Struct(&s.one, pairFields)}
}

func pairFields(p *pair) []Field { return []Field{Str(&p.k), Num(&p.v)} }

func (s *sample) put(w *Writer) { Write(w, s.fields()) }
func (s *sample) get(r *Reader) { Read(r, s.fields()) }

func full() *sample {
	opt, no := uint32(math.MaxUint32), false
	return &sample{
		u: math.MaxUint64, b: true, s: "héllo\x00", blob: []byte{0, 1, 255},
		ss: []string{"", "a", "bc"}, m: map[string]string{"z": "1", "a": "", "": "x"},
		i64: math.MinInt64, u64: math.MaxUint64, u16: math.MaxUint16, r: 'c', p: 1 << 40,
		opt: &opt, nums: []int{-1, 0, math.MaxInt64}, pairs: []pair{{"x", -5}, {"", math.MaxInt32}},
		ob: &no, ptr: &pair{"p", 1}, pm: map[string]pair{"b": {"y", 2}, "a": {}},
		one: pair{"o", 3},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range []*sample{full(), {}} {
		var w Writer
		in.put(&w)
		var out sample
		r := NewReader(w.Bytes())
		out.get(r)
		if err := r.Err(); err != nil {
			t.Fatalf("Err() = %v", err)
		}
		if !reflect.DeepEqual(in, &out) {
			t.Errorf("round trip:\n got %+v\nwant %+v", out, *in)
		}
	}
}

func TestEqualMapsEncodeAlike(t *testing.T) {
	enc := func(m map[string]string) string {
		var w Writer
		Write(&w, []Field{StrMap(&m)})
		return string(w.Bytes())
	}
	m := map[string]string{}
	for _, k := range []string{"q", "w", "e", "r", "t", "y"} {
		m[k] = k
	}
	first := enc(m)
	for range 20 {
		if enc(m) != first {
			t.Fatal("the same map encoded two ways")
		}
	}
}

// Every prefix of a valid encoding is an error, never a panic or a value.
func TestTruncated(t *testing.T) {
	var w Writer
	full().put(&w)
	b := w.Bytes()
	for n := range len(b) {
		var s sample
		r := NewReader(b[:n])
		s.get(r)
		if !errors.Is(r.Err(), ErrShort) {
			t.Errorf("prefix of %d/%d bytes: Err() = %v, want ErrShort", n, len(b), r.Err())
		}
	}
}

func TestBadInput(t *testing.T) {
	var w Writer
	big16 := int64(70000)
	Write(&w, []Field{Num(&big16)})
	v := uint16(1)
	r := NewReader(w.Bytes())
	Read(r, []Field{Num(&v)})
	if v != 0 || r.Err() == nil {
		t.Errorf("70000 read as a uint16 gave %d, Err() = %v", v, r.Err())
	}
	r = NewReader([]byte{2})
	if r.Bool(); r.Err() == nil {
		t.Error("bool byte 2: no error")
	}
	// A length larger than the input must not allocate it.
	var big Writer
	big.Uint(1 << 40)
	r = NewReader(big.Bytes())
	var s []string
	if Read(r, []Field{Strs(&s)}); s != nil || !errors.Is(r.Err(), ErrShort) {
		t.Errorf("huge length: got %d strings, Err() = %v", len(s), r.Err())
	}
	r = NewReader([]byte{1, 2})
	r.Bool()
	if r.Err() == nil {
		t.Error("a byte left over: no error")
	}
	// After an error every read is a zero value.
	r = NewReader(nil)
	n := 5
	r.Uint()
	if Read(r, []Field{Num(&n)}); r.String() != "" || r.Bool() || n != 0 || r.Blob() != nil {
		t.Error("reads after an error returned values")
	}
}
