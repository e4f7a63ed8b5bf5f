// Package privatefile writes files that hold data or secrets (table dumps,
// generated passwords) readable by their owner only, without following a
// symbolic link someone else planted at the path.
package privatefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Mode is the permission of every file this package creates.
const Mode = 0o600

// Write replaces path with what write produces. The content goes to a new
// file (0600, created exclusively, so nothing else can hold it open) in
// path's directory, which is then renamed over path: a symbolic link at
// path is replaced, never followed, and a reader never sees half a file.
// On error path is left as it was.
func Write(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp already uses 0600; Chmod states it whatever the umask.
	if err := f.Chmod(Mode); err != nil {
		return err
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// ErrExists means Create found something at the path already.
var ErrExists = errors.New("already exists (remove it, or choose another path)")

// Create creates path, which must not exist (not even as a symbolic link),
// for writing with mode 0600. It never overwrites: a secret written
// earlier must not be lost to a second run.
func Create(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, Mode)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s %w", path, ErrExists)
	}
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(Mode); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
