// Package lambdabuild builds the project's Go Lambda functions into the
// layout the CDK stacks deploy: <out>/<name>/bootstrap, a static linux/arm64
// executable for the provided.al2023 runtime.
//
// It is the one way the functions are built: `make lambdas`
// (cmd/buildlambdas) and `cdk synth` (cmd/cdk) both call it, so a fresh clone
// synthesizes with no manual step. A function whose binary is newer than
// every Go source file of the module and go.mod/go.sum is not rebuilt, which
// keeps a warm synth fast.
package lambdabuild

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FunctionsDir is where each function's main package lives, relative to the
// module root: lambdas/<name>, or <tree>/lambdas/<name> for the functions of
// a part of the project gathered in its own tree (such as kda/, the legacy
// KDA SQL path), so that deleting the tree removes its functions.
const FunctionsDir = "lambdas"

// functionDirPatterns are the globs, relative to the module root, of the
// folders that may hold a function's main package.
var functionDirPatterns = []string{FunctionsDir + "/*", "*/" + FunctionsDir + "/*"}

// BinaryName is the executable name the provided.* runtimes start.
const BinaryName = "bootstrap"

// Builder builds functions of the Go module rooted at ModuleDir into OutDir.
type Builder struct {
	ModuleDir string // directory holding go.mod
	OutDir    string // binaries go to OutDir/<name>/bootstrap; relative to ModuleDir unless absolute
	GoCommand string // "go" when empty
}

// Result says where a function's binary is and whether this call built it.
type Result struct {
	Name  string
	Dir   string // the directory holding bootstrap: the Lambda asset
	Built bool   // false when the existing binary was up to date
}

// Functions lists the functions of the module at moduleDir: the folders
// lambdas/<name> and <tree>/lambdas/<name> that hold non-test Go files,
// sorted by name.
func Functions(moduleDir string) ([]string, error) {
	dirs, err := functionDirs(moduleDir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(dirs))
	for name := range dirs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// functionDirs maps each function's name to its folder, relative to the
// module root and slash-separated. Two functions of the same name are an
// error: both would be built into <out>/<name>.
func functionDirs(moduleDir string) (map[string]string, error) {
	dirs := map[string]string{}
	for _, pattern := range functionDirPatterns {
		matches, err := filepath.Glob(filepath.Join(moduleDir, pattern))
		if err != nil {
			return nil, fmt.Errorf("list functions: %w", err)
		}
		for _, dir := range matches {
			if info, err := os.Stat(dir); err != nil || !info.IsDir() {
				continue
			}
			files, err := filepath.Glob(filepath.Join(dir, "*.go"))
			if err != nil {
				return nil, fmt.Errorf("list functions: %w", err)
			}
			if !slices.ContainsFunc(files, func(f string) bool { return !strings.HasSuffix(f, "_test.go") }) {
				continue
			}
			rel, err := filepath.Rel(moduleDir, dir)
			if err != nil {
				return nil, fmt.Errorf("list functions: %w", err)
			}
			name := filepath.Base(dir)
			if other, dup := dirs[name]; dup {
				return nil, fmt.Errorf("list functions: %s and %s are both function %q", other, filepath.ToSlash(rel), name)
			}
			dirs[name] = filepath.ToSlash(rel)
		}
	}
	return dirs, nil
}

// Build builds the named functions, skipping those whose binary is up to
// date, and returns one Result per name in the order given.
func (b Builder) Build(ctx context.Context, names ...string) ([]Result, error) {
	outDir := b.OutDir
	if !filepath.IsAbs(outDir) {
		outDir = filepath.Join(b.ModuleDir, outDir)
	}
	newest, err := newestSource(b.ModuleDir, outDir)
	if err != nil {
		return nil, err
	}
	dirs, err := functionDirs(b.ModuleDir)
	if err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(names))
	for _, name := range names {
		if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
			return nil, fmt.Errorf("build %q: not a function name", name)
		}
		dir := filepath.Join(outDir, name)
		bin := filepath.Join(dir, BinaryName)
		if info, err := os.Stat(bin); err == nil && info.ModTime().After(newest) {
			results = append(results, Result{Name: name, Dir: dir})
			continue
		}
		src, ok := dirs[name]
		if !ok {
			return nil, fmt.Errorf("build %q: no function of that name under %s", name, strings.Join(functionDirPatterns, " or "))
		}
		if err := b.compile(ctx, name, src, bin); err != nil {
			return nil, err
		}
		results = append(results, Result{Name: name, Dir: dir, Built: true})
	}
	return results, nil
}

// compile runs go build into a temporary file and renames it into place, so
// an interrupted build never leaves a fresh-looking partial binary.
func (b Builder) compile(ctx context.Context, name, src, bin string) error {
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	tmp := bin + ".tmp"
	goCmd := b.GoCommand
	if goCmd == "" {
		goCmd = "go"
	}
	// -trimpath and -buildvcs=false make the binary, and so the asset hash
	// CDK derives from it, the same on every machine with the same toolchain.
	cmd := exec.CommandContext(ctx, goCmd, "build",
		"-tags", "lambda.norpc",
		"-trimpath",
		"-buildvcs=false",
		"-ldflags", "-s -w",
		"-o", tmp,
		"./"+src)
	cmd.Dir = b.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("build %s: %w\n%s", name, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	return nil
}

// skippedDirs never hold sources of the module's packages.
var skippedDirs = map[string]bool{"node_modules": true, "cdk.out": true, "testdata": true}

// newestSource returns the latest modification time of the module's Go
// files, go.mod and go.sum. Hidden directories, build output and testdata
// are skipped: none of them is compiled into a function.
func newestSource(moduleDir, outDir string) (time.Time, error) {
	var newest time.Time
	absOut, err := filepath.Abs(outDir)
	if err != nil {
		return newest, fmt.Errorf("scan sources: %w", err)
	}
	err = filepath.WalkDir(moduleDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == moduleDir {
				return nil
			}
			name := d.Name()
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || skippedDirs[name] {
				return filepath.SkipDir
			}
			if abs, err := filepath.Abs(path); err == nil && abs == absOut {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !strings.HasSuffix(name, ".go") && (path != filepath.Join(moduleDir, "go.mod") && path != filepath.Join(moduleDir, "go.sum")) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		return nil
	})
	if err != nil {
		return newest, fmt.Errorf("scan sources: %w", err)
	}
	return newest, nil
}
