// Package emulator runs the local AWS emulators that package.json pins
// (dynalite for DynamoDB, kinesalite for Kinesis) as child processes. Tests
// start them through internal/testenv; local mode starts them directly.
package emulator

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/unified-streaming-etl/etl/internal/childproc"
)

// Emulator names, as their npm packages name their executables.
const (
	Dynalite   = "dynalite"
	Kinesalite = "kinesalite"
)

// ErrNotInstalled means node_modules lacks the emulator; `make deps` installs it.
var ErrNotInstalled = errors.New("emulator not installed (run `make deps`)")

// Node runs the emulators. ETL_NODE names it when it is not on PATH.
var Node = childproc.Program{
	Name:    "node",
	Env:     "ETL_NODE",
	Install: "Node.js 22 or newer from https://nodejs.org/en/download (or your distribution's nodejs package)",
}

// Config says which emulator to run and where.
type Config struct {
	// Name is Dynalite or Kinesalite.
	Name string
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// Root is the directory holding node_modules; empty searches upward from
	// the working directory.
	Root string
	// Output receives the emulator's stdout and stderr; nil discards them.
	Output io.Writer
}

// Emulator is a running emulator process.
type Emulator struct {
	name     string
	endpoint string
	child    *childproc.Child
	stopOnce sync.Once
}

// startAttempts bounds retries when a port picked as free is taken by
// someone else before the emulator binds it.
const startAttempts = 3

// stopGrace is how long Stop waits after SIGTERM before it kills.
const stopGrace = 5 * time.Second

// Start runs the named emulator on port (0 for a free one) with in-memory
// storage and returns once it accepts requests. ctx bounds the wait for
// readiness only; the process runs until Stop.
func Start(ctx context.Context, name string, port int) (*Emulator, error) {
	return StartConfig(ctx, Config{Name: name, Port: port})
}

// StartConfig is Start with every option.
func StartConfig(ctx context.Context, cfg Config) (*Emulator, error) {
	if cfg.Name != Dynalite && cfg.Name != Kinesalite {
		return nil, fmt.Errorf("emulator: unknown emulator %q (want %q or %q)", cfg.Name, Dynalite, Kinesalite)
	}
	bin, err := Executable(cfg.Root, cfg.Name)
	if err != nil {
		return nil, err
	}
	node, err := Node.Find()
	if err != nil {
		return nil, fmt.Errorf("emulator %s: %w", cfg.Name, err)
	}
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		port := cfg.Port
		if port == 0 {
			if port, err = childproc.FreePort(); err != nil {
				return nil, fmt.Errorf("emulator: pick a free port: %w", err)
			}
		}
		e, err := launch(ctx, node, bin, cfg, port)
		if err == nil {
			return e, nil
		}
		lastErr = err
		// Only a port we picked ourselves is worth another try; a caller's
		// fixed port or a cancelled context will fail the same way again.
		if cfg.Port != 0 || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// Executable returns the path of node_modules/.bin/<name> under root, or
// under the nearest ancestor of the working directory that has it when root
// is empty.
func Executable(root, name string) (string, error) {
	rel := filepath.Join("node_modules", ".bin", name)
	if root != "" {
		p := filepath.Join(root, rel)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("emulator: %s: %w", p, ErrNotInstalled)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("emulator: %w", err)
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("emulator: no %s above the working directory: %w", rel, ErrNotInstalled)
		}
		dir = parent
	}
}

// Endpoint is the emulator's URL, "http://127.0.0.1:PORT".
func (e *Emulator) Endpoint() string { return e.endpoint }

// Name is the emulator's name.
func (e *Emulator) Name() string { return e.name }

// Stop ends the emulator and every process it started, and waits for it.
// It is safe to call more than once.
func (e *Emulator) Stop() error {
	var err error
	e.stopOnce.Do(func() {
		e.child.Stop(stopGrace)
		var exitErr *exec.ExitError
		// Exiting because of our signal is the expected outcome.
		if waitErr := e.child.Err(); waitErr != nil && !errors.As(waitErr, &exitErr) {
			err = fmt.Errorf("emulator %s: %w", e.name, waitErr)
		}
	})
	return err
}

