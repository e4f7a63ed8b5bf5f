package dmstask_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/dmstask"
)

const maxPolls = 20

func handler(f *fakeDMS, c *fakeCFN) *dmstask.Handler {
	h := &dmstask.Handler{DMS: f, Now: func() time.Time { return f.now }}
	if c != nil {
		h.CloudFormation = c
	}
	return h
}

func lifecycle(arn string) map[string]any {
	return map[string]any{"ReplicationTaskArn": arn, "TaskConfig": "9f2c"}
}

func TestLifecycleStartsTheTask(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(f *fakeDMS)
		req         func() customresource.Request
		wantActions []string
		wantPolls   int
	}{
		{
			name:        "create starts a new task with start-replication and completes once it runs",
			setup:       func(f *fakeDMS) { f.add(taskArn, "ready", types.MigrationTypeValueFullLoadAndCdc) },
			req:         func() customresource.Request { return event(customresource.Create, "", lifecycle(taskArn), nil) },
			wantActions: []string{"start:start-replication"},
			wantPolls:   1,
		},
		{
			name:      "a task that is already running is left alone",
			setup:     func(f *fakeDMS) { f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc) },
			req:       func() customresource.Request { return event(customresource.Create, "", lifecycle(taskArn), nil) },
			wantPolls: 1,
		},
		{
			name: "an update resumes a stopped task from its checkpoint instead of reloading the target",
			setup: func(f *fakeDMS) {
				f.ranBefore(f.add(taskArn, "stopped", types.MigrationTypeValueFullLoadAndCdc))
			},
			req: func() customresource.Request {
				return event(customresource.Update, taskArn, lifecycle(taskArn), map[string]any{"ReplicationTaskArn": taskArn, "TaskConfig": "1a0b"})
			},
			wantActions: []string{"start:resume-processing"},
			wantPolls:   1,
		},
		{
			name: "a task CloudFormation is still modifying is resumed once it settles",
			setup: func(f *fakeDMS) {
				task := f.add(taskArn, "modifying", types.MigrationTypeValueFullLoadAndCdc)
				f.ranBefore(task)
				task.Status = aws.String("modifying")
			},
			req: func() customresource.Request {
				return event(customresource.Update, taskArn, lifecycle(taskArn), lifecycle(taskArn))
			},
			wantActions: []string{"start:resume-processing"},
			wantPolls:   2,
		},
		{
			name: "a task that failed in an earlier deployment is tried again",
			setup: func(f *fakeDMS) {
				task := f.add(taskArn, "failed", types.MigrationTypeValueFullLoadAndCdc)
				f.ranBefore(task)
				task.Status, task.LastFailureMessage = aws.String("failed"), aws.String("Last Error Stream Component Fatal error. Task error notification received")
			},
			req: func() customresource.Request {
				return event(customresource.Update, taskArn, lifecycle(taskArn), lifecycle(taskArn))
			},
			wantActions: []string{"start:resume-processing"},
			wantPolls:   1,
		},
		{
			name: "a start refused while DMS still reports the task startable is retried at the next poll",
			setup: func(f *fakeDMS) {
				f.add(taskArn, "ready", types.MigrationTypeValueFullLoadAndCdc).startRefusals = 1
			},
			req:         func() customresource.Request { return event(customresource.Create, "", lifecycle(taskArn), nil) },
			wantActions: []string{"start:start-replication", "start:start-replication"},
			wantPolls:   2,
		},
		{
			name: "a full-load-only task that finished before the first poll counts as started",
			setup: func(f *fakeDMS) {
				f.add(taskArn, "ready", types.MigrationTypeValueFullLoad).stopOnStart = "Stop Reason FULL_LOAD_ONLY_FINISHED"
			},
			req:         func() customresource.Request { return event(customresource.Create, "", lifecycle(taskArn), nil) },
			wantActions: []string{"start:start-replication"},
			wantPolls:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDMS()
			tt.setup(f)
			o := run(t, handler(f, &fakeCFN{status: cfntypes.StackStatusUpdateInProgress}), f, tt.req(), maxPolls)
			if o.Err != nil || !o.Done {
				t.Fatalf("done = %v, err = %v; want the task running", o.Done, o.Err)
			}
			if o.Polls != tt.wantPolls {
				t.Errorf("completed after %d polls, want %d", o.Polls, tt.wantPolls)
			}
			wantActions(t, f, tt.wantActions...)
			if o.Resp.PhysicalResourceID != taskArn || o.Resp.Data["ReplicationTaskArn"] != taskArn {
				t.Errorf("response = %+v, want the task ARN as physical ID and attribute", o.Resp)
			}
		})
	}
}

func TestLifecycleFailures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fakeDMS)
		wantErr string
		wantAs  any
	}{
		{
			name: "a task that fails while starting fails the deployment with DMS's message",
			setup: func(f *fakeDMS) {
				f.add(taskArn, "ready", types.MigrationTypeValueFullLoadAndCdc).failOnStart = "Last Error Endpoint initialization failed. Task error notification received from subtask 0"
			},
			wantErr: "failed: Last Error Endpoint initialization failed",
		},
		{
			name: "a task that stops right after starting fails with the stop reason",
			setup: func(f *fakeDMS) {
				task := f.add(taskArn, "ready", types.MigrationTypeValueFullLoadAndCdc)
				task.stopOnStart = "Stop Reason FATAL_ERROR"
				task.LastFailureMessage = aws.String("Error connecting to source database")
			},
			wantErr: "stopped after it was started (Stop Reason FATAL_ERROR): Error connecting to source database",
		},
		{
			name:    "a task that does not exist fails at once",
			setup:   func(*fakeDMS) {},
			wantErr: "the replication task does not exist",
		},
		{
			name:    "a task being deleted cannot be started",
			setup:   func(f *fakeDMS) { f.add(taskArn, "deleting", types.MigrationTypeValueFullLoadAndCdc) },
			wantErr: "cannot be started while deleting",
		},
		{
			name: "a start DMS refuses for lack of permission fails with the AWS error",
			setup: func(f *fakeDMS) {
				f.add(taskArn, "ready", types.MigrationTypeValueFullLoadAndCdc)
				f.startErr = &types.AccessDeniedFault{Message: aws.String("not authorized to perform: dms:StartReplicationTask")}
			},
			wantErr: "start DMS task",
			wantAs:  new(*types.AccessDeniedFault),
		},
		{
			name: "a describe failure fails with the AWS error",
			setup: func(f *fakeDMS) {
				f.describeErr = &types.AccessDeniedFault{Message: aws.String("not authorized to perform: dms:DescribeReplicationTasks")}
			},
			wantErr: "describe DMS task",
			wantAs:  new(*types.AccessDeniedFault),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDMS()
			tt.setup(f)
			o := run(t, handler(f, nil), f, event(customresource.Create, "", lifecycle(taskArn), nil), maxPolls)
			if o.Err == nil || !strings.Contains(o.Err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", o.Err, tt.wantErr)
			}
			if !strings.Contains(o.Err.Error(), taskArn) {
				t.Errorf("err = %v, want it to name the task", o.Err)
			}
			if tt.wantAs != nil && !errors.As(o.Err, tt.wantAs) {
				t.Errorf("err = %v, want it to wrap %T", o.Err, tt.wantAs)
			}
		})
	}
}

func TestIsCompleteOnlyReportsProgressUntilTheProviderTimesOut(t *testing.T) {
	f := newFakeDMS()
	f.add(taskArn, "ready", types.MigrationTypeValueFullLoadAndCdc).neverSettles = true
	o := run(t, handler(f, nil), f, event(customresource.Create, "", lifecycle(taskArn), nil), maxPolls)
	if o.Err != nil || o.Done || o.Polls != maxPolls {
		t.Fatalf("after %d polls: done = %v, err = %v; want progress reports only", o.Polls, o.Done, o.Err)
	}
	if n := f.count("start:start-replication"); n != 1 {
		t.Errorf("started %d times while DMS was starting it, want once", n)
	}
}

func TestLifecycleUpdateToANewTask(t *testing.T) {
	f := newFakeDMS()
	f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc)
	f.add(newTaskArn, "ready", types.MigrationTypeValueFullLoadAndCdc)
	o := run(t, handler(f, &fakeCFN{status: cfntypes.StackStatusUpdateInProgress}), f,
		event(customresource.Update, taskArn, lifecycle(newTaskArn), lifecycle(taskArn)), maxPolls)
	if o.Err != nil || !o.Done {
		t.Fatalf("done = %v, err = %v", o.Done, o.Err)
	}
	if o.Resp.PhysicalResourceID != newTaskArn {
		t.Errorf("physical ID = %q, want the new task's, so CloudFormation sends a Delete for the old one", o.Resp.PhysicalResourceID)
	}
	wantActions(t, f, "start:start-replication")
	if f.status(taskArn) != "running" {
		t.Errorf("the old task is %s; it keeps running until the cleanup Delete stops it", f.status(taskArn))
	}
}

func TestLifecycleDeleteStopsTheTask(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(f *fakeDMS)
		wantActions []string
	}{
		{"a running task is stopped and the delete waits until it is stopped", func(f *fakeDMS) {
			f.ranBefore(f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc))
			f.tasks[taskArn].Status = aws.String("running")
		}, []string{"stop"}},
		{"a task that is already stopped is not stopped again", func(f *fakeDMS) {
			f.ranBefore(f.add(taskArn, "stopped", types.MigrationTypeValueFullLoadAndCdc))
		}, nil},
		{"a task that never ran needs no stop", func(f *fakeDMS) { f.add(taskArn, "ready", types.MigrationTypeValueFullLoadAndCdc) }, nil},
		{"a task that is gone is fine", func(*fakeDMS) {}, nil},
		{"a task that is still starting is stopped once it runs", func(f *fakeDMS) {
			task := f.add(taskArn, "starting", types.MigrationTypeValueFullLoadAndCdc)
			task.ReplicationTaskStats = &types.ReplicationTaskStats{}
		}, []string{"stop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDMS()
			tt.setup(f)
			// On a cleanup Delete the properties may already name the new
			// task: the physical ID is the one being deleted.
			o := run(t, handler(f, nil), f, event(customresource.Delete, taskArn, lifecycle(newTaskArn), nil), maxPolls)
			if o.Err != nil || !o.Done {
				t.Fatalf("done = %v, err = %v", o.Done, o.Err)
			}
			if o.Resp.PhysicalResourceID != taskArn {
				t.Errorf("physical ID = %q, want it kept", o.Resp.PhysicalResourceID)
			}
			wantActions(t, f, tt.wantActions...)
			if task, ok := f.tasks[taskArn]; ok && aws.ToString(task.Status) == "running" {
				t.Error("the task still runs")
			}
		})
	}
	t.Run("a delete with unusable properties still stops the task its physical ID names", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc))
		f.tasks[taskArn].Status = aws.String("running")
		o := run(t, handler(f, nil), f, event(customresource.Delete, taskArn, map[string]any{"Mode": "restart"}, nil), maxPolls)
		if o.Err != nil || !o.Done {
			t.Fatalf("done = %v, err = %v; a delete must not fail on properties", o.Done, o.Err)
		}
		wantActions(t, f, "stop")
	})
	t.Run("a stop refused because the task is already stopping is not an error", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc))
		f.tasks[taskArn].Status = aws.String("running")
		f.stopErr = &types.InvalidResourceStateFault{Message: aws.String("Replication Task is currently being stopped")}
		h := handler(f, nil)
		o := run(t, h, f, event(customresource.Delete, taskArn, lifecycle(taskArn), nil), 3)
		if o.Err != nil {
			t.Fatalf("err = %v", o.Err)
		}
	})
	t.Run("a stop DMS refuses for another reason fails", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc))
		f.tasks[taskArn].Status = aws.String("running")
		f.stopErr = &types.AccessDeniedFault{Message: aws.String("not authorized to perform: dms:StopReplicationTask")}
		o := run(t, handler(f, nil), f, event(customresource.Delete, taskArn, lifecycle(taskArn), nil), maxPolls)
		var denied *types.AccessDeniedFault
		if !errors.As(o.Err, &denied) {
			t.Fatalf("err = %v, want the access denied fault", o.Err)
		}
	})
}

func TestRollbacks(t *testing.T) {
	rollingBack := func() *fakeCFN {
		return &fakeCFN{status: cfntypes.StackStatusUpdateRollbackInProgress, resources: map[string]string{taskLogID: taskArn}}
	}
	t.Run("rolling back, the lifecycle resource stops the task so CloudFormation can modify it back", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc))
		f.tasks[taskArn].Status = aws.String("running")
		o := run(t, handler(f, rollingBack()), f, event(customresource.Update, taskArn, lifecycle(taskArn), lifecycle(taskArn)), maxPolls)
		if o.Err != nil || !o.Done {
			t.Fatalf("done = %v, err = %v", o.Done, o.Err)
		}
		wantActions(t, f, "stop")
	})
	t.Run("rolling back to the previous task, the lifecycle resource keeps it running and does not fail", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "stopped", types.MigrationTypeValueFullLoadAndCdc))
		f.tasks[taskArn].failOnStart = "Last Error Replication instance is unavailable"
		o := run(t, handler(f, rollingBack()), f, event(customresource.Update, newTaskArn, lifecycle(taskArn), lifecycle(newTaskArn)), maxPolls)
		if o.Err != nil || !o.Done {
			t.Fatalf("done = %v, err = %v; a rollback must not fail", o.Done, o.Err)
		}
		wantActions(t, f, "start:resume-processing")
	})
	t.Run("rolling back, the stopper starts the task its forward update stopped", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "stopped", types.MigrationTypeValueFullLoadAndCdc))
		props := map[string]any{"Mode": "stopper", "ReplicationTaskLogicalId": taskLogID, "TaskConfig": "1a0b"}
		o := run(t, handler(f, rollingBack()), f, event(customresource.Update, "dms-task-stopper:"+taskLogID, props, props), maxPolls)
		if o.Err != nil || !o.Done {
			t.Fatalf("done = %v, err = %v", o.Done, o.Err)
		}
		wantActions(t, f, "start:resume-processing")
		if f.status(taskArn) != "running" {
			t.Errorf("task is %s, want running", f.status(taskArn))
		}
	})
	t.Run("rolling back, a stopper that cannot start the task does not fail the rollback", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "stopped", types.MigrationTypeValueFullLoadAndCdc))
		f.startErr = &types.AccessDeniedFault{Message: aws.String("not authorized")}
		props := map[string]any{"Mode": "stopper", "ReplicationTaskLogicalId": taskLogID}
		o := run(t, handler(f, rollingBack()), f, event(customresource.Update, "dms-task-stopper:"+taskLogID, props, props), maxPolls)
		if o.Err != nil || !o.Done {
			t.Fatalf("done = %v, err = %v; a rollback must not fail", o.Done, o.Err)
		}
	})
	t.Run("when the stack status cannot be read an update is treated as a forward update", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "stopped", types.MigrationTypeValueFullLoadAndCdc))
		c := &fakeCFN{err: errors.New("AccessDenied: cloudformation:DescribeStacks")}
		o := run(t, handler(f, c), f, event(customresource.Update, taskArn, lifecycle(taskArn), lifecycle(taskArn)), maxPolls)
		if o.Err != nil || !o.Done {
			t.Fatalf("done = %v, err = %v", o.Done, o.Err)
		}
		wantActions(t, f, "start:resume-processing")
	})
}

func TestStopper(t *testing.T) {
	props := map[string]any{"Mode": "stopper", "ReplicationTaskLogicalId": taskLogID, "TaskConfig": "9f2c"}
	oldProps := map[string]any{"Mode": "stopper", "ReplicationTaskLogicalId": taskLogID, "TaskConfig": "1a0b"}
	updating := func() *fakeCFN {
		return &fakeCFN{status: cfntypes.StackStatusUpdateInProgress, resources: map[string]string{taskLogID: taskArn}}
	}

	t.Run("create does nothing because the task, which depends on it, does not exist yet", func(t *testing.T) {
		f := newFakeDMS()
		o := run(t, handler(f, &fakeCFN{status: cfntypes.StackStatusCreateInProgress}), f, event(customresource.Create, "", props, nil), maxPolls)
		if o.Err != nil || !o.Done || o.Polls != 1 {
			t.Fatalf("done = %v after %d polls, err = %v", o.Done, o.Polls, o.Err)
		}
		if len(f.calls) != 0 {
			t.Errorf("DMS calls = %q, want none", f.calls)
		}
		if o.Resp.PhysicalResourceID != "dms-task-stopper:"+taskLogID {
			t.Errorf("physical ID = %q", o.Resp.PhysicalResourceID)
		}
	})
	t.Run("update stops the task it finds through the stack and waits until it is stopped", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc))
		f.tasks[taskArn].Status = aws.String("running")
		o := run(t, handler(f, updating()), f, event(customresource.Update, "dms-task-stopper:"+taskLogID, props, oldProps), maxPolls)
		if o.Err != nil || !o.Done {
			t.Fatalf("done = %v, err = %v", o.Done, o.Err)
		}
		wantActions(t, f, "stop")
		if f.status(taskArn) != "stopped" {
			t.Errorf("task is %s, want stopped before CloudFormation modifies it", f.status(taskArn))
		}
		if o.Resp.PhysicalResourceID != "dms-task-stopper:"+taskLogID {
			t.Errorf("physical ID changed to %q", o.Resp.PhysicalResourceID)
		}
	})
	t.Run("update of an already stopped task succeeds without stopping it again", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "stopped", types.MigrationTypeValueFullLoadAndCdc))
		o := run(t, handler(f, updating()), f, event(customresource.Update, "dms-task-stopper:"+taskLogID, props, oldProps), maxPolls)
		if o.Err != nil || !o.Done {
			t.Fatalf("done = %v, err = %v", o.Done, o.Err)
		}
		wantActions(t, f)
	})
	t.Run("update with no such task in the stack yet does nothing", func(t *testing.T) {
		f := newFakeDMS()
		c := &fakeCFN{status: cfntypes.StackStatusUpdateInProgress}
		o := run(t, handler(f, c), f, event(customresource.Update, "dms-task-stopper:"+taskLogID, props, oldProps), maxPolls)
		if o.Err != nil || !o.Done || len(f.calls) != 0 {
			t.Fatalf("done = %v, err = %v, DMS calls %q", o.Done, o.Err, f.calls)
		}
	})
	t.Run("delete does nothing: the task is deleted (and stopped) before it", func(t *testing.T) {
		f := newFakeDMS()
		f.ranBefore(f.add(taskArn, "running", types.MigrationTypeValueFullLoadAndCdc))
		f.tasks[taskArn].Status = aws.String("running")
		o := run(t, handler(f, updating()), f, event(customresource.Delete, "dms-task-stopper:"+taskLogID, props, nil), maxPolls)
		if o.Err != nil || !o.Done || len(f.calls) != 0 {
			t.Fatalf("done = %v, err = %v, DMS calls %q", o.Done, o.Err, f.calls)
		}
	})
}

func TestPropertiesAreValidated(t *testing.T) {
	tests := []struct {
		name    string
		props   map[string]any
		wantErr string
	}{
		{"lifecycle needs a task ARN", map[string]any{}, "ReplicationTaskArn"},
		{"a task name is not an ARN", map[string]any{"ReplicationTaskArn": "orders-replication"}, "not a DMS replication task ARN"},
		{"stopper needs the task's logical ID", map[string]any{"Mode": "stopper"}, "ReplicationTaskLogicalId is required"},
		{"an unknown mode is refused", map[string]any{"Mode": "restart", "ReplicationTaskArn": taskArn}, `Mode: "restart"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDMS()
			o := run(t, handler(f, nil), f, event(customresource.Create, "", tt.props, nil), maxPolls)
			if o.Err == nil || !strings.Contains(o.Err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", o.Err, tt.wantErr)
			}
			if len(f.calls) != 0 {
				t.Errorf("DMS calls %q before the properties were valid", f.calls)
			}
		})
	}
}
