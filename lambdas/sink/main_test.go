package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// runtimeAPI is a minimal Lambda Runtime API: it hands out queued events
// and collects what the function posts back.
type runtimeAPI struct {
	events    chan []byte
	mu        sync.Mutex
	responses map[string][]byte
	errors    map[string][]byte
	initError []byte
	done      chan string
}

func newRuntimeAPI() *runtimeAPI {
	return &runtimeAPI{events: make(chan []byte, 8), responses: map[string][]byte{}, errors: map[string][]byte{}, done: make(chan string, 8)}
}

func (r *runtimeAPI) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	const prefix = "/2018-06-01/runtime/"
	path := strings.TrimPrefix(req.URL.Path, prefix)
	body, _ := io.ReadAll(req.Body)
	switch {
	case req.Method == http.MethodGet && path == "invocation/next":
		select {
		case ev := <-r.events:
			id := "req-" + strconv.Itoa(len(r.done)+len(r.responses)+len(r.errors)) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:UnifiedStreamETL-sink")
			w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-67891234-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1")
			_, _ = w.Write(ev)
		case <-req.Context().Done():
		}
	case req.Method == http.MethodPost && strings.HasSuffix(path, "/response"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "invocation/"), "/response")
		r.mu.Lock()
		r.responses[id] = body
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		r.done <- id
	case req.Method == http.MethodPost && strings.HasSuffix(path, "/error"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "invocation/"), "/error")
		r.mu.Lock()
		r.errors[id] = body
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		r.done <- id
	case req.Method == http.MethodPost && path == "init/error":
		r.mu.Lock()
		r.initError = body
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, req)
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// buildBootstrap compiles the function as `make lambdas` does, for this
// machine's platform, once per test binary.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "sink-bootstrap-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", filepath.Join(buildDir, "bootstrap"), ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, buildOut)
	}
	return filepath.Join(buildDir, "bootstrap")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func TestBootstrapAnswersTheRuntimeAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and starts dynalite")
	}
	bin := buildBootstrap(t)
	endpoint := testenv.StartDynalite(t)
	db := dynamodb.NewFromConfig(testenv.AWSConfig(t, endpoint))
	ctx := context.Background()
	if err := sink.CreateTable(ctx, db, "OrderEnriched"); err != nil {
		t.Fatal(err)
	}

	api := newRuntimeAPI()
	srv := httptest.NewServer(api)
	defer srv.Close()

	event, err := os.ReadFile(filepath.Join("..", "..", "internal", "sink", "testdata", "go-processor.json"))
	if err != nil {
		t.Fatal(err)
	}
	malformed, err := os.ReadFile(filepath.Join("..", "..", "internal", "sink", "testdata", "malformed.json"))
	if err != nil {
		t.Fatal(err)
	}
	api.events <- event
	api.events <- malformed

	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME=UnifiedStreamETL-sink",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDTEST",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL_DYNAMODB=" + endpoint,
		"TABLE_NAME=OrderEnriched",
	}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var ids []string
	for range 2 {
		select {
		case id := <-api.done:
			ids = append(ids, id)
		case <-time.After(30 * time.Second):
			t.Fatalf("no answer from the function; logs:\n%s", logs.String())
		}
	}

	t.Run("answers with an empty batchItemFailures list", func(t *testing.T) {
		api.mu.Lock()
		defer api.mu.Unlock()
		for _, id := range ids {
			if got := string(api.responses[id]); got != `{"batchItemFailures":[]}` {
				t.Errorf("response to %s = %q (error %s)", id, got, api.errors[id])
			}
		}
	})

	t.Run("writes the items to the table named by TABLE_NAME", func(t *testing.T) {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("OrderEnriched"), Key: sink.Key(1001, 23), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		it, err := sink.DecodeItem(out.Item)
		if err != nil {
			t.Fatal(err)
		}
		if it.ItemAmount.String() != "93.98" || *it.OrderStatus != "SHIPPED" {
			t.Errorf("item = %+v", it.Enriched)
		}
	})

	t.Run("logs bad records as JSON with the reason when no DLQ is set", func(t *testing.T) {
		var found bool
		for _, line := range strings.Split(logs.String(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) != nil {
				continue
			}
			if entry["message"] == "dead letter (no DLQ configured)" && strings.Contains(entry["reason"].(string), "missing itemId") {
				found = entry["requestId"] != nil && entry["source"] == "UnifiedStreamETL-sink"
			}
		}
		if !found {
			t.Errorf("no JSON dead-letter log line with the reason, request id and function name:\n%s", logs.String())
		}
	})
}

func TestBootstrapWithoutTableNameFailsInit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function")
	}
	bin := buildBootstrap(t)
	api := newRuntimeAPI()
	srv := httptest.NewServer(api)
	defer srv.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(srv.URL, "http://"), "AWS_REGION=us-east-1", "AWS_LAMBDA_LOG_FORMAT=JSON"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the function started without TABLE_NAME")
	}
	if !strings.Contains(string(out), "TABLE_NAME") {
		t.Errorf("output does not name the missing variable:\n%s", out)
	}
}
