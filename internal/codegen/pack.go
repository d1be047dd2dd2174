package codegen

import "fmt"

const packPath = "github.com/lkc-containers/lkc/internal/pack"

// pack writes, for each struct of the generated package reachable from
// roots, a packX(w *pack.Writer, v *X) that writes every field in
// declaration order and an unpackX(r *pack.Reader, v *X) that reads them
// back (internal/pack describes the form). A root's are exported
// (PackX, UnpackX), for the packages whose types hold it: a struct of
// another package is written by that package's own.
func (g *gen) pack(roots []*structType) {
	g.use(packPath, "pack")
	isRoot := map[*structType]bool{}
	for _, st := range roots {
		isRoot[st] = true
	}
	g.rootsOf = isRoot
	var local []*structType
	walk(roots, func(st *structType) {
		if st.pkg.path == g.l.out {
			local = append(local, st)
		}
	})
	for _, st := range local {
		put, get := g.packFuncs(st)
		if isRoot[st] {
			g.printf("\n// %s writes v for the init handshake.", put)
		}
		g.printf("\nfunc %s(w *pack.Writer, v *%s) {\n", put, st.name)
		for _, f := range st.fields {
			g.printf("%s\n", g.packValue(f.t, "v."+f.goName))
		}
		g.printf("}\n")
		if isRoot[st] {
			g.printf("\n// %s reads what %s wrote into v, which should be zero.", get, put)
		}
		g.printf("\nfunc %s(r *pack.Reader, v *%s) {\n", get, st.name)
		for _, f := range st.fields {
			g.printf("%s\n", g.unpackValue(f.t, "v."+f.goName))
		}
		g.printf("}\n")
	}
}

// packFuncs names the functions that write and read st.
func (g *gen) packFuncs(st *structType) (put, get string) {
	if st.pkg.path != g.l.out {
		g.use(st.pkg.path, st.pkg.name)
		return st.pkg.name + ".Pack" + st.name, st.pkg.name + ".Unpack" + st.name
	}
	if g.rootsOf[st] {
		return "Pack" + st.name, "Unpack" + st.name
	}
	return "pack" + st.name, "unpack" + st.name
}

// packValue is the statement that writes x.
func (g *gen) packValue(t *typ, x string) string {
	switch t.kind {
	case kString:
		if t.expr != "string" {
			x = "string(" + x + ")"
		}
		return fmt.Sprintf("w.String(%s)", x)
	case kBool:
		return fmt.Sprintf("w.Bool(%s)", x)
	case kInt:
		return fmt.Sprintf("pack.Num(w, %s)", x)
	case kStruct:
		put, _ := g.packFuncs(t.st)
		return fmt.Sprintf("%s(w, &%s)", put, x)
	case kPtr:
		switch t.elem.kind {
		case kInt:
			return fmt.Sprintf("pack.OptNum(w, %s)", x)
		case kBool:
			return fmt.Sprintf("pack.OptBool(w, %s)", x)
		case kStruct:
			put, _ := g.packFuncs(t.elem.st)
			return fmt.Sprintf("pack.Ptr(w, %s, %s)", x, put)
		}
	case kSlice:
		switch {
		case t.bytes:
			return fmt.Sprintf("w.Blob(%s)", x)
		case t.elem.expr == "string":
			return fmt.Sprintf("w.Strings(%s)", x)
		case t.elem.kind == kInt:
			return fmt.Sprintf("pack.Nums(w, %s)", x)
		case t.elem.kind == kStruct:
			put, _ := g.packFuncs(t.elem.st)
			return fmt.Sprintf("pack.Slice(w, %s, %s)", x, put)
		}
	case kMap:
		switch {
		case t.elem.expr == "string":
			return fmt.Sprintf("w.StringMap(%s)", x)
		case t.elem.kind == kStruct:
			put, _ := g.packFuncs(t.elem.st)
			return fmt.Sprintf("pack.Map(w, %s, %s)", x, put)
		}
	}
	fail("pack: a %s is not supported", t.expr)
	return ""
}

// unpackValue is the statement that reads into x what packValue wrote.
func (g *gen) unpackValue(t *typ, x string) string {
	switch t.kind {
	case kString:
		if t.expr != "string" {
			return fmt.Sprintf("%s = %s(r.String())", x, t.expr)
		}
		return fmt.Sprintf("%s = r.String()", x)
	case kBool:
		return fmt.Sprintf("%s = r.Bool()", x)
	case kInt:
		return fmt.Sprintf("%s = pack.ReadNum[%s](r)", x, t.expr)
	case kStruct:
		_, get := g.packFuncs(t.st)
		return fmt.Sprintf("%s(r, &%s)", get, x)
	case kPtr:
		switch t.elem.kind {
		case kInt:
			return fmt.Sprintf("%s = pack.ReadOptNum[%s](r)", x, t.elem.expr)
		case kBool:
			return fmt.Sprintf("%s = pack.ReadOptBool(r)", x)
		case kStruct:
			_, get := g.packFuncs(t.elem.st)
			return fmt.Sprintf("%s = pack.ReadPtr(r, %s)", x, get)
		}
	case kSlice:
		switch {
		case t.bytes:
			return fmt.Sprintf("%s = r.Blob()", x)
		case t.elem.expr == "string":
			return fmt.Sprintf("%s = r.Strings()", x)
		case t.elem.kind == kInt:
			return fmt.Sprintf("%s = pack.ReadNums[%s](r)", x, t.elem.expr)
		case t.elem.kind == kStruct:
			_, get := g.packFuncs(t.elem.st)
			return fmt.Sprintf("%s = pack.ReadSlice(r, %s)", x, get)
		}
	case kMap:
		switch {
		case t.elem.expr == "string":
			return fmt.Sprintf("%s = r.StringMap()", x)
		case t.elem.kind == kStruct:
			_, get := g.packFuncs(t.elem.st)
			return fmt.Sprintf("%s = pack.ReadMap(r, %s)", x, get)
		}
	}
	fail("pack: a %s is not supported", t.expr)
	return ""
}
