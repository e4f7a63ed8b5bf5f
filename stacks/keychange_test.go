package stacks_test

import (
	"encoding/json"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/stacks"
)

// DMS adds the old primary key of every update under the field the decoder
// reads, so an update that changes a key can delete the old row.
// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.CustomizingTasks.TaskSettings.BeforeImage.html
func TestDataStackTaskSendsTheOldKeyOfEveryUpdate(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	_, task := only(t, tmpl, "AWS::DMS::ReplicationTask", map[string]any{"MigrationType": "full-load-and-cdc"})
	var settings struct {
		BeforeImageSettings *struct {
			EnableBeforeImage bool
			FieldName         string
			ColumnFilter      string
		}
	}
	if err := json.Unmarshal([]byte(props(task)["ReplicationTaskSettings"].(string)), &settings); err != nil {
		t.Fatal(err)
	}
	bi := settings.BeforeImageSettings
	if bi == nil || !bi.EnableBeforeImage || bi.FieldName != cdc.BeforeImageField || bi.ColumnFilter != "pk-only" {
		t.Errorf("BeforeImageSettings = %+v, want enabled, field %q, pk-only", bi, cdc.BeforeImageField)
	}
}

// The enrich function puts the old key's delete of a row moved to another
// order back on the order stream, so it needs the stream's name and write
// access to it (and to its key).
func TestEnrichMayWriteTheOldKeysOfMovedRowsToTheOrderStream(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.ProcessStackName)
			only(t, tmpl, "AWS::Lambda::Function", map[string]any{"Environment": map[string]any{"Variables": map[string]any{
				enrich.EnvSourceStream: importOf("OrderStream"),
			}}})
			statements := policyOf(t, tmpl, "Enrich")
			for _, g := range []struct{ action, resource string }{
				{"kinesis:PutRecords", "OrderStream"}, {"kms:GenerateDataKey*", "Key"},
			} {
				if !allows(t, statements, g.action, g.resource) {
					t.Errorf("enrich may not %s on %s", g.action, g.resource)
				}
			}
		})
	}
}
