package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/local"
)

func TestDispatch(t *testing.T) {
	for _, c := range []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		noStdout   bool
		noStderrOK bool
	}{
		{name: "no command prints the commands and fails as a usage error", args: nil, code: 2, stdout: "local"},
		{name: "help lists the commands", args: []string{"help"}, code: 0, stdout: "Commands:"},
		{name: "--help lists the commands", args: []string{"--help"}, code: 0, stdout: "etl <command>"},
		{name: "an unknown command is a usage error", args: []string{"deploy"}, code: 2, stderr: `unknown command "deploy"`},
		{name: "local --help documents its flags on stdout", args: []string{"local", "--help"}, code: 0, stdout: "-keep-running"},
		{name: "help local is local --help", args: []string{"help", "local"}, code: 0, stdout: "-dump"},
		{name: "local bench --help documents its flags", args: []string{"local", "bench", "--help"}, code: 0, stdout: "-items-per-order"},
		{name: "db --help goes to stdout", args: []string{"db", "--help"}, code: 0, stdout: "etl db setup"},
		{name: "an unknown flag is a usage error", args: []string{"local", "--shard", "2"}, code: 2, stderr: "flag provided but not defined"},
		{name: "a stray argument is a usage error", args: []string{"local", "extra"}, code: 2, stderr: `unexpected argument "extra"`},
		{name: "bench refuses zero orders, naming the flag", args: []string{"local", "bench", "--orders", "0"}, code: 2, stderr: "--orders 0: want 1 or more"},
		{name: "too many shards are refused before anything starts", args: []string{"local", "--shards", "9"}, code: 2, stderr: "--shards 9: want 1 to 5"},
		{name: "a zero batch size is refused, not replaced by the default", args: []string{"local", "--batch-size", "0"}, code: 2, stderr: "--batch-size 0: want 1 to 10000"},
		{name: "a missing --sql file is refused before anything starts", args: []string{"local", "--sql", "/nonexistent/x.sql"}, code: 2, stderr: "--sql: open /nonexistent/x.sql"},
		{name: "a missing --products file is refused before the bench starts", args: []string{"local", "bench", "--products", "/nonexistent/p.json"}, code: 2, stderr: "--products: open /nonexistent/p.json"},
		{name: "local bench --help documents the shape comparison", args: []string{"local", "bench", "--help"}, code: 0, stdout: "-compare"},
		{name: "local --help documents AWS delivery timing", args: []string{"local", "--help"}, code: 0, stdout: "-aws-timing"},
		{name: "local bench --help documents JSON output", args: []string{"local", "bench", "--help"}, code: 0, stdout: "-json"},
		{name: "an unknown shape is refused, naming the allowed ones", args: []string{"local", "--shape", "fast"}, code: 2, stderr: `--shape "fast": want original, default or efo`},
		{name: "bench refuses an unknown shape too", args: []string{"local", "bench", "--shape", "two-hop"}, code: 2, stderr: `--shape "two-hop": want original, default or efo`},
		{name: "--compare runs every shape, so a --shape with it is refused", args: []string{"local", "bench", "--compare", "--shape", "efo"}, code: 2, stderr: "--shape and --compare"},
		{name: "--compare cannot keep a pipeline running", args: []string{"local", "bench", "--compare", "--keep-running"}, code: 2, stderr: "--keep-running and --compare"},
		{name: "load refuses a zero rate of progress reports", args: []string{"load", "--dsn", "u@tcp(127.0.0.1:1)/", "--progress", "0s"}, code: 2, stderr: "--progress 0s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, c.code, stderr.String())
			}
			if c.stdout != "" && !strings.Contains(stdout.String(), c.stdout) {
				t.Errorf("stdout lacks %q:\n%s", c.stdout, stdout.String())
			}
			if c.stderr != "" && !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr.String())
			}
			if c.code == 2 && c.stderr != "" {
				// A mistake is one line and a pointer to the help, not the
				// whole usage; nothing was started.
				if lines := strings.Count(stderr.String(), "\n"); lines != 2 || !strings.Contains(stderr.String(), "--help` for") {
					t.Errorf("stderr is %d lines, want the error and a pointer to --help:\n%s", lines, stderr.String())
				}
				if strings.Contains(stdout.String(), "Starting") {
					t.Errorf("the pipeline was started despite the bad flag:\n%s", stdout.String())
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the local pipeline; skipped under -short")
	}
}

