package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// invocation is what the function answered for one event.
type invocation struct {
	requestID string
	path      string // response or error
	body      []byte
}

// fakeRuntime serves the Lambda Runtime API for a list of events, then
// holds the next poll open, as Lambda does between invocations.
type fakeRuntime struct {
	next    chan []byte
	answers chan invocation
}

func (rt *fakeRuntime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/2018-06-01/runtime/"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == prefix+"invocation/next":
		select {
		case ev := <-rt.next:
			id := fmt.Sprintf("req-%d", time.Now().UnixNano())
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:preprocess")
			w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-5e1b4151-5ac6c58f5e4b7c1d2e3f4a5b;Parent=1;Sampled=0")
			_, _ = w.Write(ev)
		case <-r.Context().Done():
		}
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, prefix+"invocation/"):
		rest := strings.TrimPrefix(r.URL.Path, prefix+"invocation/")
		id, kind, _ := strings.Cut(rest, "/")
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		rt.answers <- invocation{requestID: id, path: kind, body: body}
	default:
		body, _ := io.ReadAll(r.Body)
		rt.answers <- invocation{path: r.URL.Path, body: body}
		w.WriteHeader(http.StatusAccepted)
	}
}

func dmsRecord(table, op, data string) string {
	return base64.StdEncoding.EncodeToString([]byte(`{"data":` + data + `,"metadata":{"timestamp":"2024-03-18T09:45:03.412907Z","record-type":"data","operation":"` + op +
		`","partition-key-type":"attribute-name","partition-key-value":"1002","schema-name":"orders","table-name":"` + table + `","transaction-id":8754110919}}`))
}

// TestBootstrapAnswersRuntimeAPIInvocations builds the binary as it is
// deployed and drives it through the Lambda Runtime API.
func TestBootstrapAnswersRuntimeAPIInvocations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command(goBin, "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	streamEvent := `{"invocationId":"a1","applicationArn":"arn:aws:kinesisanalytics:us-east-1:123456789012:application/UnifiedOrderEnrichment",` +
		`"streamArn":"arn:aws:kinesis:us-east-1:123456789012:stream/UnifiedOrderStream","records":[` +
		`{"recordId":"4965-1","data":"` + dmsRecord("order_item", "insert", `{"orderId":1002,"itemId":42,"itemQuanity":"1","itemAmount":"42.50","itemStatus":"PENDING"}`) + `",` +
		`"kinesisStreamRecordMetadata":{"shardId":"shardId-000000000002","partitionKey":"1002","sequenceNumber":"4965-1","approximateArrivalTimestamp":1710755103412}},` +
		`{"recordId":"4965-2","data":"` + dmsRecord("customer", "insert", `{"customerId":7}`) + `",` +
		`"kinesisStreamRecordMetadata":{"shardId":"shardId-000000000002","partitionKey":"7","sequenceNumber":"4965-2","approximateArrivalTimestamp":1710755103413}},` +
		`{"recordId":"4965-3","data":"` + dmsRecord("order", "insert", `{"orderId":"abc"}`) + `",` +
		`"kinesisStreamRecordMetadata":{"shardId":"shardId-000000000002","partitionKey":"abc","sequenceNumber":"4965-3","approximateArrivalTimestamp":1710755103414}}]}`
	firehoseEvent := `{"invocationId":"a2","applicationArn":"arn:aws:kinesisanalytics:us-east-1:123456789012:application/UnifiedOrderEnrichment",` +
		`"streamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/UnifiedOrderDelivery","records":[` +
		`{"recordId":"fh-1","data":"` + dmsRecord("order", "update", `{"orderId":1002,"orderStatus":"SHIPPED","orderDateTime":"2024-03-18 09:45:03.007"}`) + `",` +
		`"kinesisFirehoseRecordMetadata":{"approximateArrivalTimestamp":1710755103}}]}`
	rt := &fakeRuntime{next: make(chan []byte, 3), answers: make(chan invocation, 8)}
	for _, ev := range []string{streamEvent, `not an event`, firehoseEvent} {
		rt.next <- []byte(ev)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()

	cmd := exec.Command(bin)
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(srv.URL, "http://"),
		"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=INFO",
		"AWS_LAMBDA_FUNCTION_NAME=preprocess", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
	}
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	answer := func() invocation {
		t.Helper()
		select {
		case a := <-rt.answers:
			return a
		case <-time.After(30 * time.Second):
			t.Fatalf("no answer; output so far:\n%s", stdout.String())
		}
		return invocation{}
	}
	type record struct{ RecordID, Result, Data string }
	results := func(a invocation) []record {
		t.Helper()
		if a.path != "response" {
			t.Fatalf("answered %s: %s", a.path, a.body)
		}
		var resp struct{ Records []record }
		if err := json.Unmarshal(a.body, &resp); err != nil {
			t.Fatalf("response %s: %v", a.body, err)
		}
		return resp.Records
	}
	flat := func(b64 string) string {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("data %q is not base64", b64)
		}
		return string(b)
	}

	t.Run("a Kinesis stream event gets Ok, Dropped and ProcessingFailed in order", func(t *testing.T) {
		recs := results(answer())
		want := []record{
			{"4965-1", "Ok", `{"recordType":"order_item","operation":"insert","orderId":1002,"itemId":42,"itemQuantity":1,"itemAmount":42.5,"itemStatus":"PENDING","sourceTimestamp":"2024-03-18 09:45:03.412907","version":1710755103412907}`},
			{"4965-2", "Dropped", ""},
			{"4965-3", "ProcessingFailed", ""},
		}
		if len(recs) != len(want) {
			t.Fatalf("got %+v", recs)
		}
		for i := range want {
			got := recs[i]
			if got.Data != "" {
				got.Data = flat(got.Data)
			}
			if got != want[i] {
				t.Errorf("record %d: got %+v, want %+v", i, got, want[i])
			}
		}
	})
	t.Run("a payload that is not an event is an invocation error", func(t *testing.T) {
		if a := answer(); a.path != "error" {
			t.Fatalf("answered %s: %s", a.path, a.body)
		}
	})
	t.Run("the function keeps serving, and reads Firehose metadata", func(t *testing.T) {
		recs := results(answer())
		if len(recs) != 1 || recs[0].RecordID != "fh-1" || recs[0].Result != "Ok" ||
			flat(recs[0].Data) != `{"recordType":"order","operation":"update","orderId":1002,"orderStatus":"SHIPPED","orderDateTime":"2024-03-18 09:45:03.007","sourceTimestamp":"2024-03-18 09:45:03.412907","version":1710755103412907}` {
			t.Fatalf("got %+v", recs)
		}
	})
	t.Run("logs are JSON lines, the handler's with the request id, and name the failed record", func(t *testing.T) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		var failed bool
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("log line %q is not JSON", sc.Text())
			}
			_, ours := line["recordId"]
			if _, summary := line["invocationId"]; (ours || summary) && (line["requestId"] == nil || line["requestId"] == "") {
				t.Errorf("log line without requestId: %s", sc.Text())
			}
			if line["recordId"] == "4965-3" && line["level"] == "ERROR" && line["reason"] == `data.orderId: "abc" is not an integer` {
				failed = true
			}
		}
		if !failed {
			t.Errorf("no error line for the malformed record in:\n%s", stdout.String())
		}
	})
}
