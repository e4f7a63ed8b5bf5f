package dmstask

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/databasemigrationservice/types"
)

// Every status DMS documents, for both goals, with a task that has not
// been started by the current event.
func TestDecisionsForEveryStatus(t *testing.T) {
	since := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	earlier := since.Add(-time.Hour)
	const (
		wait  = "wait"
		done  = "done"
		start = "start"
		stop  = "stop"
		fail  = "fail"
	)
	tests := []struct {
		status       string
		whenRunning  string
		whenStopping string
	}{
		{"creating", wait, wait},
		{"ready", start, done},
		{"starting", wait, wait},
		{"running", done, stop},
		{"stopping", wait, wait},
		{"stopped", start, done},
		{"modifying", wait, wait},
		{"testing", wait, wait},
		{"moving", wait, wait},
		{"failed", start, done},
		{"failed-move", fail, done},
		{"deleting", fail, done},
		{"a-status-added-later", wait, wait},
	}
	name := func(d decision) string {
		switch {
		case d.err != nil:
			return fail
		case d.start != "":
			return start
		case d.stop:
			return stop
		case d.done:
			return done
		}
		return wait
	}
	for _, tt := range tests {
		t.Run("a "+tt.status+" task", func(t *testing.T) {
			task := &types.ReplicationTask{
				Status:               aws.String(tt.status),
				ReplicationTaskStats: &types.ReplicationTaskStats{StartDate: &earlier},
			}
			if got := name(decideRunning(task, since)); got != tt.whenRunning {
				t.Errorf("towards running: %s, want %s", got, tt.whenRunning)
			}
			if got := name(decideStopped(task)); got != tt.whenStopping {
				t.Errorf("towards stopped: %s, want %s", got, tt.whenStopping)
			}
		})
	}
	t.Run("a task that is gone is an error to start and done to stop", func(t *testing.T) {
		if d := decideRunning(nil, since); d.err == nil {
			t.Error("starting a missing task did not fail")
		}
		if d := decideStopped(nil); !d.done {
			t.Error("stopping a missing task is not done")
		}
	})
}

func TestStartType(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		task types.ReplicationTask
		want types.StartReplicationTaskTypeValue
	}{
		{"a task that never ran gets start-replication, the only type DMS allows first",
			types.ReplicationTask{Status: aws.String("ready")}, types.StartReplicationTaskTypeValueStartReplication},
		{"a task that ran is resumed",
			types.ReplicationTask{Status: aws.String("stopped"), ReplicationTaskStats: &types.ReplicationTaskStats{StartDate: &now}}, types.StartReplicationTaskTypeValueResumeProcessing},
		{"a task with a CDC checkpoint is resumed",
			types.ReplicationTask{Status: aws.String("ready"), RecoveryCheckpoint: aws.String("checkpoint:V1#1#mysql-bin-changelog.000001:4:-1:4:0#0#*#0#1")}, types.StartReplicationTaskTypeValueResumeProcessing},
		{"a task with empty statistics never ran",
			types.ReplicationTask{Status: aws.String("ready"), ReplicationTaskStats: &types.ReplicationTaskStats{}}, types.StartReplicationTaskTypeValueStartReplication},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startType(&tt.task); got != tt.want {
				t.Errorf("startType = %s, want %s", got, tt.want)
			}
		})
	}
}
