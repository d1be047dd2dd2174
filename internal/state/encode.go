package state

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// encode renders s as json.Marshal does, byte for byte (the order of the
// fields, omitempty, escaping, sorted map keys), but without reflection:
// json.Marshal builds an encoder for every config type on its first use,
// 0.3-0.5 ms of every create, and the first save comes before the cgroups
// that init waits for (docs/kernel.md). Other commands and older state
// directories read the file with encoding/json; encode_test.go compares
// the two on every field.
func encode(s *State) ([]byte, error) {
	created, err := s.Created.MarshalJSON()
	if err != nil {
		return nil, err
	}
	o := object{b: make([]byte, 0, 4096)}
	o.str("id", s.ID)
	o.str("bundle", s.Bundle)
	o.str("rootfs", s.Rootfs)
	o.raw("created", created)
	o.str("owner", s.Owner)
	optNum(&o, "initPid", s.InitPid)
	optNum(&o, "initStart", s.InitStart)
	o.optStrMap("cgroupPaths", s.CgroupPaths)
	o.optStrs("cgroupParents", s.CgroupParents)
	optNum(&o, "rootfsMount", s.RootfsMount)
	o.optBool("ownedBundle", s.OwnedBundle)
	o.key("config")
	if s.Config == nil {
		o.b = append(o.b, "null"...)
	} else {
		o.b = appendConfig(o.b, s.Config)
	}
	return o.end(), nil
}

// object writes the members of a JSON object; end closes it.
type object struct {
	b    []byte
	some bool // a member is written
}

// key starts the member name.
func (o *object) key(name string) {
	if o.some {
		o.b = append(o.b, ',')
	} else {
		o.b = append(o.b, '{')
		o.some = true
	}
	o.b = appendString(o.b, name)
	o.b = append(o.b, ':')
}

func (o *object) end() []byte {
	if !o.some {
		return append(o.b, "{}"...)
	}
	return append(o.b, '}')
}

func (o *object) raw(name string, v []byte) {
	o.key(name)
	o.b = append(o.b, v...)
}

func (o *object) str(name, v string) {
	o.key(name)
	o.b = appendString(o.b, v)
}

func (o *object) optStr(name, v string) {
	if v != "" {
		o.str(name, v)
	}
}

func (o *object) boolean(name string, v bool) {
	o.key(name)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *object) optBool(name string, v bool) {
	if v {
		o.boolean(name, v)
	}
}

func (o *object) optBoolPtr(name string, p *bool) {
	if p != nil {
		o.boolean(name, *p)
	}
}

func (o *object) strs(name string, s []string) {
	o.key(name)
	if s == nil {
		o.b = append(o.b, "null"...)
		return
	}
	o.b = append(o.b, '[')
	for i, v := range s {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendString(o.b, v)
	}
	o.b = append(o.b, ']')
}

func (o *object) optStrs(name string, s []string) {
	if len(s) > 0 {
		o.strs(name, s)
	}
}

// optStrMap writes a map of strings with its keys sorted, as
// encoding/json does.
func (o *object) optStrMap(name string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	o.key(name)
	var inner object
	inner.b = o.b
	for _, k := range sortedKeys(m) {
		inner.str(k, m[k])
	}
	o.b = inner.end()
}

type integer interface {
	~int | ~int32 | ~int64 | ~uint | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

func appendNum[T integer](b []byte, v T) []byte {
	if signed := ^T(0) < 0; signed {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendUint(b, uint64(v), 10)
}

func num[T integer](o *object, name string, v T) {
	o.key(name)
	o.b = appendNum(o.b, v)
}

func optNum[T integer](o *object, name string, v T) {
	if v != 0 {
		num(o, name, v)
	}
}

func optNumPtr[T integer](o *object, name string, p *T) {
	if p != nil {
		num(o, name, *p)
	}
}

func optNums[T integer](o *object, name string, s []T) {
	if len(s) == 0 {
		return
	}
	o.key(name)
	o.b = append(o.b, '[')
	for i, v := range s {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendNum(o.b, v)
	}
	o.b = append(o.b, ']')
}

// optSlice writes a non-empty slice of objects, each with elem.
func optSlice[T any](o *object, name string, s []T, elem func([]byte, *T) []byte) {
	if len(s) == 0 {
		return
	}
	o.key(name)
	o.b = append(o.b, '[')
	for i := range s {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = elem(o.b, &s[i])
	}
	o.b = append(o.b, ']')
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
