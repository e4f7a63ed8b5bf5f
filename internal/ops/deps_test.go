package ops_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The operator tool runs against AWS; it must not link the local-mode
// machinery (emulators, the MariaDB launcher, the binlog reader, the
// stream poller), which would grow the binary and let a local-mode change
// break the operator tool.
func TestOpsLinksNoLocalModeCode(t *testing.T) {
	const module = "github.com/unified-streaming-etl/etl/internal/"
	forbidden := []string{"local", "emulator", "mariadb", "binlog", "poller", "childproc", "testenv"}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == module+f || strings.HasPrefix(dep, module+f+"/") {
				t.Errorf("internal/ops depends on %s", dep)
			}
		}
	}
}
