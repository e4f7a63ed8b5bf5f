package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/unified-streaming-etl/etl/internal/retry"
)

// SQSAPI is the part of the SQS client the sender uses.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// SQS limits that shape the batches.
const (
	// MaxBatchEntries is the most messages one SendMessageBatch takes.
	MaxBatchEntries = 10
	// DefaultMaxBytes bounds one message body and one batch's bodies
	// together. SQS has since raised its limits to 1 MiB, but a queue's
	// MaximumMessageSize may still be lower; 256 KiB fits every queue.
	DefaultMaxBytes = 256 << 10
)

// SQS sends dead letters to a standard SQS queue, one JSON body each.
type SQS struct {
	client   SQSAPI
	queueURL string
	policy   retry.Policy
	maxBytes int
}

// SQSOption adjusts an SQS sender.
type SQSOption func(*SQS)

// WithRetry sets the retry policy for throttled or failed sends.
func WithRetry(p retry.Policy) SQSOption { return func(s *SQS) { s.policy = p } }

// WithMaxBytes sets the body and batch size limit (see DefaultMaxBytes).
func WithMaxBytes(n int) SQSOption { return func(s *SQS) { s.maxBytes = n } }

// NewSQS returns a sender for the queue at queueURL.
func NewSQS(client SQSAPI, queueURL string, opts ...SQSOption) *SQS {
	s := &SQS{client: client, queueURL: queueURL, maxBytes: DefaultMaxBytes}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SendError reports the messages Send could not deliver.
type SendError struct {
	// Failed holds the indexes, ascending, of undelivered messages in the
	// slice given to Send.
	Failed []int
	Err    error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("dlq: %d message(s) not delivered: %v", len(e.Failed), e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// Send delivers msgs in batches of at most MaxBatchEntries entries and
// maxBytes bytes, retrying throttled calls and entries that failed on the
// service's side. A message too large for the queue is sent without its
// data (marked dataTruncated) so the pointer to the record still arrives.
func (s *SQS) Send(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	bodies := make([]string, len(msgs))
	for i, m := range msgs {
		b, err := s.body(m)
		if err != nil {
			return &SendError{Failed: allIndexes(len(msgs)), Err: err}
		}
		bodies[i] = b
	}

	var failed []int
	var errs []error
	for _, chunk := range s.chunks(bodies) {
		if idx, err := s.sendChunk(ctx, chunk, bodies); err != nil {
			failed = append(failed, idx...)
			errs = append(errs, err)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	sort.Ints(failed)
	return &SendError{Failed: failed, Err: errors.Join(errs...)}
}

func (s *SQS) body(m Message) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("dlq: encode message: %w", err)
	}
	if len(b) > s.maxBytes && !m.DataTruncated {
		m.DataBytes, m.Data, m.DataTruncated = len(m.Data), nil, true
		if b, err = json.Marshal(m); err != nil {
			return "", fmt.Errorf("dlq: encode message: %w", err)
		}
	}
	return string(b), nil
}

// chunks groups message indexes into batches SQS accepts.
func (s *SQS) chunks(bodies []string) [][]int {
	var out [][]int
	var cur []int
	size := 0
	for i, b := range bodies {
		if len(cur) == MaxBatchEntries || (len(cur) > 0 && size+len(b) > s.maxBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += len(b)
	}
	return append(out, cur)
}

// errEntriesFailed marks a batch whose entries partly failed on the
// service's side, which is worth retrying for those entries.
var errEntriesFailed = errors.New("batch entries failed")

// sendChunk sends one batch and returns the indexes that stayed undelivered.
func (s *SQS) sendChunk(ctx context.Context, chunk []int, bodies []string) ([]int, error) {
	pending := chunk
	var final []int // entries SQS rejected as the sender's fault: retrying cannot help
	var finalErrs []error
	policy := s.policy
	policy.Retryable = func(err error) bool { return errors.Is(err, errEntriesFailed) || retry.IsRetryable(err) }
	err := policy.Do(ctx, func(ctx context.Context) error {
		entries := make([]types.SendMessageBatchRequestEntry, len(pending))
		for j, i := range pending {
			entries[j] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(bodies[i])}
		}
		out, err := s.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries})
		if err != nil {
			return fmt.Errorf("dlq: SendMessageBatch: %w", err)
		}
		var retryable []int
		var reasons []string
		for _, f := range out.Failed {
			i, err := strconv.Atoi(aws.ToString(f.Id))
			if err != nil {
				return fmt.Errorf("dlq: SendMessageBatch returned unknown entry id %q", aws.ToString(f.Id))
			}
			reason := aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
			if f.SenderFault {
				final = append(final, i)
				finalErrs = append(finalErrs, fmt.Errorf("message %d rejected: %s", i, reason))
				continue
			}
			retryable = append(retryable, i)
			reasons = append(reasons, reason)
		}
		pending = retryable
		if len(pending) > 0 {
			return fmt.Errorf("dlq: %w: %s", errEntriesFailed, strings.Join(reasons, "; "))
		}
		return nil
	})
	if err != nil {
		final = append(final, pending...)
		finalErrs = append(finalErrs, err)
	}
	if len(final) == 0 {
		return nil, nil
	}
	return final, errors.Join(finalErrs...)
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
