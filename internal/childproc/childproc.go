// Package childproc is the process plumbing shared by the packages that run
// local servers as child processes (internal/emulator, internal/mariadb): a
// free loopback port, a process group that dies with its parent, a stop
// that escalates from SIGTERM to SIGKILL, and bounded capture of a child's
// output.
package childproc

import (
	"net"
	"os/exec"
	"runtime"
	"sync"
	"time"
)

// FreePort asks the kernel for an unused loopback port. Another process may
// take it before the child binds it, so callers retry a failed start.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Signal is how a child is told to stop. Where the OS has no signals, both
// end the process at once.
type Signal uint8

const (
	// Terminate is SIGTERM: the child may shut down cleanly.
	Terminate Signal = iota + 1
	// Kill is SIGKILL: the child ends at once.
	Kill
)

// Child is a started process that is reaped in the background.
type Child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts cmd and waits for it in the background. drain, if not nil,
// runs between the start and cmd.Wait: it must read any pipe from
// cmd.StdoutPipe or cmd.StderrPipe to its end, since Wait closes them.
//
// The parent-death signal (SysProcAttr) fires when the OS thread that
// started the child ends, not when the process does, so that thread is held
// until the child has been reaped.
func Start(cmd *exec.Cmd, drain func()) (*Child, error) {
	c := &Child{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		if drain != nil {
			drain()
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// Done is closed once the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is cmd.Wait's result; it is valid once Done is closed.
func (c *Child) Err() error { return c.err }

// Stop asks the child's process group to terminate, kills it if it is
// still running after grace, and returns once the child has been reaped.
func (c *Child) Stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	signalGroup(c.cmd, Terminate)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.Kill()
	}
}

// Kill kills the child's process group and returns once the child has
// been reaped.
func (c *Child) Kill() {
	select {
	case <-c.done:
		return
	default:
	}
	signalGroup(c.cmd, Kill)
	<-c.done
}

// Buffer is an io.Writer, safe for concurrent use, that keeps at most a
// fixed number of bytes of what is written to it, so a long-running
// child's output cannot grow without bound.
type Buffer struct {
	mu   sync.Mutex
	buf  []byte
	max  int
	tail bool
}

// NewHeadBuffer keeps the first max bytes: the start of the output explains
// an early exit.
func NewHeadBuffer(max int) *Buffer { return &Buffer{max: max} }

// NewTailBuffer keeps the last max bytes: the end of a log explains a
// failure after a long run.
func NewTailBuffer(max int) *Buffer { return &Buffer{max: max, tail: true} }

// Write keeps what fits and always reports all of p as written, so the
// child is never blocked or failed by a full buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.tail {
		if room := b.max - len(b.buf); room > 0 {
			b.buf = append(b.buf, p[:min(room, len(p))]...)
		}
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