// TestLocalDemo runs what `make demo` runs.
func TestLocalDemo(t *testing.T) {
	skipShort(t)
	dump := filepath.Join(t.TempDir(), "enriched.json")
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"local", "--dump", dump}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	for _, want := range []*regexp.Regexp{
		// What each statement of the sample did, before the result.
		regexp.MustCompile("\n  line  48  DELETE FROM orders.order_item WHERE orderId = 1004 AND itemId = 512 +1 row\n"),
		regexp.MustCompile("\n  line  20  INSERT INTO orders.order_item .* 14 rows\n"),
		regexp.MustCompile(`DynamoDB table OrderEnriched \(12 items\)`),
		regexp.MustCompile(`PRODUCT and PRICE come from reference-data/products.json, a generated catalogue`),
		regexp.MustCompile(`\n1001 +1 +DELIVERED +959\.18 +2026-11-02 09:15:02\.120 +Maria Garcia, Seattle, WA +DELIVERED +2 +945\.18 +Handcrafted Marble Kettle +472\.59\n`),
		regexp.MustCompile(`Commit-to-DynamoDB latency: avg (\d+ ms|\d+\.\d+ s).* over 12 items`),
		regexp.MustCompile(`Check: OrderEnriched matches the join of the source tables \(12 rows\)`),
		regexp.MustCompile(`Stopped everything and removed the database files\.`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output does not match %s:\n%s", want, out)
		}
	}
	// The dump holds names and addresses: owner-only.
	if fi, err := os.Lstat(dump); err != nil || fi.Mode() != 0o600 {
		t.Errorf("dump file mode %v (%v), want -rw-------", fi.Mode(), err)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := json.Unmarshal(b, &items); err != nil || len(items) != 12 {
		t.Errorf("dump: %d items, %v", len(items), err)
	}
}

func TestLocalBench(t *testing.T) {
	skipShort(t)
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"local", "bench", "--orders", "60", "--items-per-order", "3", "--rate", "0", "--workers", "4"}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`Offered: +60 transactions committed`),
		regexp.MustCompile(`Achieved: +\d+ order items/s`),
		regexp.MustCompile(`Latency: +avg [\d.]+ m?s, p50 .* p99 .* over 180 items`),
		regexp.MustCompile(`Check: OrderEnriched matches the join of the source tables \(180 rows\)`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output does not match %s:\n%s", want, out)
		}
	}
}

