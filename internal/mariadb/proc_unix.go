//go:build unix

package mariadb

import "syscall"

var sigTerm = syscall.SIGTERM

// sysProcAttr puts the server in its own process group, so a Ctrl-C in the
// terminal reaches only this process, which then stops the server in order.
func sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(attr)
	return attr
}
