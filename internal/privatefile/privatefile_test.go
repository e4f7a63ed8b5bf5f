package privatefile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/privatefile"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestWrite(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}

	t.Run("a new file is 0600 even with umask 0", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dump.json")
		if err := privatefile.Write(path, write("[]")); err != nil {
			t.Fatal(err)
		}
		if m := mode(t, path); m != 0o600 {
			t.Errorf("mode %v, want -rw-------", m)
		}
	})

	t.Run("an existing world-readable file is replaced by a 0600 one", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dump.json")
		if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := privatefile.Write(path, write("new")); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != "new" || mode(t, path) != 0o600 {
			t.Errorf("content %q mode %v, want new and -rw-------", b, mode(t, path))
		}
	})

	t.Run("a symbolic link at the path is replaced, its target untouched", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "victim")
		if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "dump.json")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		if err := privatefile.Write(path, write("dump")); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(target); string(b) != "precious" {
			t.Errorf("the link's target now holds %q", b)
		}
		if m := mode(t, path); !m.IsRegular() || m.Perm() != 0o600 {
			t.Errorf("path is %v, want a regular 0600 file", m)
		}
	})

	t.Run("a failed write leaves the path as it was and no temporary file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "dump.json")
		if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		if err := privatefile.Write(path, func(io.Writer) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("got %v, want boom", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "old" {
			t.Errorf("content %q, want old", b)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("directory holds %d entries, want only the original file", len(ents))
		}
	})
}

func TestCreate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	t.Run("a new file is 0600", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "password")
		f, err := privatefile.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if m := mode(t, path); m != 0o600 {
			t.Errorf("mode %v, want -rw-------", m)
		}
	})

	t.Run("an existing file is not overwritten", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "password")
		if err := os.WriteFile(path, []byte("earlier"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := privatefile.Create(path); !errors.Is(err, privatefile.ErrExists) {
			t.Errorf("got %v, want ErrExists", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "earlier" {
			t.Errorf("content %q, want earlier", b)
		}
	})

	t.Run("a symbolic link, even a dangling one, is not followed", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "elsewhere")
		path := filepath.Join(dir, "password")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		if _, err := privatefile.Create(path); err == nil {
			t.Fatal("Create followed a symbolic link")
		}
		if _, err := os.Lstat(target); !os.IsNotExist(err) {
			t.Errorf("the link's target was created (%v)", err)
		}
	})
}
