// Package customresourcetest plays the CDK Provider framework against a
// custom resource handler in tests.
package customresourcetest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/customresource"
)

// Outcome is how the Provider framework would end an event.
type Outcome struct {
	Resp  customresource.Response
	Polls int // isComplete calls
	Done  bool
	Err   error
}

// Run plays the Provider framework: onEvent once, then, with onEvent's
// answer merged into the event as the framework does, isComplete after
// each tick until it completes, fails, or maxPolls calls pass (the
// provider's totalTimeout).
func Run(t testing.TB, h customresource.AsyncHandler, req customresource.Request, tick func(), maxPolls int) Outcome {
	t.Helper()
	ctx := customresource.WithLogger(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	resp, err := h.OnEvent(ctx, req)
	if err != nil {
		return Outcome{Err: err}
	}
	input, err := json.Marshal(resp.IsCompleteInput)
	if err != nil {
		t.Fatal(err)
	}
	req.IsCompleteInput = input
	req.Data = resp.Data
	if resp.PhysicalResourceID != "" {
		req.PhysicalResourceID = resp.PhysicalResourceID
	}
	o := Outcome{Resp: resp}
	for o.Polls < maxPolls {
		tick()
		o.Polls++
		c, err := h.IsComplete(ctx, req)
		if err != nil {
			o.Err = err
			return o
		}
		if c.IsComplete {
			o.Done = true
			return o
		}
	}
	return o
}
