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
}

type pair struct {
	k string
	v int32
}

func (s *sample) put(w *Writer) {
	w.Uint(s.u)
	w.Bool(s.b)
	w.String(s.s)
	w.Blob(s.blob)
	w.Strings(s.ss)
	w.StringMap(s.m)
	Num(w, s.i64)
	Num(w, s.u64)
	Num(w, s.u16)
	Num(w, s.r)
	Num(w, s.p)
	OptNum(w, s.opt)
	OptNum(w, s.none)
	Nums(w, s.nums)
	Slice(w, s.pairs, putPair)
	OptBool(w, s.ob)
	Ptr(w, s.ptr, putPair)
	Map(w, s.pm, putPair)
}

func putPair(w *Writer, p *pair) {
	w.String(p.k)
	Num(w, p.v)
}

func getPair(r *Reader, p *pair) {
	p.k = r.String()
	p.v = ReadNum[int32](r)
}

func (s *sample) get(r *Reader) {
	s.u = r.Uint()
	s.b = r.Bool()
	s.s = r.String()
	s.blob = r.Blob()
	s.ss = r.Strings()
	s.m = r.StringMap()
	s.i64 = ReadNum[int64](r)
	s.u64 = ReadNum[uint64](r)
	s.u16 = ReadNum[uint16](r)
	s.r = ReadNum[rune](r)
	s.p = ReadNum[uintptr](r)
	s.opt = ReadOptNum[uint32](r)
	s.none = ReadOptNum[int](r)
	s.nums = ReadNums[int](r)
	s.pairs = ReadSlice(r, getPair)
	s.ob = ReadOptBool(r)
	s.ptr = ReadPtr(r, getPair)
	s.pm = ReadMap(r, getPair)
}

func full() *sample {
	opt, no := uint32(math.MaxUint32), false
	return &sample{
		u: math.MaxUint64, b: true, s: "héllo\x00", blob: []byte{0, 1, 255},
		ss: []string{"", "a", "bc"}, m: map[string]string{"z": "1", "a": "", "": "x"},
		i64: math.MinInt64, u64: math.MaxUint64, u16: math.MaxUint16, r: 'c', p: 1 << 40,
		opt: &opt, nums: []int{-1, 0, math.MaxInt64}, pairs: []pair{{"x", -5}, {"", math.MaxInt32}},
		ob: &no, ptr: &pair{"p", 1}, pm: map[string]pair{"b": {"y", 2}, "a": {}},
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
		w.StringMap(m)
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
	Num(&w, int64(70000))
	if v := ReadNum[uint16](NewReader(w.Bytes())); v != 0 {
		t.Errorf("70000 read as a uint16 gave %d", v)
	}
	r := NewReader(w.Bytes())
	ReadNum[uint16](r)
	if r.Err() == nil {
		t.Error("70000 read as a uint16: no error")
	}
	r = NewReader([]byte{2})
	if r.Bool(); r.Err() == nil {
		t.Error("bool byte 2: no error")
	}
	// A length larger than the input must not allocate it.
	var big Writer
	big.Uint(1 << 40)
	r = NewReader(big.Bytes())
	if s := r.Strings(); s != nil || !errors.Is(r.Err(), ErrShort) {
		t.Errorf("huge length: got %d strings, Err() = %v", len(s), r.Err())
	}
	r = NewReader([]byte{1, 2})
	r.Bool()
	if r.Err() == nil {
		t.Error("a byte left over: no error")
	}
	// After an error every read is a zero value.
	r = NewReader(nil)
	if r.Uint(); r.String() != "" || r.Bool() || ReadNum[int](r) != 0 || r.Blob() != nil {
		t.Error("reads after an error returned values")
	}
}
