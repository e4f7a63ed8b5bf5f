// Package dmstask is the custom resource that runs the DMS replication
// task's lifecycle around CloudFormation, which creates, modifies and
// deletes tasks but never starts or stops them.
//
// Two modes share one provider:
//
//   - lifecycle (depends on the task through ReplicationTaskArn): Create and
//     Update start the task (full load + CDC; resume-processing when it has
//     run before) and wait until it is running, failing with the task's
//     last failure message when it fails; Delete stops it and waits until
//     it is stopped, so that CloudFormation can delete it. Its physical ID
//     is the task ARN, so a replaced task gets the new one started and the
//     old one stopped (the old resource's Delete) before CloudFormation
//     deletes it.
//   - stopper (the task depends on it; it finds the task through the stack
//     by ReplicationTaskLogicalId): Update stops the task and waits, so
//     that CloudFormation can then modify the task and its endpoints, which
//     DMS refuses while the task runs; the lifecycle resource starts it
//     again afterwards.
//
// Outside CloudFormation, Handler.OnRotation (lambdas/dms-reconnect) takes
// the same steps to stop and resume the task after its source secret was
// rotated, so that DMS logs in with the new password.
//
// During an update rollback the roles swap: the lifecycle resource, rolled
// back first, stops the task so that CloudFormation can modify it back,
// and the stopper, rolled back last, starts it again (without failing the
// rollback if it cannot).
package dmstask

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/customresource"
)

// Modes.
const (
	ModeLifecycle = "lifecycle"
	ModeStopper   = "stopper"
)

// Goals an event waits for.
const (
	goalRunning = "running"
	goalStopped = "stopped"
)

// Task statuses (DMS API ReplicationTask.Status).
const (
	statusCreating   = "creating"
	statusDeleting   = "deleting"
	statusFailed     = "failed"
	statusFailedMove = "failed-move"
	statusModifying  = "modifying"
	statusMoving     = "moving"
	statusReady      = "ready"
	statusRunning    = "running"
	statusStarting   = "starting"
	statusStopped    = "stopped"
	statusStopping   = "stopping"
	statusTesting    = "testing"
)

// stopReasonFullLoadDone is how a full-load-only task ends normally.
const stopReasonFullLoadDone = "FULL_LOAD_ONLY_FINISHED"

// Properties are the custom resource's properties. Any other property
// (for example a digest of the task's configuration) is ignored: it only
// makes CloudFormation send an Update when it changes.
type Properties struct {
	// Mode is lifecycle (default) or stopper.
	Mode string `json:"Mode"`
	// ReplicationTaskArn is the task (lifecycle mode).
	ReplicationTaskArn string `json:"ReplicationTaskArn"`
	// ReplicationTaskLogicalId is the task's logical ID in this stack
	// (stopper mode), which cannot reference the task that depends on it.
	ReplicationTaskLogicalId string `json:"ReplicationTaskLogicalId"`
}

func (p *Properties) validate() error {
	switch p.Mode {
	case "":
		p.Mode = ModeLifecycle
		fallthrough
	case ModeLifecycle:
		if !isTaskArn(p.ReplicationTaskArn) {
			return fmt.Errorf("property ReplicationTaskArn: %q is not a DMS replication task ARN", p.ReplicationTaskArn)
		}
	case ModeStopper:
		if p.ReplicationTaskLogicalId == "" {
			return errors.New("property ReplicationTaskLogicalId is required in stopper mode")
		}
	default:
		return fmt.Errorf("property Mode: %q is not %s or %s", p.Mode, ModeLifecycle, ModeStopper)
	}
	return nil
}

func isTaskArn(s string) bool {
	return strings.HasPrefix(s, "arn:") && strings.Contains(s, ":dms:") && strings.Contains(s, ":task:")
}

// DMS is the part of the DMS client the handler uses.
type DMS interface {
	DescribeReplicationTasks(ctx context.Context, in *dms.DescribeReplicationTasksInput, optFns ...func(*dms.Options)) (*dms.DescribeReplicationTasksOutput, error)
	StartReplicationTask(ctx context.Context, in *dms.StartReplicationTaskInput, optFns ...func(*dms.Options)) (*dms.StartReplicationTaskOutput, error)
	StopReplicationTask(ctx context.Context, in *dms.StopReplicationTaskInput, optFns ...func(*dms.Options)) (*dms.StopReplicationTaskOutput, error)
}

// CloudFormation is the part of the CloudFormation client the handler uses
// to tell an update from its rollback and to find the stopper's task.
type CloudFormation interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	DescribeStackResource(ctx context.Context, in *cloudformation.DescribeStackResourceInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourceOutput, error)
}

