package childproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNotFound is wrapped by Program.Find's error when the program is
// nowhere it looks.
var ErrNotFound = errors.New("not found")

// SystemDirs are where Debian and Ubuntu install daemons and helper
// programs, which a normal user's PATH lacks (mariadbd is /usr/sbin/mariadbd).
var SystemDirs = []string{"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/libexec"}

// Program is an executable a local server needs, and how to get it.
type Program struct {
	// Name is the executable's file name, e.g. "mariadbd".
	Name string
	// Env names an environment variable that may hold the program's path,
	// for installations outside the usual places; it wins when set.
	Env string
	// Dirs are searched after PATH; nil means SystemDirs.
	Dirs []string
	// Install says how to install the program, for the error: a command
	// in backquotes or where to get it.
	Install string
}

// Find returns the program's path: $Env if set, else the first match on
// PATH, else in Dirs. The error names where it looked and the command
// that installs it.
func (p Program) Find() (string, error) {
	if p.Env != "" {
		if path := os.Getenv(p.Env); path != "" {
			if err := executable(path); err != nil {
				return "", fmt.Errorf("%s (from $%s): %w", path, p.Env, err)
			}
			return path, nil
		}
	}
	if path, err := exec.LookPath(p.Name); err == nil {
		return path, nil
	}
	dirs := p.Dirs
	if dirs == nil {
		dirs = SystemDirs
	}
	for _, d := range dirs {
		path := filepath.Join(d, p.Name)
		if executable(path) == nil {
			return path, nil
		}
	}
	where := "PATH, " + strings.Join(dirs, ", ")
	if p.Env != "" {
		where = "$" + p.Env + ", " + where
	}
	return "", fmt.Errorf("%s %w (looked in %s): install it with %s", p.Name, ErrNotFound, where, p.Install)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return errors.New("is a directory")
	case fi.Mode()&0o111 == 0:
		return errors.New("not executable")
	}
	return nil
}
