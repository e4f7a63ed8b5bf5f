package stacks

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// TableMappings is a DMS table-mapping document.
// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.CustomizingTasks.TableMapping.html
type TableMappings struct {
	Rules []MappingRule `json:"rules"`
}

// MappingRule is one selection or object-mapping rule.
type MappingRule struct {
	RuleType          string             `json:"rule-type"`
	RuleID            string             `json:"rule-id"`
	RuleName          string             `json:"rule-name"`
	RuleAction        string             `json:"rule-action"`
	ObjectLocator     ObjectLocator      `json:"object-locator"`
	MappingParameters *MappingParameters `json:"mapping-parameters,omitempty"`
}

// ObjectLocator names the source table a rule applies to.
type ObjectLocator struct {
	SchemaName string `json:"schema-name"`
	TableName  string `json:"table-name"`
}

// MappingParameters of an object-mapping rule to a Kinesis target.
type MappingParameters struct {
	PartitionKeyType string `json:"partition-key-type"`
	PartitionKeyName string `json:"partition-key-name,omitempty"`
}

// DMSMessageFormat is how DMS writes records to the unified stream:
// json-unformatted is single-line JSON (json, the service default, is
// tab-indented over many lines). internal/cdc reads both.
const DMSMessageFormat = "json-unformatted"

// PartitionColumn is the column both tables are partitioned by, so an order
// and its items land on the same shard, in commit order (docs/design.md §3.6).
const PartitionColumn = "orderId"

// OrderTableMappings selects orders.order and orders.order_item and maps
// both to Kinesis records keyed by orderId. (DMS's default key is the
// schema and table, which puts each table on one shard whatever the shard
// count.)
func OrderTableMappings() TableMappings {
	var rules []MappingRule
	tables := []string{order.TableOrder, order.TableOrderItem}
	for _, table := range tables {
		rules = append(rules, MappingRule{
			RuleType:      "selection",
			RuleName:      "include-" + table,
			RuleAction:    "include",
			ObjectLocator: ObjectLocator{SchemaName: order.SourceSchema, TableName: table},
		})
	}
	for _, table := range tables {
		rules = append(rules, MappingRule{
			RuleType:      "object-mapping",
			RuleName:      "partition-" + table + "-by-" + PartitionColumn,
			RuleAction:    "map-record-to-record",
			ObjectLocator: ObjectLocator{SchemaName: order.SourceSchema, TableName: table},
			MappingParameters: &MappingParameters{
				PartitionKeyType: cdc.PartitionKeyAttribute,
				PartitionKeyName: PartitionColumn,
			},
		})
	}
	for i := range rules {
		rules[i].RuleID = strconv.Itoa(i + 1)
	}
	return TableMappings{Rules: rules}
}

// TaskSettings is the part of the DMS task-settings document this pipeline
// sets; DMS defaults apply to the rest.
// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.CustomizingTasks.TaskSettings.html
type TaskSettings struct {
	TargetMetadata   TargetMetadata   `json:"TargetMetadata"`
	FullLoadSettings FullLoadSettings `json:"FullLoadSettings"`
	Logging          LoggingSettings  `json:"Logging"`
	// BeforeImage adds each update's old primary key, so that consumers
	// can delete the old row of an update that changes the key.
	BeforeImage BeforeImageSettings `json:"BeforeImageSettings"`
}

// BeforeImageSettings adds a before image (FieldName) to every update
// record; ColumnFilter pk-only keeps only the primary-key columns. For
// full-load-plus-CDC or CDC-only tasks and streaming targets such as
// Kinesis.
// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.CustomizingTasks.TaskSettings.BeforeImage.html
type BeforeImageSettings struct {
	EnableBeforeImage bool   `json:"EnableBeforeImage"`
	FieldName         string `json:"FieldName"`
	ColumnFilter      string `json:"ColumnFilter"`
}

// TargetMetadata settings.
type TargetMetadata struct {
	// BatchApplyEnabled must stay off for a Kinesis target: DMS documents it
	// can lose data there.
	BatchApplyEnabled bool `json:"BatchApplyEnabled"`
}

// FullLoadSettings settings.
type FullLoadSettings struct {
	// TargetTablePrepMode DO_NOTHING: a stream has no tables to prepare.
	TargetTablePrepMode string `json:"TargetTablePrepMode"`
}

// LoggingSettings turns on task logs in CloudWatch Logs (through
// dms-cloudwatch-logs-role), where failures are diagnosed.
type LoggingSettings struct {
	EnableLogging bool `json:"EnableLogging"`
}

// OrderTaskSettings returns the replication task's settings.
func OrderTaskSettings() TaskSettings {
	return TaskSettings{
		TargetMetadata:   TargetMetadata{BatchApplyEnabled: false},
		FullLoadSettings: FullLoadSettings{TargetTablePrepMode: "DO_NOTHING"},
		Logging:          LoggingSettings{EnableLogging: true},
		BeforeImage:      BeforeImageSettings{EnableBeforeImage: true, FieldName: cdc.BeforeImageField, ColumnFilter: "pk-only"},
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only reachable with a type json cannot encode, a programming error.
		panic(fmt.Sprintf("stacks: encode %T: %v", v, err))
	}
	return string(b)
}
