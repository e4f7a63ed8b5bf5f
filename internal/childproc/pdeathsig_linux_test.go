package childproc_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/childproc"
)

// orphanEnv makes the test binary act as an owner that starts a child and
// dies without stopping it.
const orphanEnv = "CHILDPROC_TEST_ORPHAN"

func TestMain(m *testing.M) {
	if os.Getenv(orphanEnv) != "" {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = childproc.SysProcAttr(childproc.Kill)
		if _, err := childproc.Start(cmd, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(cmd.Process.Pid)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestAChildDoesNotOutliveItsOwner(t *testing.T) {
	owner := exec.Command(os.Args[0], "-test.run=^$")
	owner.Env = append(os.Environ(), orphanEnv+"=1")
	out, err := owner.Output()
	if err != nil {
		t.Fatalf("owner: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("owner printed %q, want the child's pid", out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
			t.Fatalf("child %d still runs after its owner died", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs; a zombie (dead, not yet reaped by
// whichever process adopted it) does not.
func alive(pid int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(line, ')')
	return i < 0 || i+2 >= len(line) || line[i+2] != 'Z'
}
