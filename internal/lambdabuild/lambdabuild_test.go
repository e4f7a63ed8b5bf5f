package lambdabuild_test

import (
	"context"
	"debug/elf"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/lambdabuild"
)

// copyFixture copies testdata/module into a temporary directory, so tests
// can change files and times without touching the repository, and sets
// every file's time to an hour ago.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	past := time.Now().Add(-time.Hour)
	err := filepath.WalkDir("testdata/module", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("testdata/module", path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		return os.Chtimes(target, past, past)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func build(t *testing.T, module string) lambdabuild.Result {
	t.Helper()
	results, err := lambdabuild.Builder{ModuleDir: module, OutDir: "build/lambdas"}.Build(context.Background(), "hello")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 {
		t.Fatalf("got %d results, want 1", len(results))
	}
	return results[0]
}

// touch sets a file's time to now, as an edit would.
func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); os.IsNotExist(err) {
		if err := os.WriteFile(path, []byte("package x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Add(time.Second)
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
}

func TestFunctionsListsOnlyFoldersWithGoCode(t *testing.T) {
	module := copyFixture(t)
	touch(t, filepath.Join(module, "lambdas", "onlytests", "x_test.go"))

	got, err := lambdabuild.Functions(module)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hello", "nested"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Functions = %v, want %v", got, want)
	}
}

// A function in a tree of its own (<tree>/lambdas/<name>) is built like
// one under lambdas/, so deleting the tree is all it takes to remove it.
func TestBuildFindsFunctionsInTheirOwnTree(t *testing.T) {
	module := copyFixture(t)
	results, err := lambdabuild.Builder{ModuleDir: module, OutDir: "out"}.Build(context.Background(), "nested")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || !results[0].Built {
		t.Fatalf("results = %+v, want nested built", results)
	}
	if _, err := os.Stat(filepath.Join(module, "out", "nested", lambdabuild.BinaryName)); err != nil {
		t.Error(err)
	}
}

// Two functions of the same name would overwrite each other's binary.
func TestFunctionsRefusesTwoFunctionsOfTheSameName(t *testing.T) {
	module := copyFixture(t)
	touch(t, filepath.Join(module, "legacy", "lambdas", "hello", "main.go"))
	if _, err := lambdabuild.Functions(module); err == nil || !strings.Contains(err.Error(), `"hello"`) {
		t.Errorf("Functions = %v, want an error naming the function", err)
	}
}

func TestFunctionsOfAModuleWithoutLambdasIsEmpty(t *testing.T) {
	got, err := lambdabuild.Functions(t.TempDir())
	if err != nil || len(got) != 0 {
		t.Errorf("Functions = %v, %v; want none, no error", got, err)
	}
}

func TestBuildProducesAStaticArm64Bootstrap(t *testing.T) {
	module := copyFixture(t)
	r := build(t, module)

	if !r.Built {
		t.Error("first build reported the binary as up to date")
	}
	if want := filepath.Join(module, "build", "lambdas", "hello"); r.Dir != want {
		t.Errorf("Dir = %s, want %s", r.Dir, want)
	}
	f, err := elf.Open(filepath.Join(r.Dir, lambdabuild.BinaryName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("machine = %v, want %v", f.Machine, elf.EM_AARCH64)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary is dynamically linked; provided.al2023 needs CGO_ENABLED=0")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table; -ldflags \"-s -w\" should strip it")
	}
	if _, err := os.Stat(filepath.Join(r.Dir, lambdabuild.BinaryName+".tmp")); !os.IsNotExist(err) {
		t.Error("temporary output left behind")
	}
}

func TestBuildSkipsOrRebuildsByFreshness(t *testing.T) {
	tests := []struct {
		name    string
		change  string // file touched after the first build, relative to the module
		rebuilt bool
	}{
		{"nothing changed so the binary is reused", "", false},
		{"the function's own source changed", "lambdas/hello/main.go", true},
		{"a package it may import changed", "internal/greet/greet.go", true},
		{"go.mod changed", "go.mod", true},
		{"go.sum changed", "go.sum", true},
		{"a test fixture changed, which no build compiles", "internal/greet/testdata/x.go", false},
		{"a hidden folder changed", ".cache/x.go", false},
		{"a non-Go file changed", "lambdas/docsonly/README.md", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			module := copyFixture(t)
			build(t, module)
			if tt.change != "" {
				touch(t, filepath.Join(module, tt.change))
			}
			if got := build(t, module).Built; got != tt.rebuilt {
				t.Errorf("Built = %v, want %v", got, tt.rebuilt)
			}
		})
	}
}

func TestBuildReportsCompilerErrors(t *testing.T) {
	module := copyFixture(t)
	broken := filepath.Join(module, "lambdas", "hello", "main.go")
	if err := os.WriteFile(broken, []byte("package main\n\nfunc main() { undefinedName() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := lambdabuild.Builder{ModuleDir: module, OutDir: "out"}.Build(context.Background(), "hello")
	if err == nil || !strings.Contains(err.Error(), "undefinedName") {
		t.Fatalf("error = %v, want the compiler's message naming undefinedName", err)
	}
	if _, statErr := os.Stat(filepath.Join(module, "out", "hello", lambdabuild.BinaryName)); !os.IsNotExist(statErr) {
		t.Error("a failed build left a bootstrap behind")
	}
}

func TestBuildRejectsNamesThatAreNotFolders(t *testing.T) {
	for _, name := range []string{"", "..", "a/b", `a\b`} {
		t.Run("name "+name, func(t *testing.T) {
			_, err := lambdabuild.Builder{ModuleDir: t.TempDir(), OutDir: "out"}.Build(context.Background(), name)
			if err == nil {
				t.Errorf("Build(%q) succeeded", name)
			}
		})
	}
}