// TestLocalBenchCompareJSON runs a small load through every shape: stdout
// is one JSON object with a result per shape, the report goes to stderr.
func TestLocalBenchCompareJSON(t *testing.T) {
	skipShort(t)
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"local", "bench", "--compare", "--json", "--orders", "20", "--items-per-order", "2", "--rate", "0", "--workers", "4"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var got struct {
		Items  int `json:"items"`
		Shapes map[string]struct {
			Items          int                `json:"items"`
			Lost           *int               `json:"lost"`
			ItemsPerSecond float64            `json:"itemsPerSecond"`
			LatencyMs      map[string]float64 `json:"latencyMs"`
		} `json:"shapes"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout.String()))
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout.String())
	}
	if dec.More() {
		t.Errorf("stdout holds more than the JSON object:\n%s", stdout.String())
	}
	if got.Items != 40 || len(got.Shapes) != 3 {
		t.Fatalf("items %d, shapes %d: %s", got.Items, len(got.Shapes), stdout.String())
	}
	for _, shape := range []string{"original", "default", "efo"} {
		r, ok := got.Shapes[shape]
		if !ok || r.Items != 40 || r.Lost == nil || *r.Lost != 0 || r.ItemsPerSecond <= 0 || r.LatencyMs["avg"] <= 0 || r.LatencyMs["max"] < r.LatencyMs["p99"] {
			t.Errorf("shape %s: %+v", shape, r)
		}
	}
	if !strings.Contains(stderr.String(), "Check: OrderEnriched matches") {
		t.Errorf("the report is not on stderr:\n%s", stderr.String())
	}
}

// TestKeepRunningStopsOnInterrupt checks that --keep-running prints how to
// reach the services and that an interrupt (the context the signal
// handler cancels) stops and removes everything.
func TestKeepRunningStopsOnInterrupt(t *testing.T) {
	skipShort(t)
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"local", "--keep-running"}, &stdout, &stderr) }()

	var addr string
	deadline := time.After(3 * time.Minute)
	for addr == "" {
		select {
		case code := <-done:
			t.Fatalf("returned %d before Ctrl-C:\n%s\n%s", code, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatalf("no endpoints printed:\n%s", stdout.String())
		case <-time.After(50 * time.Millisecond):
		}
		if m := regexp.MustCompile(`mariadb -h (\S+) -P (\d+) -u root orders`).FindStringSubmatch(stdout.String()); m != nil {
			addr = net.JoinHostPort(m[1], m[2])
		}
	}
	for _, want := range []string{"AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:", "AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:", "aws dynamodb scan --table-name OrderEnriched"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("MariaDB is not reachable at %s while running: %v", addr, err)
	} else {
		c.Close()
	}

	interrupt()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after Ctrl-C", code)
		}
	case <-time.After(time.Minute):
		t.Fatal("did not stop after Ctrl-C")
	}
	if !strings.Contains(stdout.String(), "Stopped everything") {
		t.Errorf("no clean-up reported:\n%s", stdout.String())
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("MariaDB still answers at %s after Ctrl-C", addr)
	}
}

// TestLocalKeepRunningPrintsAWorkingEnvironment pastes what --keep-running
// prints into the environment, as a user would into another shell, and
// runs etl load and etl verify against the local pipeline with it.
func TestLocalKeepRunningPrintsAWorkingEnvironment(t *testing.T) {
	skipShort(t)
	k := startKeepRunning(t)
	ctx, stdout := k.ctx, &k.stdout
	out := stdout.String()

	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export ([A-Z_]+)=(.*)$`).FindAllStringSubmatch(out, -1) {
		env[m[1]] = strings.Trim(m[2], "'")
	}
	t.Run("the environment names the Region for AWS CLI v1 and v2 and the endpoints of both emulators", func(t *testing.T) {
		for _, name := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", envDSN} {
			if env[name] == "" {
				t.Errorf("no export of %s in:\n%s", name, out)
			}
		}
		if env["AWS_REGION"] != env["AWS_DEFAULT_REGION"] {
			t.Errorf("AWS_REGION %q and AWS_DEFAULT_REGION %q differ", env["AWS_REGION"], env["AWS_DEFAULT_REGION"])
		}
	})

	// No shared AWS configuration of the machine may interfere.
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_PROFILE": "", "AWS_SESSION_TOKEN": "", "AWS_ENDPOINT_URL": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
	} {
		t.Setenv(k, v)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	for _, line := range []string{
		"go run ./cmd/etl load --orders 100 --items-per-order 2 --rate 20",
		"go run ./cmd/etl verify --table OrderEnriched --wait 1m",
	} {
		if !strings.Contains(out, line) {
			t.Fatalf("output lacks the command line %q:\n%s", line, out)
		}
	}
	t.Run("the printed etl load and etl verify work unchanged against the local pipeline", func(t *testing.T) {
		for _, args := range [][]string{
			{"load", "--orders", "100", "--items-per-order", "2", "--rate", "20"},
			{"verify", "--table", "OrderEnriched", "--wait", "1m"},
		} {
			var o, e bytes.Buffer
			if code := run(ctx, args, &o, &e); code != 0 {
				t.Fatalf("etl %s: exit %d\n%s\n%s", strings.Join(args, " "), code, o.String(), e.String())
			}
		}
	})

	k.stop(t)
	if !strings.Contains(stdout.String(), "Stopped everything") {
		t.Errorf("no clean stop:\n%s", stdout.String())
	}
}

