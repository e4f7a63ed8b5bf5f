// Package customresource runs CloudFormation custom resource handlers under
// the AWS CDK Provider framework (aws-cdk-lib/custom-resources Provider).
//
// The framework, not the handler, talks to CloudFormation: it invokes the
// user's onEvent function with the CloudFormation event and expects
// {PhysicalResourceId, Data} back; when the provider also has an isComplete
// function, it then invokes that one every queryInterval with the event
// merged with onEvent's answer until it returns {IsComplete: true, Data} or
// the provider's totalTimeout passes. A handler signals failure by
// returning an error: the framework reports the error's message to
// CloudFormation as the failure reason.
//
// One Lambda function can serve as both onEvent and isComplete handler:
// onEvent's answer always carries an IsCompleteInput field (the framework
// hands every field of it to isComplete), so a request that has one is an
// isComplete call. A Handler without an isComplete step answers such a
// call with IsComplete true, so it works whether or not the provider is
// given an isComplete handler.
package customresource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/cfn"
)

// Request types.
const (
	Create = cfn.RequestCreate
	Update = cfn.RequestUpdate
	Delete = cfn.RequestDelete
)

// Request is what the Provider framework passes to a handler: the
// CloudFormation event, plus, in isComplete calls, what onEvent returned.
type Request struct {
	cfn.Event
	// Data is onEvent's Data (isComplete calls only).
	Data map[string]any `json:"Data,omitempty"`
	// IsCompleteInput is onEvent's IsCompleteInput (isComplete calls only).
	IsCompleteInput json.RawMessage `json:"IsCompleteInput,omitempty"`
}

// Properties decodes the resource properties into v, a pointer to a struct
// with json tags. CloudFormation passes every scalar property as a string,
// so fields should be strings.
func (r Request) Properties(v any) error { return decodeProperties(r.ResourceProperties, v) }

// ValidProperties decodes the resource properties into a P and checks
// them with validate (typically the method expression (*P).validate).
func ValidProperties[P any](r Request, validate func(*P) error) (P, error) {
	var p P
	if err := r.Properties(&p); err != nil {
		return p, err
	}
	return p, validate(&p)
}

// OldProperties decodes the properties before an update into v.
func (r Request) OldProperties(v any) error { return decodeProperties(r.OldResourceProperties, v) }

// Input decodes IsCompleteInput into v.
func (r Request) Input(v any) error {
	if len(r.IsCompleteInput) == 0 {
		return errors.New("isComplete request without IsCompleteInput")
	}
	if err := json.Unmarshal(r.IsCompleteInput, v); err != nil {
		return fmt.Errorf("decode IsCompleteInput: %w", err)
	}
	return nil
}

