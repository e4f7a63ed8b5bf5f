// Package dlq sets aside records that can never be processed (docs/design.md §5.1):
// each one becomes a Message that says why it failed and where it came
// from, and carries the record itself so that nothing is lost.
package dlq

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// EnvURL is the environment variable that names a handler's dead-letter
// queue (an SQS queue URL). Both Lambdas read it; the stacks set it.
const EnvURL = "DLQ_URL"

// Sender delivers dead letters. Send either delivers every message or
// returns an error; a *SendError says which ones were not delivered.
type Sender interface {
	Send(ctx context.Context, msgs []Message) error
}

// Encodings of Message data in JSON.
const (
	EncodingText   = "text"
	EncodingBase64 = "base64"
)

// Message is one dead letter.
type Message struct {
	// Reason says why the record was set aside.
	Reason string
	// Source names the function (or tool) that set it aside.
	Source string
	// EventSourceARN, ShardID, SequenceNumber and PartitionKey locate the
	// record in its stream, so it can be read again while the stream
	// retains it.
	EventSourceARN string
	ShardID        string
	SequenceNumber string
	PartitionKey   string
	// ArrivalTime is the stream's approximate arrival timestamp.
	ArrivalTime time.Time
	// FailedAt is when the record was set aside.
	FailedAt time.Time
	// Data is the record exactly as it was received.
	Data []byte
	// DataTruncated is set when Data was left out because the message
	// would not fit the queue; DataBytes keeps its length.
	DataTruncated bool
	DataBytes     int
}

// FromKinesis builds the dead letter of a Kinesis record.
func FromKinesis(rec events.KinesisEventRecord, source, reason string, now time.Time) Message {
	shard, _, _ := strings.Cut(rec.EventID, ":") // "shardId-000000000000:<sequence number>"
	return Message{
		Reason:         reason,
		Source:         source,
		EventSourceARN: rec.EventSourceArn,
		ShardID:        shard,
		SequenceNumber: rec.Kinesis.SequenceNumber,
		PartitionKey:   rec.Kinesis.PartitionKey,
		// Kinesis stamps milliseconds; the event's float seconds lose that
		// exactness, which rounding restores.
		ArrivalTime: rec.Kinesis.ApproximateArrivalTimestamp.Round(time.Millisecond).UTC(),
		FailedAt:    now.UTC(),
		Data:        rec.Kinesis.Data,
		DataBytes:   len(rec.Kinesis.Data),
	}
}

// wireMessage is the JSON body of a dead letter.
type wireMessage struct {
	Reason         string    `json:"reason"`
	Source         string    `json:"source"`
	EventSourceARN string    `json:"eventSourceArn,omitempty"`
	ShardID        string    `json:"shardId,omitempty"`
	SequenceNumber string    `json:"sequenceNumber,omitempty"`
	PartitionKey   string    `json:"partitionKey,omitempty"`
	ArrivalTime    time.Time `json:"approximateArrivalTimestamp,omitzero"`
	FailedAt       time.Time `json:"failedAt,omitzero"`
	Data           *string   `json:"data,omitempty"`
	DataEncoding   string    `json:"dataEncoding,omitempty"`
	DataTruncated  bool      `json:"dataTruncated,omitempty"`
	DataBytes      int       `json:"dataBytes"`
}

// MarshalJSON writes the message as a JSON object. The record goes in
// "data" as text when that keeps its bytes exactly and is legal in an SQS
// body, else as base64; "dataEncoding" says which.
func (m Message) MarshalJSON() ([]byte, error) {
	w := wireMessage{
		Reason:         m.Reason,
		Source:         m.Source,
		EventSourceARN: m.EventSourceARN,
		ShardID:        m.ShardID,
		SequenceNumber: m.SequenceNumber,
		PartitionKey:   m.PartitionKey,
		ArrivalTime:    m.ArrivalTime,
		FailedAt:       m.FailedAt,
		DataTruncated:  m.DataTruncated,
		DataBytes:      m.DataBytes,
	}
	if w.DataBytes == 0 {
		w.DataBytes = len(m.Data)
	}
	if !m.DataTruncated {
		var s string
		if isSafeText(m.Data) {
			s, w.DataEncoding = string(m.Data), EncodingText
		} else {
			s, w.DataEncoding = base64.StdEncoding.EncodeToString(m.Data), EncodingBase64
		}
		w.Data = &s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep records readable in the console
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// UnmarshalJSON reads what MarshalJSON writes, restoring Data's bytes.
func (m *Message) UnmarshalJSON(b []byte) error {
	var w wireMessage
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = Message{
		Reason:         w.Reason,
		Source:         w.Source,
		EventSourceARN: w.EventSourceARN,
		ShardID:        w.ShardID,
		SequenceNumber: w.SequenceNumber,
		PartitionKey:   w.PartitionKey,
		ArrivalTime:    w.ArrivalTime,
		FailedAt:       w.FailedAt,
		DataTruncated:  w.DataTruncated,
		DataBytes:      w.DataBytes,
	}
	if w.Data == nil {
		return nil
	}
	switch w.DataEncoding {
	case EncodingText:
		m.Data = []byte(*w.Data)
	case EncodingBase64:
		d, err := base64.StdEncoding.DecodeString(*w.Data)
		if err != nil {
			return fmt.Errorf("dlq: data: %w", err)
		}
		m.Data = d
	default:
		return fmt.Errorf("dlq: unknown dataEncoding %q", w.DataEncoding)
	}
	return nil
}

// isSafeText reports whether b survives a round trip as a JSON string and
// holds only characters SQS accepts in a body. JSON escapes control
// characters, but SQS also rejects U+FFFE and U+FFFF, which JSON does not
// escape; invalid UTF-8 would be replaced, not kept.
func isSafeText(b []byte) bool {
	return utf8.Valid(b) && !bytes.Contains(b, []byte("\uFFFE")) && !bytes.Contains(b, []byte("\uFFFF"))
}
