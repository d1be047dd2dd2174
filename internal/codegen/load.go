package codegen

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// The kinds of value a codec writes; every field's type is one of them.
type kind int

const (
	kString kind = iota
	kBool
	kInt
	kStruct
	kPtr
	kSlice
	kMap
	kMarshaler // time.Time: its own MarshalJSON and UnmarshalJSON
)

// typ is a field's type as the codecs see it.
type typ struct {
	kind  kind
	expr  string      // the Go type in the generated file, for conversions
	elem  *typ        // of kPtr, kSlice and kMap (keys are strings)
	st    *structType // of kStruct
	bytes bool        // []byte
}

// structType is a named struct type and its fields, in the order
// encoding/json takes them (an embedded struct's at its place).
type structType struct {
	pkg    *pkg
	name   string
	fields []field
}

type field struct {
	goName    string
	key       string // the json tag's name, or goName
	omitempty bool
	t         *typ
}

// pkg is a parsed package: its type declarations and, per file, what its
// imports are called.
type pkg struct {
	path, name string
	types      map[string]*ast.TypeSpec
	imports    map[*ast.TypeSpec]map[string]string // name → path, in the file of the spec
}

// loader reads packages from source: those of the module from its tree,
// others from where `go list` finds them.
type loader struct {
	modRoot, modPath string
	out              string // the path of the package the code is for
	pkgs             map[string]*pkg
	structs          map[string]*structType // by path.name
	skip             map[string]bool        // Type.Field of the generated package's roots to leave out
}

// newLoader finds the module holding dir.
func newLoader(dir string) (*loader, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root := abs
	for {
		data, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err == nil {
			l := &loader{modRoot: root, pkgs: map[string]*pkg{}, structs: map[string]*structType{}, skip: map[string]bool{}}
			for _, line := range strings.Split(string(data), "\n") {
				if rest, ok := strings.CutPrefix(line, "module "); ok {
					l.modPath = strings.TrimSpace(rest)
				}
			}
			rel, err := filepath.Rel(root, abs)
			if err != nil {
				return nil, err
			}
			l.out = l.modPath + "/" + filepath.ToSlash(rel)
			return l, nil
		}
		if filepath.Dir(root) == root {
			return nil, fmt.Errorf("no go.mod above %s", abs)
		}
		root = filepath.Dir(root)
	}
}

// dir returns where the source of package path is.
func (l *loader) dir(path string) (string, error) {
	if rel, ok := strings.CutPrefix(path, l.modPath+"/"); ok {
		return filepath.Join(l.modRoot, filepath.FromSlash(rel)), nil
	}
	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", path)
	cmd.Dir = l.modRoot
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list %s: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// load parses the package at path (not its tests nor generated files).
func (l *loader) load(path string) (*pkg, error) {
	if p, ok := l.pkgs[path]; ok {
		return p, nil
	}
	dir, err := l.dir(path)
	if err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	p := &pkg{path: path, types: map[string]*ast.TypeSpec{}, imports: map[*ast.TypeSpec]map[string]string{}}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, "_gen.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		p.name = f.Name.Name
		imports := map[string]string{}
		for _, imp := range f.Imports {
			ipath, _ := strconv.Unquote(imp.Path.Value)
			iname := ipath[strings.LastIndex(ipath, "/")+1:]
			if imp.Name != nil {
				iname = imp.Name.Name
			}
			imports[iname] = ipath
		}
		for _, decl := range f.Decls {
			if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, spec := range g.Specs {
					ts := spec.(*ast.TypeSpec)
					p.types[ts.Name.Name] = ts
					p.imports[ts] = imports
				}
			}
		}
	}
	if p.name == "" {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	l.pkgs[path] = p
	return p, nil
}

// root resolves a root type named "Name" (of the generated package) or
// "import/path.Name".
func (l *loader) root(name string) (*structType, error) {
	path, typeName := l.out, name
	if i := strings.LastIndex(name, "."); i >= 0 {
		path, typeName = name[:i], name[i+1:]
	}
	t, err := l.named(path, typeName)
	if err != nil {
		return nil, err
	}
	if t.kind != kStruct {
		return nil, fmt.Errorf("%s is not a struct", name)
	}
	return t.st, nil
}

// named resolves the type typeName declared in package path.
func (l *loader) named(path, typeName string) (*typ, error) {
	switch path + "." + typeName {
	case "time.Time":
		return &typ{kind: kMarshaler, expr: "time.Time"}, nil
	case "os.FileMode", "io/fs.FileMode":
		return &typ{kind: kInt, expr: "uint32"}, nil
	}
	p, err := l.load(path)
	if err != nil {
		return nil, err
	}
	ts, ok := p.types[typeName]
	if !ok {
		return nil, fmt.Errorf("no type %s in %s", typeName, path)
	}
	qual := ""
	if path != l.out {
		qual = p.name + "."
	}
	if st, ok := ts.Type.(*ast.StructType); ok {
		return l.structOf(p, ts, st, qual+typeName)
	}
	t, err := l.resolve(p, ts, ts.Type)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", p.name, typeName, err)
	}
	named := *t
	named.expr = qual + typeName
	return &named, nil
}

