package app_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/orgservice/orgservice/"

// layers says what each package may not depend on, directly or through
// another package: the domain in the middle imports no transport, driver or
// storage; the HTTP layer and the domains around it import no driver; the
// error vocabulary is a leaf. A rule names a package path, or a prefix
// ending in "/".
var layers = map[string][]string{
	"internal/errs": {module, "go.mongodb.org/", "net/http", "github.com/"},
	"internal/org": {
		"go.mongodb.org/", "net/http", "github.com/go-chi/",
		module + "internal/mongostore", module + "internal/httpapi", module + "internal/directory",
		module + "internal/document", module + "internal/auth", module + "internal/app",
		module + "internal/metrics", module + "internal/embeddb", module + "internal/config",
	},
	"internal/document": {"go.mongodb.org/", "net/http", module + "internal/mongostore", module + "internal/httpapi", module + "internal/app"},
	"internal/auth":     {"go.mongodb.org/", "net/http", module + "internal/mongostore", module + "internal/httpapi", module + "internal/app"},
	"internal/directory": {"go.mongodb.org/", "net/http", module + "internal/mongostore", module + "internal/httpapi",
		module + "internal/document", module + "internal/auth", module + "internal/app"},
	"internal/httpapi": {"go.mongodb.org/", module + "internal/mongostore", module + "internal/embeddb", module + "internal/app"},
	// The client speaks only the public API, so that orgbench can target
	// another implementation; the process helper knows no service internals.
	"internal/apiclient":  {module + "internal/"},
	"internal/procs":      {module + "internal/"},
	"internal/mongostore": {module + "internal/httpapi", module + "internal/app", module + "internal/directory", module + "internal/auth"},
}

// TestLayering checks the import graph of the service's packages against
// layers: a package that reaches what its layer forbids fails the test, and
// `make lint`.
func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		deps[strings.TrimPrefix(f[0], module)] = f[1:]
	}
	for pkg, forbidden := range layers {
		ds, ok := deps[pkg]
		if !ok {
			t.Errorf("%s: no such package (a rule for a package that moved?)", pkg)
			continue
		}
		for _, d := range ds {
			for _, f := range forbidden {
				if d == f || strings.HasSuffix(f, "/") && strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s, which its layer forbids (%s)", pkg, d, f)
				}
			}
		}
	}
}

// maxMethods is the most exported methods a type under internal/ may have:
// a store type with dozens is a sign that two owners share one thing.
const maxMethods = 25

// TestNoTypeOwnsTooMuch counts each type's exported methods under internal/.
func TestNoTypeOwnsTooMuch(t *testing.T) {
	methods := map[string]int{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || !fn.Name.IsExported() {
				continue
			}
			typ := fn.Recv.List[0].Type
			if star, ok := typ.(*ast.StarExpr); ok {
				typ = star.X
			}
			if idx, ok := typ.(*ast.IndexExpr); ok { // a generic type
				typ = idx.X
			}
			if id, ok := typ.(*ast.Ident); ok {
				methods[filepath.Dir(path)+"."+id.Name]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(methods) == 0 {
		t.Fatal("no methods found: the walk is broken")
	}
	for typ, n := range methods {
		if n > maxMethods {
			t.Errorf("%s has %d exported methods (at most %d): split it by what it stores or serves", typ, n, maxMethods)
		}
	}
}
