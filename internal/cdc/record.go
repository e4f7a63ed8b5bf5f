// Package cdc reads and writes AWS DMS change records as DMS puts them on a
// Kinesis stream (docs/design.md §3.2, docs/aws-facts.md §1).
package cdc

import "encoding/json"

// Record-type values in DMS metadata.
const (
	RecordTypeData    = "data"
	RecordTypeControl = "control"
)

// Partition key types in DMS metadata.
const (
	PartitionKeyAttribute = "attribute-name"
	PartitionKeyPrimary   = "primary-key"
	PartitionKeyTaskID    = "task-id"
)

// BeforeImageField names the before image DMS adds to update records: the
// FieldName of the task's BeforeImageSettings (stacks/dms.go sets it, with
// ColumnFilter pk-only, so the image holds the row's old primary key).
// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.CustomizingTasks.TaskSettings.BeforeImage.html
const BeforeImageField = "before-image"

// TimestampLayout is how DMS writes metadata timestamps.
const TimestampLayout = "2006-01-02T15:04:05.000000Z"

// Record is one DMS Kinesis record. Data holds the row's columns with their
// source names; it is absent on control records.
type Record struct {
	Data        map[string]any `json:"data,omitempty"`
	BeforeImage map[string]any `json:"before-image,omitempty"` // updates only, see BeforeImageField
	Control     map[string]any `json:"control,omitempty"`
	Metadata    Metadata       `json:"metadata"`
}

// Metadata is the "metadata" object of a DMS record. TransactionID is raw
// because it is a number for MySQL sources and a UUID string for others.
type Metadata struct {
	Timestamp               string          `json:"timestamp"`
	RecordType              string          `json:"record-type"`
	Operation               string          `json:"operation"`
	PartitionKeyType        string          `json:"partition-key-type"`
	PartitionKeyValue       string          `json:"partition-key-value,omitempty"`
	SchemaName              string          `json:"schema-name"`
	TableName               string          `json:"table-name"`
	TransactionID           json.RawMessage `json:"transaction-id,omitempty"`
	TransactionRecordID     *int64          `json:"transaction-record-id,omitempty"`
	PrevTransactionID       json.RawMessage `json:"prev-transaction-id,omitempty"`
	PrevTransactionRecordID *int64          `json:"prev-transaction-record-id,omitempty"`
	CommitTimestamp         string          `json:"commit-timestamp,omitempty"`
	StreamPosition          string          `json:"stream-position,omitempty"`
}