// Handler handles both modes' onEvent and isComplete requests.
type Handler struct {
	DMS            DMS
	CloudFormation CloudFormation
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Sleep waits between Reconnect's polls; nil waits on a timer until
	// ctx ends.
	Sleep func(ctx context.Context, d time.Duration) error
}

// waitInput is what onEvent hands to every isComplete call.
type waitInput struct {
	Goal string `json:"Goal,omitempty"`
	// Tasks are the task ARNs to bring to Goal; none means nothing to do.
	Tasks []string `json:"Tasks"`
	// Since is when the event arrived: a task started at or after it was
	// started for this event, so its failure is this event's failure.
	Since time.Time `json:"Since"`
	// Lenient turns a task that cannot be started into a warning: set
	// during rollbacks, which must not fail.
	Lenient bool `json:"Lenient,omitempty"`
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// OnEvent decides what the event asks of which task, takes the first step
// and hands the rest to IsComplete.
func (h *Handler) OnEvent(ctx context.Context, req customresource.Request) (customresource.Response, error) {
	log := customresource.Logger(ctx)
	var p Properties
	if err := req.Properties(&p); err != nil && req.RequestType != customresource.Delete {
		return customresource.Response{}, err
	}
	if err := p.validate(); err != nil {
		if req.RequestType != customresource.Delete {
			return customresource.Response{}, err
		}
		// A Delete must not fail on properties: it would leave the stack
		// stuck. The physical ID still names the task.
		log.WarnContext(ctx, "invalid properties on delete", "error", err)
		if p.Mode != ModeStopper {
			p.Mode = ModeLifecycle
		}
	}
	in := waitInput{Since: h.now().UTC()}
	rollback := req.RequestType == customresource.Update && h.rollingBack(ctx, req.StackID)
	resp := customresource.Response{PhysicalResourceID: req.PhysicalResourceID}

	switch p.Mode {
	case ModeLifecycle:
		arn := p.ReplicationTaskArn
		switch req.RequestType {
		case customresource.Create, customresource.Update:
			resp.PhysicalResourceID = arn
			resp.Data = map[string]any{"ReplicationTaskArn": arn}
			in.Goal, in.Tasks = goalRunning, []string{arn}
			var old Properties
			if req.RequestType == customresource.Update {
				if err := req.OldProperties(&old); err != nil {
					return customresource.Response{}, err
				}
			}
			if rollback && old.ReplicationTaskArn == arn {
				// CloudFormation is about to modify the task back, which
				// it can only do while the task is stopped.
				in.Goal = goalStopped
			} else if rollback {
				in.Lenient = true
			}
		case customresource.Delete:
			if isTaskArn(req.PhysicalResourceID) {
				arn = req.PhysicalResourceID
			}
			if isTaskArn(arn) {
				in.Goal, in.Tasks = goalStopped, []string{arn}
			}
		}
	case ModeStopper:
		switch req.RequestType {
		case customresource.Create:
			// The task does not exist yet: it depends on this resource.
			resp.PhysicalResourceID = "dms-task-stopper:" + p.ReplicationTaskLogicalId
		case customresource.Update:
			arn, err := h.taskOfStack(ctx, req.StackID, p.ReplicationTaskLogicalId)
			if err != nil {
				return customresource.Response{}, err
			}
			if arn != "" {
				in.Tasks = []string{arn}
				in.Goal = goalStopped
				if rollback {
					// The forward update stopped the task and failed before
					// the lifecycle resource started it again.
					in.Goal, in.Lenient = goalRunning, true
				}
			}
		case customresource.Delete:
			// The task, which depends on this resource, is deleted first
			// (stopped by the lifecycle resource's Delete), so there is
			// nothing left to stop; stopping here would instead stop a task
			// that outlives a removed stopper.
		}
	}
	log.InfoContext(ctx, "dms task event", "mode", p.Mode, "goal", in.Goal, "tasks", in.Tasks, "rollback", rollback)
	resp.IsCompleteInput = in
	// Act at once; isComplete, polled every queryInterval, finishes the job.
	if _, err := h.advance(ctx, in); err != nil {
		return customresource.Response{}, err
	}
	return resp, nil
}

// IsComplete takes the next step towards the goal onEvent set and reports
// whether every task has reached it.
func (h *Handler) IsComplete(ctx context.Context, req customresource.Request) (customresource.CompleteResponse, error) {
	return customresource.Poll(ctx, req, h.advance)
}

// advance takes one step for each task and reports whether all are done.
func (h *Handler) advance(ctx context.Context, in waitInput) (bool, error) {
	all := true
	for _, arn := range in.Tasks {
		done, err := h.step(ctx, arn, in)
		if err != nil {
			return false, err
		}
		all = all && done
	}
	return all, nil
}

func (h *Handler) step(ctx context.Context, arn string, in waitInput) (bool, error) {
	log := customresource.Logger(ctx).With("task", arn, "goal", in.Goal)
	task, err := h.describe(ctx, arn)
	if err != nil {
		return false, err
	}
	if task != nil {
		log = log.With("status", aws.ToString(task.Status))
	}
	switch in.Goal {
	case goalRunning:
		d := decideRunning(task, in.Since)
		if d.err != nil && in.Lenient {
			log.WarnContext(ctx, "task cannot be started; leaving it for the operator during the rollback", "error", d.err)
			return true, nil
		}
		switch {
		case d.err != nil:
			return false, fmt.Errorf("DMS task %s: %w", arn, d.err)
		case d.start != "":
			log.InfoContext(ctx, "starting task", "type", d.start)
			err := h.start(ctx, arn, d.start)
			if err != nil && in.Lenient {
				log.WarnContext(ctx, "task cannot be started; leaving it for the operator during the rollback", "error", err)
				return true, nil
			}
			return false, err
		}
		if task != nil && task.LastFailureMessage != nil {
			log = log.With("lastFailure", *task.LastFailureMessage)
		}
		log.InfoContext(ctx, "task progress", "done", d.done)
		return d.done, nil
	case goalStopped:
		d := decideStopped(task)
		if d.stop {
			log.InfoContext(ctx, "stopping task")
			return false, h.stop(ctx, arn)
		}
		log.InfoContext(ctx, "task progress", "done", d.done)
		return d.done, nil
	case "":
		return true, nil
	}
	return false, fmt.Errorf("unknown goal %q", in.Goal)
}

// decision is what to do next for a task.
type decision struct {
	done  bool
	start types.StartReplicationTaskTypeValue
	stop  bool
	err   error
}

// decideRunning decides the next step towards a running task.
func decideRunning(t *types.ReplicationTask, since time.Time) decision {
	if t == nil {
		return decision{err: errors.New("the replication task does not exist")}
	}
	switch status := aws.ToString(t.Status); status {
	case statusRunning:
		return decision{done: true}
	case statusReady:
		return decision{start: startType(t)}
	case statusStopped:
		if !startedSince(t, since) {
			return decision{start: startType(t)}
		}
		if t.MigrationType == types.MigrationTypeValueFullLoad && strings.Contains(aws.ToString(t.StopReason), stopReasonFullLoadDone) {
			return decision{done: true}
		}
		return decision{err: fmt.Errorf("stopped after it was started (%s)%s", aws.ToString(t.StopReason), lastFailure(t))}
	case statusFailed:
		if !startedSince(t, since) {
			// It failed before this event (a previous deployment, say):
			// a deployment is the moment to try again.
			return decision{start: startType(t)}
		}
		return decision{err: fmt.Errorf("failed%s", lastFailure(t))}
	case statusDeleting, statusFailedMove:
		return decision{err: fmt.Errorf("cannot be started while %s%s", status, lastFailure(t))}
	default:
		// starting, creating, modifying, testing, moving, stopping, or a
		// status newer than this code: wait for it to settle.
		return decision{}
	}
}

// decideStopped decides the next step towards a stopped (or gone) task.
func decideStopped(t *types.ReplicationTask) decision {
	if t == nil {
		return decision{done: true}
	}
	switch aws.ToString(t.Status) {
	case statusStopped, statusReady, statusFailed, statusFailedMove, statusDeleting:
		return decision{done: true}
	case statusRunning:
		return decision{stop: true}
	default:
		// starting (DMS cannot stop it yet), stopping, creating,
		// modifying, testing, moving: wait.
		return decision{}
	}
}

// startType picks start-replication for a task's first run (the only type
// DMS allows then) and resume-processing afterwards, which continues CDC
// from the task's checkpoint instead of reloading the target.
func startType(t *types.ReplicationTask) types.StartReplicationTaskTypeValue {
	if hasRun(t) {
		return types.StartReplicationTaskTypeValueResumeProcessing
	}
	return types.StartReplicationTaskTypeValueStartReplication
}

func hasRun(t *types.ReplicationTask) bool {
	if aws.ToString(t.RecoveryCheckpoint) != "" {
		return true
	}
	s := t.ReplicationTaskStats
	return s != nil && (s.StartDate != nil || s.FreshStartDate != nil)
}

// startedSince reports whether the task was (fresh-)started or resumed at
// or after since, that is, by this event.
func startedSince(t *types.ReplicationTask, since time.Time) bool {
	s := t.ReplicationTaskStats
	return s != nil && s.StartDate != nil && !s.StartDate.Before(since)
}

func lastFailure(t *types.ReplicationTask) string {
	if m := aws.ToString(t.LastFailureMessage); m != "" {
		return ": " + m
	}
	return ""
}

func (h *Handler) describe(ctx context.Context, arn string) (*types.ReplicationTask, error) {
	out, err := h.DMS.DescribeReplicationTasks(ctx, &dms.DescribeReplicationTasksInput{
		Filters:         []types.Filter{{Name: aws.String("replication-task-arn"), Values: []string{arn}}},
		WithoutSettings: aws.Bool(true), // the settings and mappings are large and unused
	})
	var notFound *types.ResourceNotFoundFault
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe DMS task %s: %w", arn, err)
	}
	i := slices.IndexFunc(out.ReplicationTasks, func(t types.ReplicationTask) bool { return aws.ToString(t.ReplicationTaskArn) == arn })
	if i < 0 {
		return nil, nil
	}
	return &out.ReplicationTasks[i], nil
}

