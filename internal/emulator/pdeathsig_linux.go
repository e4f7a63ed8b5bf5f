package emulator

import "syscall"

// setParentDeathSignal makes the kernel kill the emulator if this process
// dies without calling Stop (a test binary hitting its -timeout, a crash),
// so no emulator outlives its owner.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
