package testutil

import (
	"fmt"
	"reflect"
)

// Fill sets every field reachable from v to a value that differs from
// field to field and from the zero value, with integers at the far end of
// their range; slices and maps get two elements. A field an encoder
// forgets, or writes in another order than its decoder reads, then fails
// a round trip. Interfaces are left nil. n numbers the values.
func Fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-1<<(v.Type().Bits()-1) + int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(1<<v.Type().Bits() - 1 - uint64(*n))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		Fill(v.Elem(), n)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			Fill(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			Fill(k, n)
			Fill(e, n)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			Fill(v.Field(i), n)
		}
	case reflect.Interface:
	default:
		panic("Fill: no case for " + v.Type().String())
	}
}