// start asks DMS to start the task. A task that is no longer startable
// (another caller started it, or DMS's view lags) is not an error: the
// next poll sees where it went.
func (h *Handler) start(ctx context.Context, arn string, typ types.StartReplicationTaskTypeValue) error {
	_, err := h.DMS.StartReplicationTask(ctx, &dms.StartReplicationTaskInput{
		ReplicationTaskArn:       aws.String(arn),
		StartReplicationTaskType: typ,
	})
	var state *types.InvalidResourceStateFault
	switch {
	case err == nil:
		return nil
	case errors.As(err, &state):
		customresource.Logger(ctx).InfoContext(ctx, "task not startable now; waiting", "task", arn, "reason", state.ErrorMessage())
		return nil
	}
	return fmt.Errorf("start DMS task %s (%s): %w", arn, typ, err)
}

// stop asks DMS to stop the task; "already stopped" and "gone" are fine.
func (h *Handler) stop(ctx context.Context, arn string) error {
	_, err := h.DMS.StopReplicationTask(ctx, &dms.StopReplicationTaskInput{ReplicationTaskArn: aws.String(arn)})
	var (
		state    *types.InvalidResourceStateFault
		notFound *types.ResourceNotFoundFault
	)
	switch {
	case err == nil, errors.As(err, &notFound):
		return nil
	case errors.As(err, &state):
		customresource.Logger(ctx).InfoContext(ctx, "task not stoppable now; waiting", "task", arn, "reason", state.ErrorMessage())
		return nil
	}
	return fmt.Errorf("stop DMS task %s: %w", arn, err)
}