// structOf makes the structType of a declaration, once.
func (l *loader) structOf(p *pkg, ts *ast.TypeSpec, st *ast.StructType, expr string) (*typ, error) {
	key := p.path + "." + ts.Name.Name
	if s, ok := l.structs[key]; ok {
		return &typ{kind: kStruct, expr: expr, st: s}, nil
	}
	s := &structType{pkg: p, name: ts.Name.Name}
	l.structs[key] = s // before the fields: a type may refer to itself
	fields, err := l.fields(p, ts, st)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", p.name, ts.Name.Name, err)
	}
	s.fields = fields
	return &typ{kind: kStruct, expr: expr, st: s}, nil
}

// fields lists the fields encoding/json sees: exported, not tagged "-",
// with an untagged embedded struct's fields in its place.
func (l *loader) fields(p *pkg, ts *ast.TypeSpec, st *ast.StructType) ([]field, error) {
	var out []field
	for _, f := range st.Fields.List {
		tag := ""
		if f.Tag != nil {
			raw, _ := strconv.Unquote(f.Tag.Value)
			tag = reflect.StructTag(raw).Get("json")
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if opts != "" && opts != "omitempty" {
			return nil, fmt.Errorf("json tag option %q is not supported", opts)
		}
		if len(f.Names) == 0 && name == "" {
			t, err := l.resolve(p, ts, f.Type)
			if err != nil {
				return nil, err
			}
			if t.kind != kStruct {
				return nil, fmt.Errorf("embedded %s is not a struct", t.expr)
			}
			out = append(out, t.st.fields...)
			continue
		}
		for _, id := range f.Names {
			if !id.IsExported() || l.skip[ts.Name.Name+"."+id.Name] {
				continue
			}
			t, err := l.resolve(p, ts, f.Type)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", id.Name, err)
			}
			key := name
			if key == "" {
				key = id.Name
			}
			out = append(out, field{goName: id.Name, key: key, omitempty: opts == "omitempty", t: t})
		}
	}
	return out, nil
}

// basic are the predeclared types a field may have.
var basic = map[string]kind{
	"string": kString, "bool": kBool,
	"int": kInt, "int8": kInt, "int16": kInt, "int32": kInt, "int64": kInt, "rune": kInt,
	"uint": kInt, "uint8": kInt, "uint16": kInt, "uint32": kInt, "uint64": kInt, "uintptr": kInt, "byte": kInt,
}

// resolve turns a type expression of a declaration in p into a typ.
func (l *loader) resolve(p *pkg, ts *ast.TypeSpec, e ast.Expr) (*typ, error) {
	switch e := e.(type) {
	case *ast.Ident:
		if k, ok := basic[e.Name]; ok {
			return &typ{kind: k, expr: e.Name}, nil
		}
		return l.named(p.path, e.Name)
	case *ast.SelectorExpr:
		x, _ := e.X.(*ast.Ident)
		if x == nil || p.imports[ts][x.Name] == "" {
			return nil, fmt.Errorf("unknown package in %s", types(e))
		}
		return l.named(p.imports[ts][x.Name], e.Sel.Name)
	case *ast.StarExpr:
		elem, err := l.resolve(p, ts, e.X)
		if err != nil {
			return nil, err
		}
		return &typ{kind: kPtr, expr: "*" + elem.expr, elem: elem}, nil
	case *ast.ArrayType:
		if e.Len != nil {
			return nil, fmt.Errorf("arrays are not supported")
		}
		elem, err := l.resolve(p, ts, e.Elt)
		if err != nil {
			return nil, err
		}
		return &typ{kind: kSlice, expr: "[]" + elem.expr, elem: elem, bytes: elem.expr == "byte" || elem.expr == "uint8"}, nil
	case *ast.MapType:
		if k, ok := e.Key.(*ast.Ident); !ok || k.Name != "string" {
			return nil, fmt.Errorf("map keys other than string are not supported")
		}
		elem, err := l.resolve(p, ts, e.Value)
		if err != nil {
			return nil, err
		}
		return &typ{kind: kMap, expr: "map[string]" + elem.expr, elem: elem}, nil
	}
	return nil, fmt.Errorf("type %s is not supported", types(e))
}

// types names an expression for an error.
func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	}
	return fmt.Sprintf("%T", e)
}
