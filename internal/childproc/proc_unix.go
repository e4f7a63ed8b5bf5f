//go:build unix

package childproc

import (
	"os/exec"
	"syscall"
)

// SysProcAttr puts the child in a process group of its own, so that a
// Ctrl-C in the terminal reaches only this process (which then stops the
// child in order) and Stop and Kill reach anything the child forks. On
// Linux the kernel also sends the child onParentDeath if this process dies
// without stopping it (a crash, a test binary hitting its -timeout), so no
// child outlives its owner; Start must be used for that to hold.
func SysProcAttr(onParentDeath Signal) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(attr, onParentDeath.unix())
	return attr
}

// signalGroup sends sig to the process group cmd leads (see SysProcAttr).
func signalGroup(cmd *exec.Cmd, sig Signal) {
	if cmd.Process == nil {
		return
	}
	// A negative pid addresses the whole group; fall back to the process
	// itself if the group is already gone.
	if err := syscall.Kill(-cmd.Process.Pid, sig.unix()); err != nil {
		_ = cmd.Process.Signal(sig.unix())
	}
}

func (s Signal) unix() syscall.Signal {
	if s == Terminate {
		return syscall.SIGTERM
	}
	return syscall.SIGKILL
}
