package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/lambdatest"
)

func dmsRecord(table, op, data string) string {
	return base64.StdEncoding.EncodeToString([]byte(`{"data":` + data + `,"metadata":{"timestamp":"2024-03-18T09:45:03.412907Z","record-type":"data","operation":"` + op +
		`","partition-key-type":"attribute-name","partition-key-value":"1002","schema-name":"orders","table-name":"` + table + `","transaction-id":8754110919}}`))
}

// TestBootstrapAnswersRuntimeAPIInvocations builds the binary as it is
// deployed and drives it through the Lambda Runtime API.
func TestBootstrapAnswersRuntimeAPIInvocations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap binary")
	}
	bin := lambdatest.Build(t, ".")

	streamEvent := `{"invocationId":"a1","applicationArn":"arn:aws:kinesisanalytics:us-east-1:123456789012:application/UnifiedOrderEnrichment",` +
		`"streamArn":"arn:aws:kinesis:us-east-1:123456789012:stream/UnifiedOrderStream","records":[` +
		`{"recordId":"4965-1","data":"` + dmsRecord("order_item", "insert", `{"orderId":1002,"itemId":42,"itemQuanity":"1","itemAmount":"42.50","itemStatus":"PENDING"}`) + `",` +
		`"kinesisStreamRecordMetadata":{"shardId":"shardId-000000000002","partitionKey":"1002","sequenceNumber":"4965-1","approximateArrivalTimestamp":1710755103412}},` +
		`{"recordId":"4965-2","data":"` + dmsRecord("customer", "insert", `{"customerId":7}`) + `",` +
		`"kinesisStreamRecordMetadata":{"shardId":"shardId-000000000002","partitionKey":"7","sequenceNumber":"4965-2","approximateArrivalTimestamp":1710755103413}},` +
		`{"recordId":"4965-3","data":"` + dmsRecord("order", "insert", `{"orderId":"abc"}`) + `",` +
		`"kinesisStreamRecordMetadata":{"shardId":"shardId-000000000002","partitionKey":"abc","sequenceNumber":"4965-3","approximateArrivalTimestamp":1710755103414}}]}`
	firehoseEvent := `{"invocationId":"a2","applicationArn":"arn:aws:kinesisanalytics:us-east-1:123456789012:application/UnifiedOrderEnrichment",` +
		`"streamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/UnifiedOrderDelivery","records":[` +
		`{"recordId":"fh-1","data":"` + dmsRecord("order", "update", `{"orderId":1002,"orderStatus":"SHIPPED","orderDateTime":"2024-03-18 09:45:03.007"}`) + `",` +
		`"kinesisFirehoseRecordMetadata":{"approximateArrivalTimestamp":1710755103}}]}`
	api := lambdatest.NewRuntimeAPI(t, "preprocess")
	for _, ev := range []string{streamEvent, `not an event`, firehoseEvent} {
		api.Invoke([]byte(ev))
	}
	fn := lambdatest.Start(t, bin, api, "preprocess", "AWS_LAMBDA_LOG_LEVEL=INFO")
	answer := func() lambdatest.Answer { t.Helper(); return api.Next(t, fn) }
	type record struct{ RecordID, Result, Data string }
	results := func(a lambdatest.Answer) []record {
		t.Helper()
		if a.Kind != "response" {
			t.Fatalf("answered %s: %s", a.Kind, a.Body)
		}
		var resp struct{ Records []record }
		if err := json.Unmarshal(a.Body, &resp); err != nil {
			t.Fatalf("response %s: %v", a.Body, err)
		}
		return resp.Records
	}
	flat := func(b64 string) string {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("data %q is not base64", b64)
		}
		return string(b)
	}

	t.Run("a Kinesis stream event gets Ok, Dropped and ProcessingFailed in order", func(t *testing.T) {
		recs := results(answer())
		want := []record{
			{"4965-1", "Ok", `{"recordType":"order_item","operation":"insert","orderId":1002,"itemId":42,"itemQuantity":1,"itemAmount":42.5,"itemStatus":"PENDING","sourceTimestamp":"2024-03-18 09:45:03.412907","version":1710755103412907}`},
			{"4965-2", "Dropped", ""},
			{"4965-3", "ProcessingFailed", ""},
		}
		if len(recs) != len(want) {
			t.Fatalf("got %+v", recs)
		}
		for i := range want {
			got := recs[i]
			if got.Data != "" {
				got.Data = flat(got.Data)
			}
			if got != want[i] {
				t.Errorf("record %d: got %+v, want %+v", i, got, want[i])
			}
		}
	})
	t.Run("a payload that is not an event is an invocation error", func(t *testing.T) {
		if a := answer(); a.Kind != "error" {
			t.Fatalf("answered %s: %s", a.Kind, a.Body)
		}
	})
	t.Run("the function keeps serving, and reads Firehose metadata", func(t *testing.T) {
		recs := results(answer())
		if len(recs) != 1 || recs[0].RecordID != "fh-1" || recs[0].Result != "Ok" ||
			flat(recs[0].Data) != `{"recordType":"order","operation":"update","orderId":1002,"orderStatus":"SHIPPED","orderDateTime":"2024-03-18 09:45:03.007","sourceTimestamp":"2024-03-18 09:45:03.412907","version":1710755103412907}` {
			t.Fatalf("got %+v", recs)
		}
	})
	t.Run("logs are JSON lines, the handler's with the request id, and name the failed record", func(t *testing.T) {
		fn.Stop()
		var failed bool
		sc := bufio.NewScanner(strings.NewReader(fn.Output()))
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("log line %q is not JSON", sc.Text())
			}
			_, ours := line["recordId"]
			if _, summary := line["invocationId"]; (ours || summary) && (line["requestId"] == nil || line["requestId"] == "") {
				t.Errorf("log line without requestId: %s", sc.Text())
			}
			if line["recordId"] == "4965-3" && line["level"] == "ERROR" && line["reason"] == `data.orderId: "abc" is not an integer` {
				failed = true
			}
		}
		if !failed {
			t.Errorf("no error line for the malformed record in:\n%s", fn.Output())
		}
	})
}