// abortGuard keeps an emulator alive when a client drops a request mid-way
// (a cancelled context, an attempt timeout, a keep-alive connection closed
// as a request is sent). dynalite and kinesalite rethrow the request
// stream's "aborted" error, which would otherwise crash the process and
// every test or local pipeline using it. Any other uncaught error still
// ends the process, as before. A data: URL needs no file on disk.
var abortGuard = "data:text/javascript," + url.PathEscape(
	`process.on("uncaughtException", (err) => {`+
		`if (err && (err.code === "ECONNRESET" || err.message === "aborted")) return;`+
		`console.error(err); process.exit(1); });`)

// kinesaliteLocal starts kinesalite on loopback only: its command line has
// no host option and listens on every interface, so the wrapper binds the
// address through the module's API. It is embedded, and passed to node -e,
// so that the tool finds it wherever it runs from.
//
//go:embed kinesalite-local.js
var kinesaliteLocal string

// command is the node command line that runs the emulator on 127.0.0.1:port
// with abortGuard loaded first.
func command(node, bin string, name string, port int) *exec.Cmd {
	args := []string{"--import", abortGuard}
	if name == Dynalite {
		args = append(args, bin, "--port", strconv.Itoa(port), "--host", "127.0.0.1")
	} else {
		// node_modules/.bin/kinesalite links to the package's cli.js.
		pkg := filepath.Join(filepath.Dir(filepath.Dir(bin)), Kinesalite)
		args = append(args, "-e", kinesaliteLocal, "--", pkg, strconv.Itoa(port))
	}
	return exec.Command(node, args...)
}

func launch(ctx context.Context, node, bin string, cfg Config, port int) (*Emulator, error) {
	cmd := command(node, bin, cfg.Name, port)
	// If this process dies without Stop, the kernel kills the emulator:
	// in-memory storage needs no clean shutdown.
	cmd.SysProcAttr = childproc.SysProcAttr(childproc.Kill)
	cmd.Stdin = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("emulator %s: %w", cfg.Name, err)
	}
	// The start of stderr explains an early exit (EADDRINUSE, a Node error).
	stderr := childproc.NewHeadBuffer(4 << 10)
	cmd.Stderr = multi(stderr, cfg.Output)

	// Both emulators print one "...listening at ..." line once the socket is
	// bound, which is a sharper readiness signal than polling the port (a
	// poll could reach another process that holds it).
	ready := make(chan struct{})
	child, err := childproc.Start(cmd, func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			if cfg.Output != nil {
				fmt.Fprintln(cfg.Output, line)
			}
			if !signalled && strings.Contains(strings.ToLower(line), "listening at") {
				signalled = true
				close(ready)
			}
		}
		// Keep draining so the child never blocks on a full pipe.
		_, _ = io.Copy(orDiscard(cfg.Output), stdout)
	})
	if err != nil {
		return nil, fmt.Errorf("emulator %s: start %s: %w", cfg.Name, bin, err)
	}
	e := &Emulator{
		name:     cfg.Name,
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		child:    child,
	}

	select {
	case <-ready:
		return e, nil
	case <-child.Done():
		msg := strings.TrimSpace(stderr.String())
		return nil, fmt.Errorf("emulator %s exited before listening on port %d: %v: %s", cfg.Name, port, child.Err(), msg)
	case <-ctx.Done():
		_ = e.Stop()
		return nil, fmt.Errorf("emulator %s: waiting for it to listen: %w", cfg.Name, ctx.Err())
	}
}

func multi(w io.Writer, extra io.Writer) io.Writer {
	if extra == nil {
		return w
	}
	return io.MultiWriter(w, extra)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
