// Package repo finds the repository the tools run from, whose files
// (sql/, reference-data/, node_modules/) they read.
package repo

import (
	"errors"
	"os"
	"path/filepath"
)

// Root returns the nearest directory holding go.mod, from the working
// directory up.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the repository (no go.mod above the working directory): run from the repository")
		}
		dir = parent
	}
}
