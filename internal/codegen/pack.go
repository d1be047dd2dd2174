package codegen

import (
	"fmt"
	"strings"
)

const packPath = "github.com/lkc-containers/lkc/internal/pack"

// pack writes, for each struct of the generated package reachable from
// roots, its field list for internal/pack: packFieldsX(v *X) []pack.Field,
// every field in declaration order, which pack.Write and pack.Read both
// work from. A root's is exported (PackFieldsX) for the packages whose
// types hold it: a struct of another package is listed by that package's.
func (g *gen) pack(roots []*structType) {
	g.use(packPath, "pack")
	g.rootsOf = map[*structType]bool{}
	for _, st := range roots {
		g.rootsOf[st] = true
	}
	walk(roots, func(st *structType) {
		if st.pkg.path != g.l.out {
			return
		}
		entries := make([]string, len(st.fields))
		for i, f := range st.fields {
			entries[i] = g.packField(f)
		}
		name := g.packFields(st)
		if g.rootsOf[st] {
			g.printf("\n// %s lists the fields of a %s as the init handshake carries them.", name, st.name)
		}
		g.printf("\nfunc %s(v *%s) []pack.Field {\nreturn []pack.Field{%s}\n}\n", name, st.name, strings.Join(entries, ", "))
	})
}

// packFields names the function that lists st's fields.
func (g *gen) packFields(st *structType) string {
	switch {
	case st.pkg.path != g.l.out:
		g.use(st.pkg.path, st.pkg.name)
		return st.pkg.name + ".PackFields" + st.name
	case g.rootsOf[st]:
		return "PackFields" + st.name
	}
	return "packFields" + st.name
}

// packField is the pack.Field of f.
func (g *gen) packField(f field) string {
	p, t := "&v."+f.goName, f.t
	switch t.kind {
	case kString:
		return fmt.Sprintf("pack.Str(%s)", p)
	case kBool:
		return fmt.Sprintf("pack.Bool(%s)", p)
	case kInt:
		return fmt.Sprintf("pack.Num(%s)", p)
	case kStruct:
		return fmt.Sprintf("pack.Struct(%s, %s)", p, g.packFields(t.st))
	}
	if t.bytes {
		return fmt.Sprintf("pack.Blob(%s)", p)
	}
	of := holder(t)
	if of == "" {
		fail("pack: field %s: a %s is not supported", f.goName, t.expr)
	}
	if t.elem.kind == kStruct {
		return fmt.Sprintf("pack.%s(%s, %s)", of, p, g.packFields(t.elem.st))
	}
	return fmt.Sprintf("pack.%s(%s)", of, p)
}
