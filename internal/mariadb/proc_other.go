//go:build !unix

package mariadb

import (
	"os"
	"syscall"
)

var sigTerm os.Signal = os.Kill

func sysProcAttr() *syscall.SysProcAttr { return nil }
