//go:build unix

package childproc_test

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/childproc"
)

func TestStartReportsTheExitOnceTheOutputIsDrained(t *testing.T) {
	cmd := exec.Command("sh", "-c", "echo hello; exit 3")
	cmd.SysProcAttr = childproc.SysProcAttr(childproc.Kill)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	c, err := childproc.Start(cmd, func() { out, _ = io.ReadAll(stdout) })
	if err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	var exitErr *exec.ExitError
	if !errors.As(c.Err(), &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("Err() = %v, want exit status 3", c.Err())
	}
	if string(out) != "hello\n" {
		t.Errorf("drained %q, want the whole output %q", out, "hello\n")
	}
}

// startForking starts a shell that forks a sleep holding stdout open, so
// that Done only closes once whatever stopped the shell reached the sleep
// too. script runs before the fork.
func startForking(t *testing.T, script string) *childproc.Child {
	t.Helper()
	cmd := exec.Command("sh", "-c", script+"; sleep 60 & echo forked; wait")
	cmd.SysProcAttr = childproc.SysProcAttr(childproc.Kill)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	forked := make(chan struct{})
	c, err := childproc.Start(cmd, func() {
		r := bufio.NewReader(stdout)
		if _, err := r.ReadString('\n'); err == nil {
			close(forked)
		}
		_, _ = io.Copy(io.Discard, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	<-forked
	return c
}

func TestStopAndKillReachWhatTheChildForked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string // run by the child before it forks
		stop   func(*childproc.Child)
		want   syscall.Signal // what ended the child
	}{
		{"stop ends a child that obeys SIGTERM within the grace period", "true", func(c *childproc.Child) { c.Stop(time.Minute) }, syscall.SIGTERM},
		{"stop kills a child that ignores SIGTERM once the grace period is over", "trap '' TERM", func(c *childproc.Child) { c.Stop(100 * time.Millisecond) }, syscall.SIGKILL},
		{"kill ends the child at once", "true", (*childproc.Child).Kill, syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startForking(t, tc.script)
			stopped := make(chan struct{})
			go func() { tc.stop(c); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(20 * time.Second):
				t.Fatal("the child or what it forked outlived the stop")
			}
			select {
			case <-c.Done():
			default:
				t.Fatal("stop returned before the child was reaped")
			}
			var exitErr *exec.ExitError
			if !errors.As(c.Err(), &exitErr) {
				t.Fatalf("Err() = %v, want the child ended by %v", c.Err(), tc.want)
			}
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != tc.want {
				t.Errorf("Err() = %v, want the child ended by %v", c.Err(), tc.want)
			}
		})
	}
}

func TestStopAfterExitIsHarmless(t *testing.T) {
	cmd := exec.Command("true")
	cmd.SysProcAttr = childproc.SysProcAttr(childproc.Terminate)
	c, err := childproc.Start(cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	c.Stop(time.Minute)
	c.Kill()
	if c.Err() != nil {
		t.Errorf("Err() = %v, want nil for a clean exit", c.Err())
	}
}
