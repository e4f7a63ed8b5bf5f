package stacks_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxFunctionLines bounds every function of the package: a stack or
// construct reads as a short list of the units it is made of, and each
// unit's resources are found in one screenful.
const maxFunctionLines = 80

// No function in stacks/ (test files aside) is longer than
// maxFunctionLines.
func TestNoFunctionIsLongerThanItsLimit(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var body *ast.BlockStmt
			var what string
			switch fn := n.(type) {
			case *ast.FuncDecl:
				body, what = fn.Body, fn.Name.Name
			case *ast.FuncLit:
				body, what = fn.Body, "a function literal"
			}
			if body == nil {
				return true
			}
			checked++
			lines := fset.Position(n.End()).Line - fset.Position(n.Pos()).Line + 1
			if lines > maxFunctionLines {
				t.Errorf("%s: %s is %d lines long, more than %d: split it into the units it builds", fset.Position(n.Pos()), what, lines, maxFunctionLines)
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no function found: run the test from stacks/")
	}
}
