package childproc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/childproc"
)

func writeExecutable(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProgramFind(t *testing.T) {
	sbin := t.TempDir()
	server := writeExecutable(t, sbin, "fake-server")
	prog := childproc.Program{Name: "fake-server", Env: "ETL_TEST_FAKE_SERVER", Dirs: []string{sbin}, Install: "`apt-get install fake-server`"}

	t.Run("a program outside PATH is found in the system directories", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		got, err := prog.Find()
		if err != nil || got != server {
			t.Fatalf("Find() = %q, %v; want %q", got, err, server)
		}
	})

	t.Run("the environment variable wins over PATH and the system directories", func(t *testing.T) {
		other := writeExecutable(t, t.TempDir(), "elsewhere")
		t.Setenv(prog.Env, other)
		got, err := prog.Find()
		if err != nil || got != other {
			t.Fatalf("Find() = %q, %v; want %q", got, err, other)
		}
	})

	t.Run("an environment variable naming a missing file is an error naming the variable", func(t *testing.T) {
		t.Setenv(prog.Env, filepath.Join(t.TempDir(), "nothing"))
		_, err := prog.Find()
		if err == nil || !strings.Contains(err.Error(), "$"+prog.Env) {
			t.Fatalf("Find() error = %v; want one naming $%s", err, prog.Env)
		}
	})

	t.Run("a missing program is reported with the command that installs it", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		missing := prog
		missing.Dirs = []string{t.TempDir()}
		_, err := missing.Find()
		if !errors.Is(err, childproc.ErrNotFound) {
			t.Fatalf("Find() error = %v; want ErrNotFound", err)
		}
		if !strings.Contains(err.Error(), "`apt-get install fake-server`") || !strings.Contains(err.Error(), "$"+prog.Env) {
			t.Errorf("error %q should name $%s and the install command", err, prog.Env)
		}
	})

	t.Run("a file without execute permission is skipped", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "fake-server"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		noexec := prog
		noexec.Dirs = []string{dir}
		if _, err := noexec.Find(); !errors.Is(err, childproc.ErrNotFound) {
			t.Fatalf("Find() error = %v; want ErrNotFound", err)
		}
	})
}
