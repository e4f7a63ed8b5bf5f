package mariadb

import "syscall"

// setParentDeathSignal asks the kernel to stop the server cleanly if this
// process dies without calling Stop (a crash, a test timeout).
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGTERM }
