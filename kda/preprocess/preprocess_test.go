package preprocess_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unified-streaming-etl/etl/kda/preprocess"
)

// Flat records the fixtures' data records must become (see the cdc
// package's fixtures of the same names).
const (
	flatOrderInsert = `{"recordType":"order","operation":"insert","orderId":1002,"orderAmount":42.5,"orderStatus":"PENDING","shipToName":"Chen Wei","shipToAddress":"88 Harbor Blvd","shipToCity":"San Francisco","shipToState":"CA","shipToZip":"94105","orderDateTime":"2024-03-18 09:45:03.007","sourceTimestamp":"2024-03-18 09:45:03.412907","version":1710755103412907}`
	flatItemInsert  = `{"recordType":"order_item","operation":"insert","orderId":1002,"itemId":42,"itemQuantity":1,"itemAmount":42.5,"itemStatus":"PENDING","sourceTimestamp":"2024-03-18 09:45:03.413551","version":1710755103413551}`
	flatItemStrings = `{"recordType":"order_item","operation":"insert","orderId":1003,"itemId":205,"itemQuantity":2,"itemAmount":1299.95,"itemStatus":"PENDING","sourceTimestamp":"2024-03-18 10:00:00.813002","version":1710756000813002}`
	flatItemOldName = `{"recordType":"order_item","operation":"insert","orderId":1001,"itemId":23,"itemQuantity":5,"itemAmount":24.95,"itemStatus":"BACKORDERED","sourceTimestamp":"2024-03-18 09:41:30.120044","version":1710754890120044}`
	flatOrderUpdate = `{"recordType":"order","operation":"update","orderId":1001,"orderAmount":139.97,"orderStatus":"SHIPPED","shipToName":"Maria Garcia","shipToAddress":"1200 Pine St, Apt 4B","shipToCity":"Seattle","shipToState":"WA","shipToZip":"98101","orderDateTime":"2024-03-18 09:41:22.183","sourceTimestamp":"2024-03-19 14:02:11.004120","version":1710856931004120}`
)

// want is the expected outcome of one record.
type want struct {
	result string
	flat   string // for Ok
	reason string // for ProcessingFailed: the logged reason
}

// logEntry is one line of the handler's JSON log.
type logEntry struct {
	Level          string `json:"level"`
	Msg            string `json:"msg"`
	RecordID       string `json:"recordId"`
	Reason         string `json:"reason"`
	SequenceNumber string `json:"sequenceNumber"`
	InvocationID   string `json:"invocationId"`
	Records        int    `json:"records"`
	OK             int    `json:"ok"`
	Dropped        int    `json:"dropped"`
	Failed         int    `json:"failed"`
}

func newHandler(t *testing.T) (*preprocess.Handler, func() []logEntry) {
	t.Helper()
	var logs bytes.Buffer
	h := preprocess.New(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return h, func() []logEntry {
		var entries []logEntry
		for line := range strings.Lines(logs.String()) {
			var e logEntry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			entries = append(entries, e)
		}
		return entries
	}
}

func readEvent(t *testing.T, name string) ([]byte, preprocess.Event) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev preprocess.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return raw, ev
}

// checkResponse asserts one response record per input record, in order,
// with the input's recordId and the expected result and data.
func checkResponse(t *testing.T, ev preprocess.Event, resp preprocess.Response, wants []want) {
	t.Helper()
	if len(ev.Records) != len(wants) {
		t.Fatalf("fixture has %d records, test expects %d", len(ev.Records), len(wants))
	}
	if len(resp.Records) != len(ev.Records) {
		t.Fatalf("%d response records for %d input records", len(resp.Records), len(ev.Records))
	}
	for i, w := range wants {
		got := resp.Records[i]
		if got.RecordID != ev.Records[i].RecordID {
			t.Errorf("record %d: recordId %q, want %q", i, got.RecordID, ev.Records[i].RecordID)
		}
		if got.Result != w.result {
			t.Errorf("record %d: result %s, want %s", i, got.Result, w.result)
		}
		if string(got.Data) != w.flat {
			t.Errorf("record %d: data\n got %s\nwant %s", i, got.Data, w.flat)
		}
	}
}

// handleAndCheck invokes a new handler with ev and checks its answer and
// failure logs against wants, one per record.
func handleAndCheck(t *testing.T, ev preprocess.Event, wants []want) {
	t.Helper()
	h, logs := newHandler(t)
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("the invocation failed: %v", err)
	}
	checkResponse(t, ev, resp, wants)
	checkFailureLogs(t, ev, wants, logs())
}

