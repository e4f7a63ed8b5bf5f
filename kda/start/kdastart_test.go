package kdastart_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/customresourcetest"
	"github.com/unified-streaming-etl/etl/kda/start"
)

const appName = "Application-4Gq9Xh2LkP1e"

// fakeKDA is an application whose status moves on at each tick the way
// KDA moves it.
type fakeKDA struct {
	apps       map[string]*kdastart.Application
	starts     [][]kdastart.InputConfiguration
	stops      int
	startErr   error
	stopErr    error
	failStarts bool // a started application falls back to READY
	afterStop  func()
	stuck      bool // transitional statuses never settle
}

func newFakeKDA(status string, ranBefore bool) *fakeKDA {
	input := kdastart.InputDescription{InputID: "1.1", NamePrefix: "SOURCE_SQL_STREAM", InputStartingPositionConfiguration: &kdastart.StartingPosition{}}
	if ranBefore {
		input.InputStartingPositionConfiguration.InputStartingPosition = "TRIM_HORIZON"
	}
	return &fakeKDA{apps: map[string]*kdastart.Application{appName: {
		ApplicationName: appName, ApplicationStatus: status, InputDescriptions: []kdastart.InputDescription{input},
	}}}
}

func notFound(name string) error {
	return &kdastart.APIError{Code: "ResourceNotFoundException", Message: "Application " + name + " is not found.", StatusCode: 400}
}

func (f *fakeKDA) DescribeApplication(_ context.Context, name string) (kdastart.Application, error) {
	app, ok := f.apps[name]
	if !ok {
		return kdastart.Application{}, notFound(name)
	}
	return *app, nil
}

func (f *fakeKDA) StartApplication(_ context.Context, name string, inputs []kdastart.InputConfiguration) error {
	f.starts = append(f.starts, inputs)
	if f.startErr != nil {
		return f.startErr
	}
	app, ok := f.apps[name]
	if !ok {
		return notFound(name)
	}
	if app.ApplicationStatus != "READY" {
		return &kdastart.APIError{Code: "ResourceInUseException", Message: "Application is in " + app.ApplicationStatus + " state", StatusCode: 400}
	}
	app.ApplicationStatus = "STARTING"
	return nil
}

func (f *fakeKDA) StopApplication(_ context.Context, name string) error {
	f.stops++
	if f.afterStop != nil {
		defer f.afterStop()
	}
	if f.stopErr != nil {
		return f.stopErr
	}
	app, ok := f.apps[name]
	if !ok {
		return notFound(name)
	}
	app.ApplicationStatus = "STOPPING"
	return nil
}

func (f *fakeKDA) tick() {
	if f.stuck {
		return
	}
	for _, app := range f.apps {
		switch app.ApplicationStatus {
		case "STARTING":
			if f.failStarts {
				app.ApplicationStatus = "READY"
				continue
			}
			app.ApplicationStatus = "RUNNING"
			for i := range app.InputDescriptions {
				app.InputDescriptions[i].InputStartingPositionConfiguration = &kdastart.StartingPosition{InputStartingPosition: f.starts[len(f.starts)-1][i].InputStartingPositionConfiguration.InputStartingPosition}
			}
		case "STOPPING", "UPDATING":
			app.ApplicationStatus = "READY"
		}
	}
}

func event(typ cfn.RequestType, physicalID string, props, old map[string]any) customresource.Request {
	return customresource.Request{Event: cfn.Event{
		RequestType: typ, RequestID: "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a",
		StackID:           "arn:aws:cloudformation:eu-west-1:123456789012:stack/UnifiedStreamETLProcessStack/7d2e3b40-5f3e-11f1-9c0d-0a1b2c3d4e5f",
		LogicalResourceID: "ApplicationRunning", ResourceType: "Custom::KdaApplicationRunning",
		PhysicalResourceID: physicalID, ResourceProperties: props, OldResourceProperties: old,
	}}
}

type outcome = customresourcetest.Outcome

// run plays the provider framework against a handler on f
// (customresourcetest.Run).
func run(t *testing.T, f *fakeKDA, req customresource.Request, maxPolls int) outcome {
	t.Helper()
	return customresourcetest.Run(t, &kdastart.Handler{KDA: f}, req, f.tick, maxPolls)
}

func positions(starts [][]kdastart.InputConfiguration) []string {
	var out []string
	for _, s := range starts {
		for _, in := range s {
			out = append(out, in.ID+"="+in.InputStartingPositionConfiguration.InputStartingPosition)
		}
	}
	return out
}

func TestStartingTheApplication(t *testing.T) {
	props := map[string]any{"ApplicationName": appName}
	tests := []struct {
		name          string
		fake          func() *fakeKDA
		req           customresource.Request
		wantPositions []string
	}{
		{"create starts a ready application from the stream's trim horizon",
			func() *fakeKDA { return newFakeKDA("READY", false) },
			event(customresource.Create, "", props, nil), []string{"1.1=TRIM_HORIZON"}},
		{"create waits while CloudFormation is still updating the application, then starts it",
			func() *fakeKDA { return newFakeKDA("UPDATING", false) },
			event(customresource.Create, "", props, nil), []string{"1.1=TRIM_HORIZON"}},
		{"an application that is already running is left alone",
			func() *fakeKDA { return newFakeKDA("RUNNING", true) },
			event(customresource.Create, "", props, nil), nil},
		{"an update restarts a stopped application where it stopped",
			func() *fakeKDA { return newFakeKDA("READY", true) },
			event(customresource.Update, appName, props, props), []string{"1.1=LAST_STOPPED_POINT"}},
		{"an update of an application that never ran starts it from the trim horizon",
			func() *fakeKDA { return newFakeKDA("READY", false) },
			event(customresource.Update, appName, props, props), []string{"1.1=TRIM_HORIZON"}},
		{"an update to another application starts it from the trim horizon",
			func() *fakeKDA { return newFakeKDA("READY", true) },
			event(customresource.Update, "Application-OLD", props, map[string]any{"ApplicationName": "Application-OLD"}), []string{"1.1=TRIM_HORIZON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fake()
			o := run(t, f, tt.req, 10)
			if o.Err != nil || !o.Done {
				t.Fatalf("done = %v, err = %v; want the application running", o.Done, o.Err)
			}
			if got := positions(f.starts); strings.Join(got, ",") != strings.Join(tt.wantPositions, ",") {
				t.Errorf("starts = %q, want %q", got, tt.wantPositions)
			}
			if o.Resp.PhysicalResourceID != appName {
				t.Errorf("physical ID = %q, want the application name", o.Resp.PhysicalResourceID)
			}
		})
	}
}