func TestLocalTraceShowsEachStageOfAChange(t *testing.T) {
	skipShort(t)
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"local", "--trace"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	// The cancelled item of order 1004, from its commit to its deletion
	// from OrderEnriched, one line per stage.
	want := regexp.MustCompile(`\n  order 1004 item 512 delete\n` +
		`(    (CDC record|source commit) +[-+][\d.]+ ms *\n){2}` +
		`    joined +\+[\d.]+ ms *\n` +
		`    DynamoDB write +\+[\d.]+ ms  order 1004 item 512 deleted\n`)
	if !want.MatchString(stdout.String()) {
		t.Errorf("no trace of the deleted item matching %s in:\n%s", want, stdout.String())
	}
}

func TestLocalEnvironmentDSNCarriesThePassword(t *testing.T) {
	e := local.Endpoints{MariaDBHost: "127.0.0.1", MariaDBPort: 33061, MariaDBUser: "root", MariaDBPassword: "0123abcd"}
	var dsn string
	for _, v := range localEnvironment(e) {
		if v.name == envDSN {
			dsn = v.value
		}
	}
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s=%q: %v", envDSN, dsn, err)
	}
	if c.User != "root" || c.Passwd != "0123abcd" || c.Net != "tcp" || c.Addr != "127.0.0.1:33061" {
		t.Errorf("%s=%q parses as %s:%s@%s(%s), want root:0123abcd@tcp(127.0.0.1:33061)", envDSN, dsn, c.User, c.Passwd, c.Net, c.Addr)
	}
}

// keptRunning is `etl local --keep-running` started by a test.
type keptRunning struct {
	ctx            context.Context
	cancel         context.CancelFunc
	done           chan int
	stdout, stderr syncBuffer
}

// startKeepRunning starts `etl local --keep-running` and returns once it
// has printed its instructions; the pipeline stops when the test ends.
func startKeepRunning(t *testing.T) *keptRunning {
	t.Helper()
	k := &keptRunning{done: make(chan int, 1)}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	t.Cleanup(k.cancel)
	go func() { k.done <- run(k.ctx, []string{"local", "--keep-running"}, &k.stdout, &k.stderr) }()
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(k.stdout.String(), "Press Ctrl-C") {
		select {
		case code := <-k.done:
			t.Fatalf("etl local exited with %d before keeping running:\n%s\n%s", code, k.stdout.String(), k.stderr.String())
		case <-deadline:
			t.Fatalf("no --keep-running instructions:\n%s", k.stdout.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return k
}

// stop presses Ctrl-C and waits for the pipeline to stop.
func (k *keptRunning) stop(t *testing.T) {
	t.Helper()
	k.cancel()
	select {
	case <-k.done:
	case <-time.After(time.Minute):
		t.Fatal("etl local did not stop after Ctrl-C")
	}
}

// An operator the pipeline key does not name is told how to be named,
// whichever service reports the refusal; other failures get no such hint.
func TestKeyAccessDeniedSaysHowToBecomeAKeyUser(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		hint bool
	}{
		{"Kinesis", fmt.Errorf("replay: %w", &smithy.GenericAPIError{Code: "KMSAccessDeniedException", Message: "User is not authorized to use the key"}), true},
		{"SQS", &smithy.GenericAPIError{Code: "KmsAccessDenied", Message: "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."}, true},
		{"DynamoDB and S3", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/ops/alice is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-1:123456789012:key/1"}, true},
		{"an IAM refusal of the table itself", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/ops/alice is not authorized to perform: dynamodb:Query"}, false},
		{"a missing stack", errors.New("stack UnifiedStreamETLProcessStack does not exist"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := exitCode(c.err, &stdout, &stderr); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if got := strings.Contains(stderr.String(), "-c keyUsers=arn:aws:iam::"); got != c.hint {
				t.Errorf("hint shown: %v, want %v; stderr:\n%s", got, c.hint, stderr.String())
			}
			if !strings.HasPrefix(stderr.String(), "etl: "+c.err.Error()+"\n") {
				t.Errorf("stderr does not start with the error itself:\n%s", stderr.String())
			}
		})
	}
}