// checkFailureLogs asserts that each failed record was logged with its id
// and reason.
func checkFailureLogs(t *testing.T, ev preprocess.Event, wants []want, entries []logEntry) {
	t.Helper()
	for i, w := range wants {
		if w.result != preprocess.ResultProcessingFailed {
			continue
		}
		found := false
		for _, e := range entries {
			if e.RecordID == ev.Records[i].RecordID && e.Level == "ERROR" {
				found = true
				if e.Reason != w.reason {
					t.Errorf("record %d logged with reason %q, want %q", i, e.Reason, w.reason)
				}
			}
		}
		if !found {
			t.Errorf("record %d (%s) failed without an error log", i, ev.Records[i].RecordID)
		}
	}
}

func TestHandleKinesisStreamEvent(t *testing.T) {
	_, ev := readEvent(t, "kda-stream-event.json")
	wants := []want{
		{result: preprocess.ResultOk, flat: flatOrderInsert},
		{result: preprocess.ResultOk, flat: flatItemInsert},
		{result: preprocess.ResultDropped},
		{result: preprocess.ResultDropped},
		{result: preprocess.ResultProcessingFailed, reason: `data.orderId: "abc" is not an integer`},
		{result: preprocess.ResultOk, flat: flatItemStrings},
		{result: preprocess.ResultOk, flat: flatItemOldName},
	}
	h, logs := newHandler(t)
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("the invocation failed: %v", err)
	}
	t.Run("every record gets its result in order under its own id", func(t *testing.T) {
		checkResponse(t, ev, resp, wants)
	})
	entries := logs()
	t.Run("a malformed record is logged with its id, sequence number and reason", func(t *testing.T) {
		checkFailureLogs(t, ev, wants, entries)
		for _, e := range entries {
			if e.Level == "ERROR" && e.SequenceNumber != ev.Records[4].KinesisStreamRecordMetadata.SequenceNumber {
				t.Errorf("error log names sequence number %q", e.SequenceNumber)
			}
		}
	})
	t.Run("the invocation is summarised in one info line", func(t *testing.T) {
		var summary *logEntry
		for i := range entries {
			if entries[i].Level == "INFO" {
				if summary != nil {
					t.Fatal("more than one info line")
				}
				summary = &entries[i]
			}
		}
		if summary == nil {
			t.Fatal("no summary")
		}
		if summary.InvocationID != ev.InvocationID || summary.Records != 7 || summary.OK != 4 || summary.Dropped != 2 || summary.Failed != 1 {
			t.Fatalf("summary %+v", *summary)
		}
	})
}

func TestHandleFirehoseEvent(t *testing.T) {
	_, ev := readEvent(t, "kda-firehose-event.json")
	if ev.Records[0].KinesisFirehoseRecordMetadata == nil || ev.Records[0].KinesisFirehoseRecordMetadata.ApproximateArrivalTimestamp != "1710856931" {
		t.Fatalf("firehose metadata not read: %+v", ev.Records[0])
	}
	wants := []want{
		{result: preprocess.ResultOk, flat: flatOrderUpdate},
		{result: preprocess.ResultProcessingFailed, reason: `data.orderAmount: "12,50" is not a decimal`},
		{result: preprocess.ResultDropped},
	}
	handleAndCheck(t, ev, wants)
}

func TestOddRecordsFailAloneAndNeverTheInvocation(t *testing.T) {
	good := base64.StdEncoding.EncodeToString([]byte(`{"data":{"orderId":1,"itemId":2},"metadata":{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","schema-name":"orders","table-name":"order_item"}}`))
	goodFlat := `{"recordType":"order_item","operation":"insert","orderId":1,"itemId":2,"sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`
	event := `{"invocationId":"i-1","applicationArn":"arn:aws:kinesisanalytics:us-east-1:123456789012:application/A","records":[
		{"recordId":"1","data":"` + good + `","kinesisStreamRecordMetadata":{"shardId":"shardId-000000000000","partitionKey":"1","sequenceNumber":"1","approximateArrivalTimestamp":"not a number"}},
		{"recordId":"2","data":"%%% not base64 %%%"},
		{"recordId":"3"},
		{"recordId":"4","data":12345},
		{"recordId":"5","data":"` + strings.ReplaceAll(good, "/", `\/`) + `"},
		{"recordId":"6","data":""},
		{"recordId":"7","data":"` + base64.StdEncoding.EncodeToString([]byte("\x00\x01binary")) + `"}]}`
	var ev preprocess.Event
	if err := json.Unmarshal([]byte(event), &ev); err != nil {
		t.Fatalf("one odd record failed the whole event: %v", err)
	}
	wants := []want{
		{result: preprocess.ResultOk, flat: goodFlat},
		{result: preprocess.ResultProcessingFailed, reason: "record data is not base64: illegal base64 data at input byte 0"},
		{result: preprocess.ResultProcessingFailed, reason: "record has no data"},
		{result: preprocess.ResultProcessingFailed, reason: "record data is not a base64 string"},
		{result: preprocess.ResultOk, flat: goodFlat},
		{result: preprocess.ResultProcessingFailed, reason: "invalid JSON: empty input"},
		{result: preprocess.ResultProcessingFailed, reason: "invalid JSON: unexpected byte 0x00 at offset 0"},
	}
	handleAndCheck(t, ev, wants)
}

