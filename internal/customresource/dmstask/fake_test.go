package dmstask_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/customresourcetest"
	"github.com/unified-streaming-etl/etl/internal/customresource/dmstask"
)

const (
	taskArn    = "arn:aws:dms:eu-west-1:123456789012:task:KX7Q2EXAMPLETASKAAAAAAAAAA"
	newTaskArn = "arn:aws:dms:eu-west-1:123456789012:task:N3WEXAMPLETASKBBBBBBBBBBBB"
	stackID    = "arn:aws:cloudformation:eu-west-1:123456789012:stack/UnifiedStreamETLDataStack/6c1c2a10-5f3e-11f1-9c0d-0a1b2c3d4e5f"
	taskLogID  = "ReplicationTask"
)

// fakeTask is a DMS task whose status moves on at each tick the way DMS
// moves it: starting becomes running (or failed/stopped when the task is
// set to fail), stopping becomes stopped, modifying settles.
type fakeTask struct {
	types.ReplicationTask
	failOnStart   string // LastFailureMessage to fail with after starting
	stopOnStart   string // StopReason to stop with after starting
	neverSettles  bool   // stays in its transitional status
	startRefusals int    // StartReplicationTask calls to refuse first
}

// fakeDMS is an in-memory DMS with a clock.
type fakeDMS struct {
	now   time.Time
	tasks map[string]*fakeTask
	calls []string

	describeErr error
	startErr    error
	stopErr     error
}

func newFakeDMS() *fakeDMS {
	return &fakeDMS{now: time.Date(2026, 11, 21, 21, 40, 0, 0, time.UTC), tasks: map[string]*fakeTask{}}
}

func (f *fakeDMS) add(arn, status string, migration types.MigrationTypeValue) *fakeTask {
	t := &fakeTask{ReplicationTask: types.ReplicationTask{
		ReplicationTaskArn:        aws.String(arn),
		ReplicationTaskIdentifier: aws.String("orders-" + arn[len(arn)-4:]),
		Status:                    aws.String(status),
		MigrationType:             migration,
	}}
	f.tasks[arn] = t
	return t
}

// ranBefore makes t a task that ran and was stopped an hour ago.
func (f *fakeDMS) ranBefore(t *fakeTask) {
	started, stopped := f.now.Add(-2*time.Hour), f.now.Add(-time.Hour)
	t.ReplicationTaskStats = &types.ReplicationTaskStats{FreshStartDate: &started, StartDate: &started, StopDate: &stopped, FullLoadProgressPercent: 100, TablesLoaded: 2}
	t.RecoveryCheckpoint = aws.String("checkpoint:V1#34#mysql-bin-changelog.000123:4567:-1:4600:0#0#*#0#12")
	t.StopReason = aws.String("Stop Reason NORMAL")
}

func (f *fakeDMS) DescribeReplicationTasks(_ context.Context, in *dms.DescribeReplicationTasksInput, _ ...func(*dms.Options)) (*dms.DescribeReplicationTasksOutput, error) {
	f.calls = append(f.calls, "describe")
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	if !aws.ToBool(in.WithoutSettings) {
		return nil, fmt.Errorf("test: describe without WithoutSettings")
	}
	var arn string
	for _, flt := range in.Filters {
		if aws.ToString(flt.Name) == "replication-task-arn" && len(flt.Values) == 1 {
			arn = flt.Values[0]
		}
	}
	t, ok := f.tasks[arn]
	if !ok {
		return nil, &types.ResourceNotFoundFault{Message: aws.String("No Tasks found matching provided filters")}
	}
	return &dms.DescribeReplicationTasksOutput{ReplicationTasks: []types.ReplicationTask{t.ReplicationTask}}, nil
}

func (f *fakeDMS) StartReplicationTask(_ context.Context, in *dms.StartReplicationTaskInput, _ ...func(*dms.Options)) (*dms.StartReplicationTaskOutput, error) {
	f.calls = append(f.calls, "start:"+string(in.StartReplicationTaskType))
	if f.startErr != nil {
		return nil, f.startErr
	}
	t, ok := f.tasks[aws.ToString(in.ReplicationTaskArn)]
	if !ok {
		return nil, &types.ResourceNotFoundFault{Message: aws.String("Replication Task not found")}
	}
	if t.startRefusals > 0 {
		t.startRefusals--
		return nil, &types.InvalidResourceStateFault{Message: aws.String("Replication Task is currently being started")}
	}
	switch st := aws.ToString(t.Status); st {
	case "ready", "stopped", "failed":
	default:
		return nil, &types.InvalidResourceStateFault{Message: aws.String("Replication Task cannot be started, invalid state: " + st)}
	}
	if in.StartReplicationTaskType == types.StartReplicationTaskTypeValueStartReplication && t.ReplicationTaskStats != nil && t.ReplicationTaskStats.StartDate != nil {
		return nil, &smithy.GenericAPIError{Code: "InvalidParameterValueException", Message: "Start Type : START_REPLICATION, valid only for tasks running for the first time"}
	}
	now := f.now
	if t.ReplicationTaskStats == nil {
		t.ReplicationTaskStats = &types.ReplicationTaskStats{}
	}
	t.ReplicationTaskStats.StartDate = &now
	if in.StartReplicationTaskType != types.StartReplicationTaskTypeValueResumeProcessing {
		t.ReplicationTaskStats.FreshStartDate = &now
	}
	t.Status = aws.String("starting")
	return &dms.StartReplicationTaskOutput{ReplicationTask: &t.ReplicationTask}, nil
}

func (f *fakeDMS) StopReplicationTask(_ context.Context, in *dms.StopReplicationTaskInput, _ ...func(*dms.Options)) (*dms.StopReplicationTaskOutput, error) {
	f.calls = append(f.calls, "stop")
	if f.stopErr != nil {
		return nil, f.stopErr
	}
	t, ok := f.tasks[aws.ToString(in.ReplicationTaskArn)]
	if !ok {
		return nil, &types.ResourceNotFoundFault{Message: aws.String("Replication Task not found")}
	}
	if aws.ToString(t.Status) != "running" {
		return nil, &types.InvalidResourceStateFault{Message: aws.String("Replication Task is not running")}
	}
	t.Status = aws.String("stopping")
	return &dms.StopReplicationTaskOutput{ReplicationTask: &t.ReplicationTask}, nil
}

// tick lets time pass between two polls.
func (f *fakeDMS) tick() {
	f.now = f.now.Add(10 * time.Second)
	for _, t := range f.tasks {
		if t.neverSettles {
			continue
		}
		now := f.now
		switch aws.ToString(t.Status) {
		case "starting":
			switch {
			case t.failOnStart != "":
				t.Status, t.LastFailureMessage = aws.String("failed"), aws.String(t.failOnStart)
				t.ReplicationTaskStats.StopDate = &now
			case t.stopOnStart != "":
				t.Status, t.StopReason = aws.String("stopped"), aws.String(t.stopOnStart)
				t.ReplicationTaskStats.StopDate = &now
			default:
				t.Status = aws.String("running")
			}
		case "stopping":
			t.Status, t.StopReason = aws.String("stopped"), aws.String("Stop Reason NORMAL")
			t.ReplicationTaskStats.StopDate = &now
		case "modifying":
			if t.ReplicationTaskStats != nil {
				t.Status = aws.String("stopped")
			} else {
				t.Status = aws.String("ready")
			}
		case "creating":
			t.Status = aws.String("ready")
		}
	}
}

func (f *fakeDMS) count(call string) int {
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

func (f *fakeDMS) actions() []string {
	var out []string
	for _, c := range f.calls {
		if c != "describe" {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeDMS) status(arn string) string { return aws.ToString(f.tasks[arn].Status) }

// fakeCFN answers the stack's status and resources.
type fakeCFN struct {
	status    cfntypes.StackStatus
	resources map[string]string // logical ID → physical ID
	err       error
}

func (f *fakeCFN) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	if aws.ToString(in.StackName) != stackID {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + aws.ToString(in.StackName) + " does not exist"}
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cfntypes.Stack{{StackId: in.StackName, StackName: aws.String("UnifiedStreamETLDataStack"), StackStatus: f.status}}}, nil
}

func (f *fakeCFN) DescribeStackResource(_ context.Context, in *cloudformation.DescribeStackResourceInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourceOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	id := aws.ToString(in.LogicalResourceId)
	phys, ok := f.resources[id]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Resource " + id + " does not exist for stack UnifiedStreamETLDataStack"}
	}
	return &cloudformation.DescribeStackResourceOutput{StackResourceDetail: &cfntypes.StackResourceDetail{
		LogicalResourceId: in.LogicalResourceId, PhysicalResourceId: aws.String(phys), ResourceType: aws.String("AWS::DMS::ReplicationTask"),
	}}, nil
}

// event builds a Provider framework request.
func event(typ cfn.RequestType, physicalID string, props, old map[string]any) customresource.Request {
	withToken := func(m map[string]any) map[string]any {
		if m == nil {
			return nil
		}
		out := map[string]any{"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:dms-task-provider"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return customresource.Request{Event: cfn.Event{
		RequestType:           typ,
		RequestID:             "0b7c6d5e-4f3a-4b2c-9d1e-8f7a6b5c4d3e",
		StackID:               stackID,
		LogicalResourceID:     "ReplicationTaskRunning",
		ResourceType:          "Custom::DmsReplicationTask",
		PhysicalResourceID:    physicalID,
		ResourceProperties:    withToken(props),
		OldResourceProperties: withToken(old),
	}}
}

type outcome = customresourcetest.Outcome

// run plays the provider framework against h (customresourcetest.Run).
func run(t *testing.T, h *dmstask.Handler, f *fakeDMS, req customresource.Request, maxPolls int) outcome {
	t.Helper()
	return customresourcetest.Run(t, h, req, f.tick, maxPolls)
}

func wantActions(t *testing.T, f *fakeDMS, want ...string) {
	t.Helper()
	if got := f.actions(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("DMS calls = %q, want %q", got, want)
	}
}