func TestStartFailures(t *testing.T) {
	props := map[string]any{"ApplicationName": appName}
	t.Run("a missing application fails the create", func(t *testing.T) {
		f := newFakeKDA("READY", false)
		o := run(t, f, event(customresource.Create, "", map[string]any{"ApplicationName": "nope"}, nil), 10)
		if o.Err == nil || !strings.Contains(o.Err.Error(), "application nope does not exist") {
			t.Fatalf("err = %v", o.Err)
		}
	})
	t.Run("a start the service refuses fails with its message", func(t *testing.T) {
		f := newFakeKDA("READY", false)
		f.startErr = &kdastart.APIError{Code: "UnsupportedOperationException", Message: "Kinesis Data Analytics for SQL applications can no longer be started", StatusCode: 400}
		o := run(t, f, event(customresource.Create, "", props, nil), 10)
		if o.Err == nil || !strings.Contains(o.Err.Error(), "can no longer be started") {
			t.Fatalf("err = %v", o.Err)
		}
	})
	t.Run("a start refused because the application is busy is not an error", func(t *testing.T) {
		f := newFakeKDA("READY", false)
		f.startErr = &kdastart.APIError{Code: "ResourceInUseException", Message: "Application is in STARTING state", StatusCode: 400}
		o := run(t, f, event(customresource.Create, "", props, nil), 2)
		if o.Err != nil {
			t.Fatalf("err = %v", o.Err)
		}
	})
	t.Run("an application without inputs cannot be started", func(t *testing.T) {
		f := newFakeKDA("READY", false)
		f.apps[appName].InputDescriptions = nil
		o := run(t, f, event(customresource.Create, "", props, nil), 10)
		if o.Err == nil || !strings.Contains(o.Err.Error(), "has no input") {
			t.Fatalf("err = %v", o.Err)
		}
	})
	t.Run("while the application is starting, isComplete only reports progress", func(t *testing.T) {
		f := newFakeKDA("READY", false)
		f.stuck = true
		o := run(t, f, event(customresource.Create, "", props, nil), 10)
		if o.Err != nil || o.Done || o.Polls != 10 {
			t.Fatalf("after %d polls: done = %v, err = %v", o.Polls, o.Done, o.Err)
		}
		if len(f.starts) != 1 {
			t.Errorf("started %d times, want once", len(f.starts))
		}
	})
	t.Run("an application that falls back to ready is started again at the next poll", func(t *testing.T) {
		f := newFakeKDA("READY", false)
		f.failStarts = true
		o := run(t, f, event(customresource.Create, "", props, nil), 3)
		if o.Err != nil || o.Done {
			t.Fatalf("done = %v, err = %v", o.Done, o.Err)
		}
		if len(f.starts) != 4 {
			t.Errorf("started %d times over 3 polls, want once per poll plus onEvent's", len(f.starts))
		}
	})
	t.Run("the application name is required", func(t *testing.T) {
		o := run(t, newFakeKDA("READY", false), event(customresource.Create, "", map[string]any{}, nil), 1)
		if o.Err == nil || !strings.Contains(o.Err.Error(), "ApplicationName is required") {
			t.Fatalf("err = %v", o.Err)
		}
	})
}

func TestDeleteStopsTheApplication(t *testing.T) {
	tests := []struct {
		name      string
		fake      func() *fakeKDA
		wantStops int
	}{
		{"a running application is stopped and the delete waits until it is ready", func() *fakeKDA { return newFakeKDA("RUNNING", true) }, 1},
		{"a ready application needs no stop", func() *fakeKDA { return newFakeKDA("READY", true) }, 0},
		{"a missing application is fine", func() *fakeKDA { f := newFakeKDA("READY", true); delete(f.apps, appName); return f }, 0},
		{"a stop racing the application's deletion is fine", func() *fakeKDA {
			f := newFakeKDA("RUNNING", true)
			f.stopErr = notFound(appName)
			f.afterStop = func() { delete(f.apps, appName) }
			return f
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fake()
			// A Delete needs no properties: the physical ID names the application.
			o := run(t, f, event(customresource.Delete, appName, map[string]any{}, nil), 10)
			if o.Err != nil || !o.Done {
				t.Fatalf("done = %v, err = %v", o.Done, o.Err)
			}
			if f.stops != tt.wantStops {
				t.Errorf("stops = %d, want %d", f.stops, tt.wantStops)
			}
			if o.Resp.PhysicalResourceID != appName {
				t.Errorf("physical ID = %q, want it kept", o.Resp.PhysicalResourceID)
			}
			if app, ok := f.apps[appName]; ok && app.ApplicationStatus == "RUNNING" {
				t.Error("the application still runs")
			}
		})
	}
}