func TestResponseWireFormat(t *testing.T) {
	raw, ev := readEvent(t, "kda-stream-event.json")
	h, _ := newHandler(t)
	// Invoke through aws-lambda-go's own handler, as the runtime does, so the
	// bytes are those KDA receives: main starts h itself (raw payloads), and
	// h.Handle is the typed alternative.
	for name, lh := range map[string]lambda.Handler{
		"the handler main starts": lambda.NewHandler(h),
		"the typed handler":       lambda.NewHandler(h.Handle),
	} {
		t.Run(name+" answers the documented response shape", func(t *testing.T) {
			out, err := lh.Invoke(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, ev, out)
		})
	}
}

func checkWire(t *testing.T, ev preprocess.Event, out []byte) {
	t.Helper()
	var wire struct {
		Records []map[string]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(out, &wire); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	if len(wire.Records) != len(ev.Records) {
		t.Fatalf("%d records in the response", len(wire.Records))
	}
	for i, r := range wire.Records {
		var id, result string
		_ = json.Unmarshal(r["recordId"], &id)
		_ = json.Unmarshal(r["result"], &result)
		if id != ev.Records[i].RecordID {
			t.Errorf("record %d has recordId %q", i, id)
		}
		data, hasData := r["data"]
		switch result {
		case preprocess.ResultOk:
			var b64 string
			if err := json.Unmarshal(data, &b64); err != nil {
				t.Fatalf("record %d: data is not a string: %s", i, data)
			}
			flat, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatalf("record %d: data is not base64: %v", i, err)
			}
			if !json.Valid(flat) || !bytes.HasPrefix(flat, []byte(`{"recordType":`)) {
				t.Errorf("record %d: data decodes to %s", i, flat)
			}
		case preprocess.ResultDropped, preprocess.ResultProcessingFailed:
			if hasData {
				t.Errorf("record %d (%s) carries data %s", i, result, data)
			}
		default:
			t.Errorf("record %d: result %q", i, result)
		}
		if len(r) != 2 && len(r) != 3 {
			t.Errorf("record %d has members %v", i, r)
		}
	}
	if first := string(wire.Records[0]["data"]); first != `"`+base64.StdEncoding.EncodeToString([]byte(flatOrderInsert))+`"` {
		t.Errorf("first record's data is %s", first)
	}
}

func TestEmptyEventAnswersAnEmptyList(t *testing.T) {
	h, _ := newHandler(t)
	for _, in := range []string{`{"invocationId":"x","records":[]}`, `{"invocationId":"x"}`, `{"records":null}`} {
		out, err := lambda.NewHandler(h).Invoke(context.Background(), []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != `{"records":[]}` {
			t.Errorf("%s answered %s", in, out)
		}
	}
}

func TestKeyChangesAndTruncatesReachKDAOrItsErrorStream(t *testing.T) {
	rekeyed := base64.StdEncoding.EncodeToString([]byte(`{"data":{"orderId":2002,"itemId":1},"before-image":{"orderId":2001,"itemId":1},` +
		`"metadata":{"timestamp":"2024-03-21T10:00:02.200300Z","record-type":"data","operation":"update","schema-name":"orders","table-name":"order_item"}}`))
	truncate := base64.StdEncoding.EncodeToString([]byte(`{"metadata":{"timestamp":"2024-03-21T11:30:00.000125Z","record-type":"control",` +
		`"operation":"truncate-table","partition-key-type":"task-id","schema-name":"orders","table-name":"order_item"}}`))
	var ev preprocess.Event
	if err := json.Unmarshal([]byte(`{"invocationId":"i-2","records":[{"recordId":"1","data":"`+rekeyed+`"},{"recordId":"2","data":"`+truncate+`"}]}`), &ev); err != nil {
		t.Fatal(err)
	}
	wants := []want{
		{result: preprocess.ResultOk, flat: `{"recordType":"order_item","operation":"update","orderId":2002,"itemId":1,"sourceTimestamp":"2024-03-21 10:00:02.200300","version":1711015202200300,"oldOrderId":2001,"oldItemId":1}`},
		{result: preprocess.ResultProcessingFailed, reason: "TRUNCATE TABLE of a source table: control record truncate-table for orders.order_item: TRUNCATE deletes rows " +
			"without row changes, so the enriched rows and join state of the table's rows are still there; follow the README's truncate procedure"},
	}
	handleAndCheck(t, ev, wants)
}
