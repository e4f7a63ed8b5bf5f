// Package kdastart is the custom resource that starts the Kinesis Data
// Analytics SQL application (processor=kda-sql), which CloudFormation
// creates but leaves in the READY state.
//
// Create and Update wait until the application is READY (it is UPDATING
// while CloudFormation adds its reference data and output), start it with
// its input reading from TRIM_HORIZON, or from LAST_STOPPED_POINT when an
// Update finds an application that ran before, and wait until it is
// RUNNING. Delete stops it (a missing application is fine) and waits until
// it is no longer running, so that CloudFormation can delete it.
//
// The v1 API reports no reason when a start fails (the application just
// returns to READY), so a failing application is started again at each
// poll until the provider's totalTimeout, and the function's log has each
// attempt.
package kdastart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/unified-streaming-etl/etl/internal/customresource"
)

// Application statuses.
const (
	statusDeleting = "DELETING"
	statusReady    = "READY"
	statusRunning  = "RUNNING"
	statusStarting = "STARTING"
	statusStopping = "STOPPING"
	statusUpdating = "UPDATING"
)

// Starting positions.
const (
	TrimHorizon      = "TRIM_HORIZON"
	LastStoppedPoint = "LAST_STOPPED_POINT"
)

const (
	goalRunning = "running"
	goalStopped = "stopped"
)

// Properties are the custom resource's properties; others are ignored.
type Properties struct {
	// ApplicationName is the application's name (the Ref of
	// AWS::KinesisAnalytics::Application). Required.
	ApplicationName string `json:"ApplicationName"`
}

// API is the part of the Kinesis Data Analytics v1 API the handler uses
// (Client implements it).
type API interface {
	DescribeApplication(ctx context.Context, name string) (Application, error)
	StartApplication(ctx context.Context, name string, inputs []InputConfiguration) error
	StopApplication(ctx context.Context, name string) error
}

// Handler handles the custom resource's onEvent and isComplete requests.
type Handler struct {
	KDA API
}

type waitInput struct {
	Goal        string `json:"Goal"`
	Application string `json:"Application"`
	// Resume asks for LAST_STOPPED_POINT when the application ran before:
	// an Update of the same application must not re-read the stream's
	// whole retention.
	Resume bool `json:"Resume,omitempty"`
}

// OnEvent decides the goal, takes the first step and hands the rest to
// IsComplete.
func (h *Handler) OnEvent(ctx context.Context, req customresource.Request) (customresource.Response, error) {
	var in waitInput
	var resp customresource.Response
	if req.RequestType == customresource.Delete {
		// The physical ID names the application this resource started;
		// the properties are not needed, so they cannot fail a Delete.
		in = waitInput{Goal: goalStopped, Application: req.PhysicalResourceID}
		resp.PhysicalResourceID = req.PhysicalResourceID
	} else {
		var p Properties
		if err := req.Properties(&p); err != nil {
			return customresource.Response{}, err
		}
		if p.ApplicationName == "" {
			return customresource.Response{}, errors.New("property ApplicationName is required")
		}
		in = waitInput{Goal: goalRunning, Application: p.ApplicationName}
		resp.PhysicalResourceID = p.ApplicationName
		if req.RequestType == customresource.Update {
			var old Properties
			if err := req.OldProperties(&old); err != nil {
				return customresource.Response{}, err
			}
			in.Resume = old.ApplicationName == p.ApplicationName
		}
	}
	customresource.Logger(ctx).InfoContext(ctx, "kda application event", "application", in.Application, "goal", in.Goal, "resume", in.Resume)
	resp.IsCompleteInput = in
	if _, err := h.step(ctx, in); err != nil {
		return customresource.Response{}, err
	}
	return resp, nil
}

// IsComplete takes the next step and reports whether the goal is reached.
func (h *Handler) IsComplete(ctx context.Context, req customresource.Request) (customresource.CompleteResponse, error) {
	return customresource.Poll(ctx, req, h.step)
}

func (h *Handler) step(ctx context.Context, in waitInput) (bool, error) {
	log := customresource.Logger(ctx).With("application", in.Application, "goal", in.Goal)
	app, err := h.KDA.DescribeApplication(ctx, in.Application)
	missing := hasCode(err, "ResourceNotFoundException")
	if err != nil && !missing {
		return false, err
	}
	if !missing {
		log = log.With("status", app.ApplicationStatus)
	}
	switch in.Goal {
	case goalRunning:
		if missing {
			return false, fmt.Errorf("application %s does not exist", in.Application)
		}
		switch app.ApplicationStatus {
		case statusRunning:
			log.InfoContext(ctx, "application running")
			return true, nil
		case statusReady:
			return false, h.start(ctx, log, app, in.Resume)
		case statusDeleting:
			return false, fmt.Errorf("application %s is being deleted", in.Application)
		default:
			// STARTING, STOPPING, UPDATING (CloudFormation still adding
			// the reference table or output) or a newer status.
			log.InfoContext(ctx, "waiting for the application")
			return false, nil
		}
	case goalStopped:
		if missing {
			return true, nil
		}
		switch app.ApplicationStatus {
		case statusReady, statusDeleting:
			return true, nil
		case statusRunning:
			log.InfoContext(ctx, "stopping application")
			err := h.KDA.StopApplication(ctx, in.Application)
			if err != nil && !hasCode(err, "ResourceNotFoundException") && !hasCode(err, "ResourceInUseException") {
				return false, err
			}
			return false, nil
		default:
			// STARTING cannot be stopped yet; STOPPING and UPDATING settle.
			log.InfoContext(ctx, "waiting for the application")
			return false, nil
		}
	}
	return false, fmt.Errorf("unknown goal %q", in.Goal)
}

func (h *Handler) start(ctx context.Context, log *slog.Logger, app Application, resume bool) error {
	if len(app.InputDescriptions) == 0 {
		return fmt.Errorf("application %s has no input to start", app.ApplicationName)
	}
	inputs := make([]InputConfiguration, 0, len(app.InputDescriptions))
	for _, d := range app.InputDescriptions {
		pos := TrimHorizon
		if resume && d.InputStartingPositionConfiguration != nil && d.InputStartingPositionConfiguration.InputStartingPosition != "" {
			pos = LastStoppedPoint
		}
		inputs = append(inputs, InputConfiguration{ID: d.InputID, InputStartingPositionConfiguration: StartingPosition{InputStartingPosition: pos}})
	}
	log.InfoContext(ctx, "starting application", "inputs", inputs)
	err := h.KDA.StartApplication(ctx, app.ApplicationName, inputs)
	if hasCode(err, "ResourceInUseException") {
		// Someone else is starting or changing it: the next poll sees
		// where it went.
		log.InfoContext(ctx, "application busy; waiting", "reason", err.Error())
		return nil
	}
	return err
}
