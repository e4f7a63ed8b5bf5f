package customresource_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unified-streaming-etl/etl/internal/customresource"
)

func readRequest(t *testing.T, name string) customresource.Request {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var req customresource.Request
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	return req
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type taskProps struct {
	ReplicationTaskArn string `json:"ReplicationTaskArn"`
	TaskConfig         string `json:"TaskConfig"`
	Attempts           string `json:"Attempts"`
}

func TestRequestDecoding(t *testing.T) {
	t.Run("an onEvent request carries the CloudFormation event and its string properties", func(t *testing.T) {
		req := readRequest(t, "oneventcreate.json")
		if req.RequestType != customresource.Create || req.LogicalResourceID != "ReplicationTaskRunning" || req.PhysicalResourceID != "" {
			t.Fatalf("event = %+v", req.Event)
		}
		if req.IsCompleteInput != nil {
			t.Errorf("onEvent request has IsCompleteInput %s", req.IsCompleteInput)
		}
		var p taskProps
		if err := req.Properties(&p); err != nil {
			t.Fatal(err)
		}
		want := taskProps{"arn:aws:dms:eu-west-1:123456789012:task:ABCDEFGHIJKLMNOPQRSTUVWXYZ", "3f5a1c0e9b", "3"}
		if p != want {
			t.Errorf("properties = %+v, want %+v", p, want)
		}
	})
	t.Run("an isComplete request carries old properties, onEvent's data and its input", func(t *testing.T) {
		req := readRequest(t, "iscompleteupdate.json")
		var old taskProps
		if err := req.OldProperties(&old); err != nil || old.TaskConfig != "3f5a1c0e9b" {
			t.Errorf("old properties = %+v, %v", old, err)
		}
		var in struct{ Goal, Since string }
		if err := req.Input(&in); err != nil || in.Goal != "running" || in.Since == "" {
			t.Errorf("input = %+v, %v", in, err)
		}
		if req.Data["ReplicationTaskArn"] == nil {
			t.Errorf("data = %v", req.Data)
		}
	})
	t.Run("a property of the wrong shape is an error", func(t *testing.T) {
		req := readRequest(t, "oneventcreate.json")
		var p struct {
			Attempts int `json:"Attempts"` // CloudFormation sends "3"
		}
		if err := req.Properties(&p); err == nil {
			t.Error("decoding a string property into an int succeeded")
		}
	})
}

// fake records calls and answers with what the test set.
type fake struct {
	onEvent   customresource.Response
	complete  customresource.CompleteResponse
	err       error
	gotInput  json.RawMessage
	onEvents  int
	completes int
}

func (f *fake) OnEvent(_ context.Context, req customresource.Request) (customresource.Response, error) {
	f.onEvents++
	return f.onEvent, f.err
}

type asyncFake struct{ *fake }

func (f asyncFake) IsComplete(_ context.Context, req customresource.Request) (customresource.CompleteResponse, error) {
	f.completes++
	f.gotInput = req.IsCompleteInput
	return f.complete, f.err
}

// invoke runs fn on a request encoded as the Lambda runtime would deliver
// it and returns the answer as the framework would read it.
func invoke(t *testing.T, fn func(context.Context, customresource.Request) (any, error), event map[string]any) (map[string]any, error) {
	t.Helper()
	b, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	var req customresource.Request
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	out, err := fn(context.Background(), req)
	if err != nil {
		return nil, err
	}
	b, err = json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var resp map[string]any
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return resp, nil
}

func rawEvent(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLambda(t *testing.T) {
	t.Run("onEvent's answer reaches isComplete the way the framework merges it", func(t *testing.T) {
		f := &fake{
			onEvent:  customresource.Response{PhysicalResourceID: "task-1", Data: map[string]any{"Arn": "x"}, IsCompleteInput: map[string]string{"Goal": "running"}},
			complete: customresource.CompleteResponse{IsComplete: true, Data: map[string]any{"Status": "running"}},
		}
		fn := customresource.Lambda(asyncFake{f}, discard)
		create := rawEvent(t, "oneventcreate.json")
		resp, err := invoke(t, fn, create)
		if err != nil {
			t.Fatal(err)
		}
		if resp["PhysicalResourceId"] != "task-1" || !reflect.DeepEqual(resp["Data"], map[string]any{"Arn": "x"}) {
			t.Errorf("onEvent answer = %v", resp)
		}
		// The framework calls isComplete with {...request, ...onEventAnswer}.
		next := maps.Clone(create)
		maps.Copy(next, resp)
		resp, err = invoke(t, fn, next)
		if err != nil {
			t.Fatal(err)
		}
		if f.onEvents != 1 || f.completes != 1 {
			t.Fatalf("onEvent ran %d times and isComplete %d, want once each", f.onEvents, f.completes)
		}
		if string(f.gotInput) != `{"Goal":"running"}` {
			t.Errorf("isComplete got input %s", f.gotInput)
		}
		if resp["IsComplete"] != true || !reflect.DeepEqual(resp["Data"], map[string]any{"Status": "running"}) {
			t.Errorf("isComplete answer = %v", resp)
		}
	})
	t.Run("an async handler's onEvent always hands isComplete an input, so the next call is routed there", func(t *testing.T) {
		f := &fake{}
		resp, err := invoke(t, customresource.Lambda(asyncFake{f}, discard), rawEvent(t, "oneventcreate.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(resp["IsCompleteInput"], map[string]any{}) {
			t.Errorf("IsCompleteInput = %#v, want {}", resp["IsCompleteInput"])
		}
	})
	t.Run("a handler without isComplete is complete as soon as onEvent returns", func(t *testing.T) {
		f := &fake{}
		fn := customresource.Lambda(f, discard)
		create := rawEvent(t, "oneventcreate.json")
		resp, err := invoke(t, fn, create)
		if err != nil {
			t.Fatal(err)
		}
		next := maps.Clone(create)
		maps.Copy(next, resp)
		resp, err = invoke(t, fn, next)
		if err != nil {
			t.Fatal(err)
		}
		if resp["IsComplete"] != true {
			t.Errorf("isComplete answer = %v, want complete", resp)
		}
		if f.onEvents != 1 {
			t.Errorf("onEvent ran %d times; the isComplete call must not run it again", f.onEvents)
		}
	})
	t.Run("data is dropped while not complete because the framework rejects it", func(t *testing.T) {
		f := &fake{complete: customresource.CompleteResponse{Data: map[string]any{"Status": "starting"}}}
		resp, err := invoke(t, customresource.Lambda(asyncFake{f}, discard), rawEvent(t, "iscompleteupdate.json"))
		if err != nil {
			t.Fatal(err)
		}
		if resp["IsComplete"] != false || resp["Data"] != nil {
			t.Errorf("answer = %v, want IsComplete false without Data", resp)
		}
	})
	t.Run("a handler error fails the request with its message", func(t *testing.T) {
		boom := errors.New("task failed: Last Error Endpoint initialization failed")
		for _, name := range []string{"oneventcreate.json", "iscompleteupdate.json"} {
			_, err := invoke(t, customresource.Lambda(asyncFake{&fake{err: boom}}, discard), rawEvent(t, name))
			if !errors.Is(err, boom) {
				t.Errorf("%s: err = %v, want %v", name, err, boom)
			}
		}
	})
	t.Run("a delete may not change the physical resource ID", func(t *testing.T) {
		del := rawEvent(t, "iscompleteupdate.json")
		del["RequestType"] = "Delete"
		delete(del, "IsCompleteInput")
		f := &fake{onEvent: customresource.Response{PhysicalResourceID: "something-else"}}
		_, err := invoke(t, customresource.Lambda(asyncFake{f}, discard), del)
		if err == nil || !strings.Contains(err.Error(), "must keep physical resource ID") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("the function works through the Lambda runtime's own decoding and encoding", func(t *testing.T) {
		f := &fake{onEvent: customresource.Response{PhysicalResourceID: "task-1", IsCompleteInput: map[string]string{"Goal": "running"}}}
		payload, err := os.ReadFile(filepath.Join("testdata", "oneventcreate.json"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := lambda.NewHandler(customresource.Lambda(asyncFake{f}, discard)).Invoke(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != `{"PhysicalResourceId":"task-1","IsCompleteInput":{"Goal":"running"}}` {
			t.Errorf("answer = %s", out)
		}
	})
	t.Run("an unknown request type is refused before the handler runs", func(t *testing.T) {
		ev := rawEvent(t, "oneventcreate.json")
		ev["RequestType"] = "Import"
		f := &fake{}
		if _, err := invoke(t, customresource.Lambda(asyncFake{f}, discard), ev); err == nil || f.onEvents != 0 {
			t.Errorf("err = %v, handler ran %d times", err, f.onEvents)
		}
	})
}
