// Package lambdatest runs a built Lambda bootstrap binary the way Lambda
// does: as a process polling the Lambda Runtime API (2018-06-01), which the
// test serves. It checks what unit tests cannot: that the deployed binary
// starts, reads real invocation payloads and answers with the documented
// response shapes.
package lambdatest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const runtimePrefix = "/2018-06-01/runtime/"

// Answer is what the function posted for one invocation, or for its init.
type Answer struct {
	RequestID string
	Kind      string // "response", "error" or "init/error"
	Body      []byte
}

// RuntimeAPI serves the Runtime API to one function process: it hands out
// queued events and collects the answers. Between events it holds the
// poll open, as Lambda does.
type RuntimeAPI struct {
	functionARN string
	events      chan []byte
	answers     chan Answer
	seq         atomic.Int64
	srv         *httptest.Server
}

// NewRuntimeAPI starts a Runtime API for the function named name; it stops
// when the test ends.
func NewRuntimeAPI(t testing.TB, name string) *RuntimeAPI {
	r := &RuntimeAPI{
		functionARN: "arn:aws:lambda:us-east-1:123456789012:function:" + name,
		events:      make(chan []byte, 64),
		answers:     make(chan Answer, 64),
	}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

// Addr is the value of AWS_LAMBDA_RUNTIME_API.
func (r *RuntimeAPI) Addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// Invoke queues an event for the function.
func (r *RuntimeAPI) Invoke(event []byte) { r.events <- event }

// Next waits for the function's next answer.
func (r *RuntimeAPI) Next(t testing.TB, p *Process) Answer {
	t.Helper()
	select {
	case a := <-r.answers:
		return a
	case <-time.After(60 * time.Second):
		t.Fatalf("no answer from the function within a minute; its output:\n%s", p.Output())
		return Answer{}
	}
}

func (r *RuntimeAPI) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := strings.TrimPrefix(req.URL.Path, runtimePrefix)
	switch {
	case req.Method == http.MethodGet && path == "invocation/next":
		select {
		case ev := <-r.events:
			id := "req-" + strconv.FormatInt(r.seq.Add(1), 10)
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", r.functionARN)
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-67891234-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1")
			_, _ = w.Write(ev)
		case <-req.Context().Done():
		}
	case req.Method == http.MethodPost && path == "init/error":
		body, _ := io.ReadAll(req.Body)
		w.WriteHeader(http.StatusAccepted)
		r.answers <- Answer{Kind: "init/error", Body: body}
	case req.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		id, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		body, _ := io.ReadAll(req.Body)
		w.WriteHeader(http.StatusAccepted)
		r.answers <- Answer{RequestID: id, Kind: kind, Body: body}
	default:
		http.NotFound(w, req)
	}
}

var (
	buildMu sync.Mutex
	builds  = map[string]string{}
)

// Build compiles the main package in dir as `make lambdas` does
// (-tags lambda.norpc, static, trimmed), for this machine's platform, once
// per test binary.
func Build(t testing.TB, dir string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the Lambda binary")
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := builds[dir]; ok {
		return bin
	}
	out, err := os.MkdirTemp("", "bootstrap-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(out, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, msg)
	}
	builds[dir] = bin
	return bin
}

// Process is a running function.
//
// Its output reaches Output through pipes that the os/exec package copies
// in the background, so a line the function wrote before it answered may
// not have arrived yet when the answer has: tests that assert on the log
// use WaitForOutput (or Stop first), never Output alone.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and its output is drained
	err    error         // the exit status, set before exited is closed

	mu      sync.Mutex
	out     bytes.Buffer
	written chan struct{} // closed and replaced on every write
}

// outputWait bounds how long WaitForOutput waits for a line, like Next.
const outputWait = 60 * time.Second

// Start runs bin against api with Lambda's environment plus env
// ("KEY=value"); the process is killed when the test ends.
func Start(t testing.TB, bin string, api *RuntimeAPI, name string, env ...string) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(bin), exited: make(chan struct{}), written: make(chan struct{})}
	p.cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_LAMBDA_RUNTIME_API=" + api.Addr(),
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDTEST",
		"AWS_SECRET_ACCESS_KEY=test",
	}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// One waiter for the process's whole life: cmd.Wait returns only once
	// the copying of its output has finished.
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.Stop)
	return p
}

// Write collects the process's output.
func (p *Process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.written)
	p.written = make(chan struct{})
	return p.out.Write(b)
}

// Output is what has arrived from the process so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitForOutput waits until the output satisfies done, the process has
// exited (its output is then complete), or a minute has passed, and
// returns the output at that moment for the caller to assert on.
func (p *Process) WaitForOutput(done func(output string) bool) string {
	timeout := time.NewTimer(outputWait)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		out, written := p.out.String(), p.written
		p.mu.Unlock()
		if done(out) {
			return out
		}
		select {
		case <-written:
		case <-p.exited:
			return p.Output()
		case <-timeout.C:
			return p.Output()
		}
	}
}

// WaitForOutputContaining is WaitForOutput for a substring.
func (p *Process) WaitForOutputContaining(s string) string {
	return p.WaitForOutput(func(out string) bool { return strings.Contains(out, s) })
}

// Stop kills the process and waits until it has exited and all it wrote
// has been collected.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Wait waits for the process to exit by itself (an init failure) and
// returns its exit status; its output is complete afterwards.
func (p *Process) Wait(t testing.TB) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(outputWait):
		t.Fatalf("the function did not exit; its output:\n%s", p.Output())
		return nil
	}
}
