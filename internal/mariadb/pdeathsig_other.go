//go:build unix && !linux

package mariadb

import "syscall"

// setParentDeathSignal is Linux-only; elsewhere Stop is the only way out.
func setParentDeathSignal(*syscall.SysProcAttr) {}
