package enrich

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// The event source mapping has no filter (stacks.TestProcessStack pins
// that), so every record of the unified stream reaches the handler, which
// must account for each one: joined, skipped and counted, or dead-lettered.
func TestHandlerAccountsForEveryRecordOfTheStream(t *testing.T) {
	s := newSource()
	withData := func(r events.KinesisEventRecord, data string) events.KinesisEventRecord {
		r.Kinesis.Data = []byte(data)
		return r
	}
	meta := func(recordType, op, schema, table string) string {
		return `"metadata":{"timestamp":"2024-03-18T09:45:03.413551Z","record-type":"` + recordType + `","operation":"` + op +
			`","partition-key-type":"attribute-name","schema-name":"` + schema + `","table-name":"` + table + `"}`
	}
	recs := []events.KinesisEventRecord{
		s.order("insert", 1, "NEW"),
		withData(s.item("insert", 1, 7, 1), "\x1f\x8b\x08 not JSON at all"),
		withData(s.item("insert", 1, 42, 2), `{"data":{"orderId":1,"itemId":42,"itemQuantity":2,"itemAmount":"9.99","itemStatus":"OPEN"},`+meta("data", "insert", "ORDERS", "ORDER_ITEM")+`}`),
		withData(s.item("insert", 1, 8, 1), `{"data":{"id":5},`+meta("data", "insert", "orders", "customer")+`}`),
		withData(s.item("insert", 1, 9, 1), `{"control":{},`+meta("control", "add-column", "orders", "order_item")+`}`),
		withData(s.item("insert", 1, 10, 1), `{"control":{},"metadata":{"timestamp":"2024-03-18T09:45:03.413551Z","record-type":"control","operation":"create-table","partition-key-type":"task-id"}}`),
		withData(s.item("insert", 1, 11, 1), `{"data":{"orderId":1},`+meta("data", "insert", "other_schema", "order_item")+`}`),
	}
	var logs bytes.Buffer
	f := &fixture{db: newFakeDB(), stream: &fakeStream{}, dead: &fakeDLQ{}}
	h, err := New(Config{
		StateTable: "EnrichState", OutputStream: "order-item-enriched", Source: "enrich-test",
		Retry: fastRetry, Now: func() time.Time { return testNow },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	}, Deps{DB: f.db, Stream: f.stream, Products: testProducts, DLQ: f.dead})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	resp := f.handle(t, event(recs...))

	t.Run("nothing is reported back to Lambda", func(t *testing.T) {
		if got := seqs(resp); len(got) != 0 {
			t.Errorf("failures %v", got)
		}
	})
	t.Run("a record that is not JSON goes to the dead-letter queue with its reason", func(t *testing.T) {
		if len(f.dead.msgs) != 1 || f.dead.msgs[0].SequenceNumber != recs[1].Kinesis.SequenceNumber ||
			!strings.Contains(f.dead.msgs[0].Reason, "invalid JSON") {
			t.Errorf("dead letters %+v, want record 1 as invalid JSON", f.dead.msgs)
		}
	})
	t.Run("schema and table names match regardless of case", func(t *testing.T) {
		if got, want := summaries(f.stream.rows()), []string{"upsert 1/42 NEW qty=2"}; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("emitted %v, want %v", got, want)
		}
	})
	t.Run("control and foreign-table records are counted in the batch summary", func(t *testing.T) {
		var summary map[string]any
		for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["msg"] == "batch processed" {
				summary = m
			}
		}
		if summary == nil {
			t.Fatalf("no batch summary logged at the default level:\n%s", logs.String())
		}
		if summary["level"] != "INFO" {
			t.Errorf("summary logged at %v, want INFO like the sink's", summary["level"])
		}
		// The same duration key as the sink's summary, so one log query
		// covers both functions.
		if _, ok := summary["durationMs"].(float64); !ok {
			t.Errorf("summary has no numeric durationMs (%v)", summary)
		}
		for k, want := range map[string]float64{"records": 7, "skippedControl": 2, "skippedForeign": 2, "deadLetters": 1, "emitted": 1} {
			if summary[k] != want {
				t.Errorf("summary %s = %v, want %v (%v)", k, summary[k], want, summary)
			}
		}
	})
}
