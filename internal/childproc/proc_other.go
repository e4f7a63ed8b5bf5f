//go:build !unix

package childproc

import (
	"os/exec"
	"syscall"
)

// SysProcAttr has nothing to set without process groups.
func SysProcAttr(Signal) *syscall.SysProcAttr { return nil }

// signalGroup kills the process: without process groups and signals the
// direct child is all that can be reached, and only by killing it.
func signalGroup(cmd *exec.Cmd, _ Signal) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
