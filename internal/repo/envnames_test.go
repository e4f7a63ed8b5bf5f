package repo_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/repo"
)

// envConst matches the names of constants that hold environment variable
// names (EnvTableName, envDSN).
var envConst = regexp.MustCompile(`^[Ee]nv[A-Z0-9_]`)

// An environment variable name is a contract between a handler and the
// stack that sets it; it is defined once, next to the handler that reads
// it, and referenced everywhere else. Two definitions can drift apart.
func TestEnvironmentVariableNamesAreDefinedOnce(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	defs := map[string][]string{} // variable → "package dir: constant"
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", "testdata", "cdk.out", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) || !envConst.MatchString(name.Name) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue // a reference to another constant
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						return err
					}
					defs[v] = append(defs[v], filepath.ToSlash(dir)+": "+name.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) == 0 {
		t.Fatal("found no environment variable constants; is the scan broken?")
	}
	for v, where := range defs {
		inInternal := slices.ContainsFunc(where, func(w string) bool { return strings.HasPrefix(w, "internal/") })
		if inInternal && len(where) > 1 {
			slices.Sort(where)
			t.Errorf("%s is defined %d times: %s; define it once, next to the handler that reads it", v, len(where), strings.Join(where, ", "))
		}
	}
}
