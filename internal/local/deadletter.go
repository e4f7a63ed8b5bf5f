package local

import (
	"context"
	"log/slog"
	"sync"

	"github.com/unified-streaming-etl/etl/internal/dlq"
)

// capture keeps dead letters in memory (local mode has no SQS) and logs
// them.
type capture struct {
	log  *slog.Logger
	mu   sync.Mutex
	msgs []dlq.Message
}

func (c *capture) Send(_ context.Context, msgs []dlq.Message) error {
	for _, m := range msgs {
		c.log.Warn("dead letter", "source", m.Source, "reason", m.Reason, "partitionKey", m.PartitionKey,
			"sequenceNumber", m.SequenceNumber, "data", string(m.Data))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func (c *capture) all() []dlq.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]dlq.Message(nil), c.msgs...)
}
