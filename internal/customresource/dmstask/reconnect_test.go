package dmstask_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/unified-streaming-etl/etl/internal/customresource/dmstask"
)

// rotationEvent is testdata/rotation-succeeded.json, the CloudTrail service
// event EventBridge delivers after Secrets Manager rotated a secret.
func rotationEvent(t *testing.T) events.CloudWatchEvent {
	t.Helper()
	raw, err := os.ReadFile("testdata/rotation-succeeded.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// reconnector is a handler whose polls let the fake DMS move on, with at
// most polls of them before the context ends.
func reconnector(f *fakeDMS, polls int) *dmstask.Handler {
	h := handler(f, nil)
	h.Sleep = func(ctx context.Context, d time.Duration) error {
		if d != dmstask.ReconnectPollInterval {
			return errors.New("unexpected poll interval")
		}
		if polls == 0 {
			return context.DeadlineExceeded
		}
		polls--
		f.tick()
		return nil
	}
	return h
}

func TestRotationReconnectsARunningTaskWithResumeProcessing(t *testing.T) {
	f := newFakeDMS()
	task := f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc)
	f.ranBefore(task)
	task.Status = aws.String("running")

	if err := reconnector(f, maxPolls).OnRotation(context.Background(), taskArn, rotationEvent(t)); err != nil {
		t.Fatal(err)
	}
	// Resumed from its checkpoint: a fresh start would reload the tables
	// into the stream.
	if got, want := f.actions(), []string{"stop", "start:resume-processing"}; !slices.Equal(got, want) {
		t.Errorf("DMS calls %v, want %v", got, want)
	}
	if aws.ToString(task.Status) != "running" {
		t.Errorf("task %s, want running", aws.ToString(task.Status))
	}
}

func TestRotationRestartsATaskThatFailedOnTheOldPassword(t *testing.T) {
	f := newFakeDMS()
	task := f.add(taskArn, "failed", types.MigrationTypeValueFullLoadAndCdc)
	f.ranBefore(task)
	task.Status, task.LastFailureMessage = aws.String("failed"), aws.String("Error 1045 (28000): Access denied for user 'dms_user'")

	if err := reconnector(f, maxPolls).OnRotation(context.Background(), taskArn, rotationEvent(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := f.actions(), []string{"start:resume-processing"}; !slices.Equal(got, want) || aws.ToString(task.Status) != "running" {
		t.Errorf("DMS calls %v, task %s; want %v and running", got, aws.ToString(task.Status), want)
	}
}

func TestRotationLeavesAStoppedTaskStopped(t *testing.T) {
	for _, status := range []string{"stopped", "ready"} {
		t.Run(status, func(t *testing.T) {
			f := newFakeDMS()
			f.add(taskArn, status, types.MigrationTypeValueFullLoadAndCdc)
			if err := reconnector(f, maxPolls).OnRotation(context.Background(), taskArn, rotationEvent(t)); err != nil {
				t.Fatal(err)
			}
			if len(f.actions()) != 0 {
				t.Errorf("DMS calls %v on a task someone stopped on purpose", f.actions())
			}
		})
	}
}

func TestRotationFailsWhenTheTaskDoesNotComeBack(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*fakeTask)
		want  string
	}{
		{"it fails on resume", func(task *fakeTask) { task.failOnStart = "Error 1045 (28000): Access denied for user 'dms_user'" }, "Access denied"},
		{"it never settles", func(task *fakeTask) { task.neverSettles = true }, "did not reach"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDMS()
			task := f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc)
			f.ranBefore(task)
			task.Status = aws.String("running")
			tt.setup(task)
			err := reconnector(f, maxPolls).OnRotation(context.Background(), taskArn, rotationEvent(t))
			// The error is what the function's Errors alarm counts.
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRotationIgnoresOtherEventsAndRefusesABadTaskArn(t *testing.T) {
	f := newFakeDMS()
	f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc)
	ev := rotationEvent(t)
	ev.Detail = []byte(strings.Replace(string(ev.Detail), `"RotationSucceeded"`, `"RotationStarted"`, 1))
	if err := reconnector(f, maxPolls).OnRotation(context.Background(), taskArn, ev); err != nil || len(f.actions()) != 0 {
		t.Errorf("RotationStarted: error %v, DMS calls %v; want nothing done", err, f.actions())
	}
	if err := reconnector(f, maxPolls).OnRotation(context.Background(), "", rotationEvent(t)); err == nil || !strings.Contains(err.Error(), dmstask.EnvReconnectTaskArn) {
		t.Errorf("error %v, want one naming %s", err, dmstask.EnvReconnectTaskArn)
	}
}
