//go:build unix && !linux

package childproc

import "syscall"

// setParentDeathSignal is Linux-only; elsewhere stopping the child is the
// owner's job alone.
func setParentDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}