// rollingBack reports whether the stack is rolling back an update. Without
// a CloudFormation client, or when the stack cannot be described, it
// assumes a forward update and says so in the log.
func (h *Handler) rollingBack(ctx context.Context, stackID string) bool {
	if h.CloudFormation == nil || stackID == "" {
		return false
	}
	out, err := h.CloudFormation.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stackID)})
	if err != nil || len(out.Stacks) == 0 {
		customresource.Logger(ctx).WarnContext(ctx, "cannot read the stack status; assuming a forward update", "error", err)
		return false
	}
	return strings.HasSuffix(string(out.Stacks[0].StackStatus), "ROLLBACK_IN_PROGRESS")
}

// taskOfStack returns the physical ID (the ARN) of the stack's resource
// logicalID, or "" when the stack has no such resource yet.
func (h *Handler) taskOfStack(ctx context.Context, stackID, logicalID string) (string, error) {
	if h.CloudFormation == nil {
		return "", errors.New("stopper mode needs a CloudFormation client")
	}
	out, err := h.CloudFormation.DescribeStackResource(ctx, &cloudformation.DescribeStackResourceInput{
		StackName:         aws.String(stackID),
		LogicalResourceId: aws.String(logicalID),
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist") {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find the replication task %s in the stack: %w", logicalID, err)
	}
	if out.StackResourceDetail == nil {
		return "", nil
	}
	arn := aws.ToString(out.StackResourceDetail.PhysicalResourceId)
	if !isTaskArn(arn) {
		return "", fmt.Errorf("stack resource %s is %q, not a DMS replication task", logicalID, arn)
	}
	return arn, nil
}