func decodeProperties(props map[string]any, v any) error {
	b, err := json.Marshal(props)
	if err != nil {
		return fmt.Errorf("resource properties: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("resource properties: %w", err)
	}
	return nil
}

// Response is an onEvent handler's answer.
type Response struct {
	// PhysicalResourceID identifies the resource. Returning a different one
	// on Update makes CloudFormation delete the old one (a Delete request
	// with the old ID) when the stack update completes. Empty keeps the
	// current one (on Create: the request ID).
	PhysicalResourceID string
	// Data are the resource's attributes (Fn::GetAtt). CloudFormation
	// limits a whole response to 4 KiB: keep them small.
	Data map[string]any
	// IsCompleteInput is handed to every isComplete call for this event;
	// nil is sent as {}.
	IsCompleteInput any
}

// CompleteResponse is an isComplete handler's answer. The framework
// rejects Data while IsComplete is false.
type CompleteResponse struct {
	IsComplete bool           `json:"IsComplete"`
	Data       map[string]any `json:"Data,omitempty"`
}

// Handler handles a provider's onEvent requests.
type Handler interface {
	OnEvent(ctx context.Context, req Request) (Response, error)
}

// AsyncHandler also answers the provider's isComplete requests.
type AsyncHandler interface {
	Handler
	IsComplete(ctx context.Context, req Request) (CompleteResponse, error)
}

// Poll answers an isComplete request by decoding onEvent's
// IsCompleteInput into an In and asking step whether the goal is reached;
// for handlers whose every isComplete call is one such step.
func Poll[In any](ctx context.Context, req Request, step func(context.Context, In) (bool, error)) (CompleteResponse, error) {
	var in In
	if err := req.Input(&in); err != nil {
		return CompleteResponse{}, err
	}
	done, err := step(ctx, in)
	if err != nil {
		return CompleteResponse{}, err
	}
	return CompleteResponse{IsComplete: done}, nil
}

// wireResponse is onEvent's answer as the framework reads it.
type wireResponse struct {
	PhysicalResourceID string          `json:"PhysicalResourceId,omitempty"`
	Data               map[string]any  `json:"Data,omitempty"`
	IsCompleteInput    json.RawMessage `json:"IsCompleteInput,omitempty"`
}

// Lambda adapts h to lambda.Start. The function serves both the
// provider's onEvent and isComplete roles; when h is not an AsyncHandler
// its isComplete answer is always "complete".
func Lambda(h Handler, logger *slog.Logger) func(context.Context, Request) (any, error) {
	async, isAsync := h.(AsyncHandler)
	return func(ctx context.Context, req Request) (any, error) {
		phase := "onEvent"
		if req.IsCompleteInput != nil {
			phase = "isComplete"
		}
		log := logger.With(
			"phase", phase,
			"requestType", req.RequestType,
			"requestId", req.RequestID,
			"logicalResourceId", req.LogicalResourceID,
			"physicalResourceId", req.PhysicalResourceID,
			"resourceType", req.ResourceType,
		)
		ctx = WithLogger(ctx, log)
		switch req.RequestType {
		case Create, Update, Delete:
		default:
			return nil, fmt.Errorf("unknown request type %q", req.RequestType)
		}

		if phase == "isComplete" {
			if !isAsync {
				// onEvent did all the work; a provider configured with
				// this function as isComplete handler too just finishes.
				log.InfoContext(ctx, "custom resource progress", "isComplete", true)
				return CompleteResponse{IsComplete: true}, nil
			}
			resp, err := async.IsComplete(ctx, req)
			if err != nil {
				log.ErrorContext(ctx, "custom resource failed", "error", err)
				return nil, err
			}
			if !resp.IsComplete {
				resp.Data = nil
			}
			log.InfoContext(ctx, "custom resource progress", "isComplete", resp.IsComplete)
			return resp, nil
		}

		log.InfoContext(ctx, "custom resource request")
		resp, err := h.OnEvent(ctx, req)
		if err != nil {
			log.ErrorContext(ctx, "custom resource failed", "error", err)
			return nil, err
		}
		out := wireResponse{PhysicalResourceID: resp.PhysicalResourceID, Data: resp.Data}
		if req.RequestType == Delete && out.PhysicalResourceID != "" && out.PhysicalResourceID != req.PhysicalResourceID {
			// The framework fails a Delete that changes the ID.
			return nil, fmt.Errorf("delete must keep physical resource ID %q, handler returned %q", req.PhysicalResourceID, out.PhysicalResourceID)
		}
		// Always present, so that an isComplete call is recognised even
		// when onEvent had nothing to hand over.
		input := resp.IsCompleteInput
		if input == nil {
			input = struct{}{}
		}
		b, err := json.Marshal(input)
		if err != nil {
			return nil, fmt.Errorf("encode IsCompleteInput: %w", err)
		}
		out.IsCompleteInput = b
		log.InfoContext(ctx, "custom resource handled", "newPhysicalResourceId", out.PhysicalResourceID)
		return out, nil
	}
}

type loggerKey struct{}

// WithLogger returns ctx carrying logger, for Logger.
func WithLogger(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// Logger returns the request's logger (tagged with the request's IDs), or
// slog.Default outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
