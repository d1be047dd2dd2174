package codegen

import (
	"fmt"
	"strconv"
	"strings"
)

const jsoncPath = "github.com/lkc-containers/lkc/internal/jsonc"

// jsonDecode writes, for each struct reachable from roots, its keys and a
// decodeX(d *jsonc.Decoder, v *X) that fills v from an object by them.
func (g *gen) jsonDecode(roots []*structType) {
	g.use(jsoncPath, "jsonc")
	walk(roots, func(st *structType) {
		suffix := g.suffix(st)
		keys := make([]string, len(st.fields))
		for i, f := range st.fields {
			keys[i] = strconv.Quote(f.key)
		}
		g.printf("\nvar keys%s = []string{%s}\n", suffix, strings.Join(keys, ", "))
		g.printf("\nfunc decode%s(d *jsonc.Decoder, v *%s) {\n", suffix, g.typeName(st))
		g.printf("d.Object(keys%s, func(i int) {\nswitch i {\n", suffix)
		for i, f := range st.fields {
			g.printf("case %d:\n%s\n", i, g.decodeValue(f.t, "&v."+f.goName))
		}
		g.printf("}\n})\n}\n")
	})
}

// decodeValue is the statement that decodes the next value into *p.
func (g *gen) decodeValue(t *typ, p string) string {
	switch t.kind {
	case kMarshaler:
		return fmt.Sprintf("jsonc.Unmarshaler(d, %s)", p)
	case kPtr:
		return fmt.Sprintf("jsonc.Ptr(d, %s, %s)", p, g.decodeFunc(t.elem))
	case kSlice:
		return fmt.Sprintf("jsonc.Slice(d, %s, %s)", p, g.decodeFunc(t.elem))
	case kMap:
		return fmt.Sprintf("jsonc.Map(d, %s, %s)", p, g.decodeFunc(t.elem))
	}
	return fmt.Sprintf("%s(d, %s)", g.decodeFunc(t), p)
}

// decodeFunc is the function that decodes a value of t.
func (g *gen) decodeFunc(t *typ) string {
	switch t.kind {
	case kString:
		return "jsonc.Str"
	case kBool:
		return "jsonc.Bool"
	case kInt:
		return "jsonc.Num"
	case kStruct:
		return "decode" + g.suffix(t.st)
	}
	fail("json: a %s inside a pointer, slice or map is not supported", t.expr)
	return ""
}

// jsonEncode writes, for each struct reachable from roots, an
// encodeX(e *jsonc.Encoder, v *X) that writes v as json.Marshal does.
func (g *gen) jsonEncode(roots []*structType) {
	g.use(jsoncPath, "jsonc")
	walk(roots, func(st *structType) {
		g.printf("\nfunc encode%s(e *jsonc.Encoder, v *%s) {\ne.Open()\n", g.suffix(st), g.typeName(st))
		for _, f := range st.fields {
			x := "v." + f.goName
			write := fmt.Sprintf("e.Key(%q)\n%s", f.key, g.encodeValue(f.t, x, f.omitempty))
			if cond := omitCond(f.t, x); f.omitempty && cond != "" {
				write = fmt.Sprintf("if %s {\n%s\n}", cond, write)
			}
			g.printf("%s\n", write)
		}
		g.printf("e.Close()\n}\n")
	})
}

// omitCond is when omitempty keeps a field of t: not "" (a struct is
// always written).
func omitCond(t *typ, x string) string {
	switch t.kind {
	case kString:
		return x + ` != ""`
	case kBool:
		return x
	case kInt:
		return x + " != 0"
	case kPtr:
		return x + " != nil"
	case kSlice, kMap:
		return "len(" + x + ") != 0"
	}
	return ""
}

// encodeValue is the statement that writes x; nonNil says a pointer is
// known to be set.
func (g *gen) encodeValue(t *typ, x string, nonNil bool) string {
	switch t.kind {
	case kString:
		return fmt.Sprintf("jsonc.WriteStr(e, %s)", x)
	case kBool:
		return fmt.Sprintf("e.Bool(%s)", x)
	case kInt:
		return fmt.Sprintf("jsonc.WriteNum(e, %s)", x)
	case kMarshaler:
		return fmt.Sprintf("e.Marshaler(%s)", x)
	case kStruct:
		return fmt.Sprintf("encode%s(e, &%s)", g.suffix(t.st), x)
	case kPtr:
		value := g.encodeValue(t.elem, "*"+x, false)
		if t.elem.kind == kStruct {
			value = fmt.Sprintf("encode%s(e, %s)", g.suffix(t.elem.st), x)
		}
		if nonNil {
			return value
		}
		return fmt.Sprintf("if %s == nil {\ne.Null()\n} else {\n%s\n}", x, value)
	case kSlice:
		switch {
		case t.bytes:
		case t.elem.kind == kString:
			return fmt.Sprintf("jsonc.WriteStrs(e, %s)", x)
		case t.elem.kind == kInt:
			return fmt.Sprintf("jsonc.WriteNums(e, %s)", x)
		case t.elem.kind == kStruct:
			return fmt.Sprintf("jsonc.WriteSlice(e, %s, encode%s)", x, g.suffix(t.elem.st))
		}
	case kMap:
		switch t.elem.kind {
		case kString:
			return fmt.Sprintf("jsonc.WriteStrMap(e, %s)", x)
		case kStruct:
			return fmt.Sprintf("jsonc.WriteMap(e, %s, encode%s)", x, g.suffix(t.elem.st))
		}
	}
	fail("json: encoding a %s is not supported", t.expr)
	return ""
}
