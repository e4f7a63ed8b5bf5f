package dlq

import (
	"context"
	"encoding/base64"
	"log/slog"
	"unicode/utf8"
)

// logDataLimit bounds how much of a record one log line carries; a
// CloudWatch Logs event is at most 256 KiB.
const logDataLimit = 8 << 10

// Log is the Sender used when no dead-letter queue is configured: each
// message becomes an error-level log line, so the record is still kept
// (within the log's retention) and alarms on errors still fire.
type Log struct {
	Logger *slog.Logger
}

// Send logs every message and never fails.
func (l Log) Send(ctx context.Context, msgs []Message) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	for _, m := range msgs {
		data, encoding, truncated := logData(m.Data)
		logger.ErrorContext(ctx, "dead letter (no DLQ configured)",
			"reason", m.Reason,
			"source", m.Source,
			"eventSourceArn", m.EventSourceARN,
			"shardId", m.ShardID,
			"sequenceNumber", m.SequenceNumber,
			"partitionKey", m.PartitionKey,
			"dataBytes", len(m.Data),
			"dataEncoding", encoding,
			"dataTruncated", truncated,
			"data", data,
		)
	}
	return nil
}

func logData(b []byte) (data, encoding string, truncated bool) {
	if len(b) > logDataLimit {
		cut := logDataLimit
		if utf8.Valid(b) {
			// Cut text between characters so the kept part stays text.
			for cut > 0 && !utf8.RuneStart(b[cut]) {
				cut--
			}
		}
		b, truncated = b[:cut], true
	}
	if isSafeText(b) {
		return string(b), EncodingText, truncated
	}
	return base64.StdEncoding.EncodeToString(b), EncodingBase64, truncated
}
