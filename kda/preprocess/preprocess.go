// Package preprocess is the input-preprocessing Lambda of the KDA SQL
// application (docs/design.md §1, processor=kda-sql): it turns each DMS record on
// the order stream into the flat record of docs/design.md §3.3, which the
// application's input schema maps column by column.
package preprocess

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// Results a preprocessing Lambda may give a record.
const (
	ResultOk               = "Ok"
	ResultDropped          = "Dropped"
	ResultProcessingFailed = "ProcessingFailed"
)

// Event is the request KDA for SQL sends its preprocessing Lambda
// (docs/aws-facts.md §4). aws-lambda-go has no type for it.
type Event struct {
	InvocationID   string        `json:"invocationId"`
	ApplicationARN string        `json:"applicationArn"`
	StreamARN      string        `json:"streamArn"`
	Records        []EventRecord `json:"records"`
}

// EventRecord is one input record. Data is the record's payload, already
// base64-decoded.
type EventRecord struct {
	RecordID                      string                         `json:"recordId"`
	Data                          []byte                         `json:"data"`
	KinesisStreamRecordMetadata   *KinesisStreamRecordMetadata   `json:"kinesisStreamRecordMetadata,omitempty"`
	KinesisFirehoseRecordMetadata *KinesisFirehoseRecordMetadata `json:"kinesisFirehoseRecordMetadata,omitempty"`

	// dataErr says why data could not be read when the event was
	// unmarshalled; the record then fails alone instead of the whole
	// invocation, which KDA would retry forever.
	dataErr error
}

// KinesisStreamRecordMetadata describes a record read from a Kinesis stream.
type KinesisStreamRecordMetadata struct {
	ShardID        string `json:"shardId"`
	PartitionKey   string `json:"partitionKey"`
	SequenceNumber string `json:"sequenceNumber"`
	// ApproximateArrivalTimestamp is kept as sent: AWS does not document
	// whether it counts seconds or milliseconds.
	ApproximateArrivalTimestamp json.Number `json:"approximateArrivalTimestamp"`
}

// KinesisFirehoseRecordMetadata describes a record read from a Firehose
// delivery stream.
type KinesisFirehoseRecordMetadata struct {
	ApproximateArrivalTimestamp json.Number `json:"approximateArrivalTimestamp"`
}

// UnmarshalJSON reads a record so that a bad payload or metadata affects
// only that record: data that is not base64 is remembered and reported as
// ProcessingFailed, and metadata that does not fit its type is left nil (it
// is informational only).
func (r *EventRecord) UnmarshalJSON(b []byte) error {
	var wire struct {
		RecordID                      string          `json:"recordId"`
		Data                          json.RawMessage `json:"data"`
		KinesisStreamRecordMetadata   json.RawMessage `json:"kinesisStreamRecordMetadata"`
		KinesisFirehoseRecordMetadata json.RawMessage `json:"kinesisFirehoseRecordMetadata"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return err
	}
	*r = EventRecord{RecordID: wire.RecordID}
	r.Data, r.dataErr = decodeData(wire.Data)
	if !isNull(wire.KinesisStreamRecordMetadata) {
		var m KinesisStreamRecordMetadata
		if json.Unmarshal(wire.KinesisStreamRecordMetadata, &m) == nil {
			r.KinesisStreamRecordMetadata = &m
		}
	}
	if !isNull(wire.KinesisFirehoseRecordMetadata) {
		var m KinesisFirehoseRecordMetadata
		if json.Unmarshal(wire.KinesisFirehoseRecordMetadata, &m) == nil {
			r.KinesisFirehoseRecordMetadata = &m
		}
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// decodeData reads the base64 string of a record's data member.
func decodeData(raw json.RawMessage) ([]byte, error) {
	if isNull(raw) {
		return nil, errNoData
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errNotString
	}
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotBase64, err)
	}
	return data, nil
}

// Reasons a record's data cannot be read.
var (
	errNoData    = errors.New("record has no data")
	errNotString = errors.New("record data is not a base64 string")
	errNotBase64 = errors.New("record data is not base64")
)

// Response is the preprocessing Lambda's answer: one record per input
// record, in the same order and with the same recordId.
type Response struct {
	Records []ResponseRecord `json:"records"`
}

// ResponseRecord is the outcome for one input record. Data, the flat
// record, is set only for ResultOk; it marshals as base64.
type ResponseRecord struct {
	RecordID string `json:"recordId"`
	Result   string `json:"result"`
	Data     []byte `json:"data,omitempty"`
}

// Handler preprocesses KDA input records.
type Handler struct {
	log *slog.Logger
}

// New returns a handler that logs to log, or to slog.Default() if log is
// nil.
func New(log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{log: log}
}

// Handle answers one preprocessing invocation. Each DMS data record of
// orders.order or orders.order_item becomes its flat record (Ok); control
// records and other tables are Dropped; malformed records are
// ProcessingFailed and logged with the reason, so KDA sends them to its
// error stream. Handle never fails the invocation because of a record: KDA
// would retry the same batch forever.
func (h *Handler) Handle(ctx context.Context, ev Event) (Response, error) {
	resp := Response{Records: make([]ResponseRecord, len(ev.Records))}
	// One buffer holds every flat record; each response record slices it.
	size := 0
	for i := range ev.Records {
		size += len(ev.Records[i].Data)
	}
	buf := make([]byte, 0, size)

	var ok, dropped, failed int
	for i := range ev.Records {
		in, out := &ev.Records[i], &resp.Records[i]
		out.RecordID = in.RecordID
		c, err := decode(in)
		switch {
		case err == nil:
			start := len(buf)
			buf = cdc.AppendFlat(buf, &c)
			out.Result, out.Data = ResultOk, buf[start:len(buf):len(buf)]
			ok++
		case errors.Is(err, cdc.ErrNotData):
			out.Result = ResultDropped
			dropped++
			if h.log.Enabled(ctx, slog.LevelDebug) {
				h.log.LogAttrs(ctx, slog.LevelDebug, "record dropped", recordAttrs(in, err)...)
			}
		default:
			out.Result = ResultProcessingFailed
			failed++
			h.log.LogAttrs(ctx, slog.LevelError, "record failed preprocessing", recordAttrs(in, err)...)
		}
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, "preprocessed records",
		slog.String("invocationId", ev.InvocationID),
		slog.Int("records", len(ev.Records)),
		slog.Int("ok", ok), slog.Int("dropped", dropped), slog.Int("failed", failed))
	return resp, nil
}

func decode(r *EventRecord) (order.Change, error) {
	if r.dataErr != nil {
		return order.Change{}, r.dataErr
	}
	return cdc.Decode(r.Data)
}

// recordAttrs identify a record in the logs without its data, which holds
// customers' names and addresses.
func recordAttrs(r *EventRecord, reason error) []slog.Attr {
	attrs := []slog.Attr{slog.String("recordId", r.RecordID), slog.String("reason", reason.Error())}
	if m := r.KinesisStreamRecordMetadata; m != nil {
		attrs = append(attrs,
			slog.String("shardId", m.ShardID),
			slog.String("partitionKey", m.PartitionKey),
			slog.String("sequenceNumber", m.SequenceNumber))
	}
	return attrs
}
