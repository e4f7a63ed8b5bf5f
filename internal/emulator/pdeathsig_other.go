//go:build unix && !linux

package emulator

import "syscall"

// setParentDeathSignal is Linux-only; elsewhere Stop is the only way out.
func setParentDeathSignal(*syscall.SysProcAttr) {}
