package codegen

import (
	"fmt"
	"strings"
)

const jsoncPath = "github.com/lkc-containers/lkc/internal/jsonc"

// json writes, for each struct reachable from roots, its field list:
// fieldsX(v *X) []jsonc.Field, one entry per field in declaration order
// under its json tag, which jsonc.Decode and jsonc.Encode both work from.
func (g *gen) json(roots []*structType) {
	g.use(jsoncPath, "jsonc")
	walk(roots, func(st *structType) {
		entries := make([]string, len(st.fields))
		for i, f := range st.fields {
			entries[i] = g.jsonField(f)
		}
		g.printf("\nfunc fields%s(v *%s) []jsonc.Field {\nreturn []jsonc.Field{%s}\n}\n",
			g.suffix(st), g.typeName(st), strings.Join(entries, ", "))
	})
}

// jsonField is the jsonc.Field of f.
func (g *gen) jsonField(f field) string {
	key, p, omit := fmt.Sprintf("%q", f.key), "&v."+f.goName, fmt.Sprint(f.omitempty)
	t := f.t
	switch t.kind {
	case kString:
		return fmt.Sprintf("jsonc.Str(%s, %s, %s)", key, p, omit)
	case kBool:
		return fmt.Sprintf("jsonc.Bool(%s, %s, %s)", key, p, omit)
	case kInt:
		return fmt.Sprintf("jsonc.Num(%s, %s, %s)", key, p, omit)
	case kMarshaler:
		return fmt.Sprintf("jsonc.Time(%s, %s)", key, p)
	case kStruct:
		return fmt.Sprintf("jsonc.Struct(%s, %s, fields%s)", key, p, g.suffix(t.st))
	}
	of := holder(t)
	if of == "" {
		fail("json: field %s: a %s is not supported", f.goName, t.expr)
	}
	if t.elem.kind == kStruct {
		return fmt.Sprintf("jsonc.%s(%s, %s, %s, fields%s)", of, key, p, omit, g.suffix(t.elem.st))
	}
	return fmt.Sprintf("jsonc.%s(%s, %s, %s)", of, key, p, omit)
}
