package enrich

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Stream is the part of the Kinesis client the output writer uses.
type Stream interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Kinesis PutRecords limits: 500 records and 5 MiB per call, partition keys
// included.
const (
	maxPutRecords = 500
	maxPutBytes   = 5 << 20
)

// outRecord is one enriched row ready for PutRecords.
type outRecord struct {
	group int // index of the order group it belongs to
	key   string
	data  []byte
}

// chunkRecords splits records into PutRecords calls within the limits.
func chunkRecords(recs []outRecord) [][]outRecord {
	var chunks [][]outRecord
	start, size := 0, 0
	for i, r := range recs {
		n := len(r.key) + len(r.data)
		if i > start && (i-start == maxPutRecords || size+n > maxPutBytes) {
			chunks = append(chunks, recs[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(recs) {
		chunks = append(chunks, recs[start:])
	}
	return chunks
}

// putRecords writes one chunk to stream (a name or an ARN), retrying the
// entries Kinesis rejects (it reports throttling per entry). It returns the
// indexes, within recs, of the entries that could not be written, with the
// reason.
func (h *Handler) putRecords(ctx context.Context, stream string, recs []outRecord) ([]int, error) {
	pending := make([]int, len(recs))
	for i := range pending {
		pending[i] = i
	}
	err := h.retry.Do(ctx, func(ctx context.Context) error {
		in := &kinesis.PutRecordsInput{Records: make([]types.PutRecordsRequestEntry, len(pending))}
		if strings.HasPrefix(stream, "arn:") {
			in.StreamARN = &stream
		} else {
			in.StreamName = &stream
		}
		for i, idx := range pending {
			in.Records[i] = types.PutRecordsRequestEntry{Data: recs[idx].data, PartitionKey: &recs[idx].key}
		}
		out, err := h.stream.PutRecords(ctx, in)
		if err != nil {
			return err
		}
		if out.FailedRecordCount != nil && *out.FailedRecordCount == 0 {
			pending = nil
			return nil
		}
		if len(out.Records) != len(pending) {
			return fmt.Errorf("%w: PutRecords answered %d entries for %d records", errPartial, len(out.Records), len(pending))
		}
		var failed []int
		var reason string
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed = append(failed, pending[i])
				if reason == "" {
					reason = *r.ErrorCode
					if r.ErrorMessage != nil {
						reason += ": " + *r.ErrorMessage
					}
				}
			}
		}
		pending = failed
		if len(pending) > 0 {
			return fmt.Errorf("%w: %d of %d records failed (%s)", errPartial, len(pending), len(recs), reason)
		}
		return nil
	})
	if err != nil {
		return pending, fmt.Errorf("put records to %s: %w", stream, err)
	}
	return nil, nil
}
