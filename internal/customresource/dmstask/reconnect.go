package dmstask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/unified-streaming-etl/etl/internal/customresource"
)

// EnvReconnectTaskArn names the environment variable that tells the
// reconnect function (lambdas/dms-reconnect) which task to reconnect.
const EnvReconnectTaskArn = "REPLICATION_TASK_ARN"

// ReconnectPollInterval is how often Reconnect checks the task: it takes a
// minute or so to stop and as long to resume.
const ReconnectPollInterval = 15 * time.Second

// Reconnect makes the replication task log in to its source again, with
// the password now in its secret: DMS reads the secret when it connects,
// and single-user rotation invalidates the old password at once, so after
// every rotation the task is stopped and resumed (resume-processing, from
// its checkpoint) through the same steps the lifecycle resource takes. It
// waits until the task runs again, polling every ReconnectPollInterval,
// and fails when the task cannot be brought back before ctx ends.
//
// A task that is stopped or was never started is left alone: an operator
// (or a deployment) stopped it on purpose. It reports whether it
// reconnected the task.
func (h *Handler) Reconnect(ctx context.Context, arn string) (bool, error) {
	log := customresource.Logger(ctx).With("task", arn)
	task, err := h.describe(ctx, arn)
	if err != nil {
		return false, err
	}
	if task == nil {
		return false, fmt.Errorf("DMS task %s does not exist", arn)
	}
	switch status := aws.ToString(task.Status); status {
	case statusStopped, statusReady, statusCreating, statusDeleting:
		log.InfoContext(ctx, "task not running; left as it is", "status", status)
		return false, nil
	}
	log.InfoContext(ctx, "reconnecting the task after a rotation of its source secret", "status", aws.ToString(task.Status))
	if err := h.await(ctx, waitInput{Goal: goalStopped, Tasks: []string{arn}, Since: h.now().UTC()}); err != nil {
		return false, err
	}
	if err := h.await(ctx, waitInput{Goal: goalRunning, Tasks: []string{arn}, Since: h.now().UTC()}); err != nil {
		return false, err
	}
	log.InfoContext(ctx, "task running again with the rotated password")
	return true, nil
}

// await advances the tasks until they reach the goal or ctx ends.
func (h *Handler) await(ctx context.Context, in waitInput) error {
	for {
		done, err := h.advance(ctx, in)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if err := h.sleep(ctx, ReconnectPollInterval); err != nil {
			return fmt.Errorf("DMS task %v did not reach %s in time: %w", in.Tasks, in.Goal, err)
		}
	}
}

func (h *Handler) sleep(ctx context.Context, d time.Duration) error {
	if h.Sleep != nil {
		return h.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// ErrReconnectDeadline is the cause of a Reconnect that ran out of time.
var ErrReconnectDeadline = errors.New("the function's time is nearly up")

// EventRotationSucceeded is the CloudTrail event Secrets Manager records
// when a rotation completes; EventBridge delivers it as an "AWS Service
// Event via CloudTrail".
// https://docs.aws.amazon.com/secretsmanager/latest/userguide/cloudtrail_log_entries.html
// https://docs.aws.amazon.com/secretsmanager/latest/userguide/monitoring-eventbridge.html
const EventRotationSucceeded = "RotationSucceeded"

// rotationDetail is the part of the event's detail the function reads.
type rotationDetail struct {
	EventSource         string `json:"eventSource"`
	EventName           string `json:"eventName"`
	AdditionalEventData struct {
		SecretID string `json:"SecretId"`
	} `json:"additionalEventData"`
}

// deadlineMargin is kept from the function's time so that a task that does
// not come back is reported as an error, not cut off by a timeout.
const deadlineMargin = 10 * time.Second

// OnRotation handles the EventBridge rule's event: after a successful
// rotation of the replication secret it reconnects the task. Its error,
// when the task does not run again, counts in the function's Errors metric,
// which an alarm watches.
func (h *Handler) OnRotation(ctx context.Context, taskArn string, ev events.CloudWatchEvent) error {
	var d rotationDetail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return fmt.Errorf("event %s: detail: %w", ev.ID, err)
	}
	log := customresource.Logger(ctx).With("eventId", ev.ID, "eventName", d.EventName, "secret", d.AdditionalEventData.SecretID)
	ctx = customresource.WithLogger(ctx, log)
	if d.EventName != EventRotationSucceeded {
		log.WarnContext(ctx, "not a successful rotation; nothing to do")
		return nil
	}
	if !isTaskArn(taskArn) {
		return fmt.Errorf("%s: %q is not a DMS replication task ARN", EnvReconnectTaskArn, taskArn)
	}
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, deadline.Add(-deadlineMargin), ErrReconnectDeadline)
		defer cancel()
	}
	_, err := h.Reconnect(ctx, taskArn)
	if err != nil {
		log.ErrorContext(ctx, "the task did not come back after the rotation; replication is stopped", "error", err)
	}
	return err
}
