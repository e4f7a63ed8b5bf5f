package sink

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestDecode(t *testing.T) {
	arrival := events.SecondsEpochTime{Time: time.UnixMilli(1772366401514).Add(-37 * time.Nanosecond)} // float seconds are inexact
	const fallback = 99
	tests := []struct {
		name        string
		data        string
		arrival     events.SecondsEpochTime
		wantErr     string
		wantDelete  bool
		wantVersion int64
	}{
		{"a Go processor upsert keeps its version", `{"orderId":1,"itemId":2,"op":"upsert","version":1772366398250001}`, arrival, "", false, 1772366398250001},
		{"a Go processor delete is a delete", `{"orderId":1,"itemId":2,"op":"delete","version":5}`, arrival, "", true, 5},
		{"a KDA record is an upsert versioned by its arrival in whole milliseconds", `{"orderId":1,"itemId":2,"itemAmount":1.5}`, arrival, "", false, 1772366401514000},
		{"a record without version or arrival time gets the fallback", `{"orderId":1,"itemId":2}`, events.SecondsEpochTime{}, "", false, fallback},
		{"an empty op means upsert", `{"orderId":1,"itemId":2,"op":""}`, arrival, "", false, 1772366401514000},
		{"a null orderId is missing", `{"orderId":null,"itemId":2}`, arrival, "missing orderId", false, 0},
		{"a record without keys says so", `{"productName":"x"}`, arrival, "missing orderId and itemId", false, 0},
		{"a fractional itemId is the wrong type", `{"orderId":1,"itemId":2.5}`, arrival, "field itemId: JSON number 2.5 where an integer is expected", false, 0},
		{"a quantity given as text is the wrong type", `{"orderId":1,"itemId":2,"itemQuantity":"3"}`, arrival, "field itemQuantity: JSON string where an integer is expected", false, 0},
		{"a status given as a number is the wrong type", `{"orderId":1,"itemId":2,"itemStatus":7}`, arrival, "field itemStatus: JSON number where a string is expected", false, 0},
		{"an amount beyond DynamoDB's 38 digits is refused", `{"orderId":1,"itemId":2,"itemAmount":1234567890123456789012345678901234567.89}`, arrival, "itemAmount 1234567890123456789012345678901234567.89 has more than 38 significant digits", false, 0},
		{"trailing data after the object is refused", `{"orderId":1,"itemId":2} {"orderId":3,"itemId":4}`, arrival, "invalid character '{' after top-level value", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := events.KinesisEventRecord{Kinesis: events.KinesisRecord{Data: []byte(tt.data), ApproximateArrivalTimestamp: tt.arrival}}
			c, err := decode(&r, fallback)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decode = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.delete != tt.wantDelete || c.version != tt.wantVersion || c.key != (key{1, 2}) {
				t.Errorf("decode = key %v delete %v version %d, want {1 2} %v %d", c.key, c.delete, c.version, tt.wantDelete, tt.wantVersion)
			}
		})
	}
}
