package dlq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/retry"
)

func loadEvent(t *testing.T, name string) events.KinesisEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestFromKinesis(t *testing.T) {
	ev := loadEvent(t, "kinesis-event.json")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := dlq.FromKinesis(ev.Records[0], "sink", "invalid JSON", now)
	want := dlq.Message{
		Reason:         "invalid JSON",
		Source:         "sink",
		EventSourceARN: "arn:aws:kinesis:us-east-1:123456789012:stream/order-item-enriched",
		ShardID:        "shardId-000000000003",
		SequenceNumber: "49654226190374217584376545318930211358523283025355423794",
		PartitionKey:   "1001",
		ArrivalTime:    time.UnixMilli(1772366400123).UTC(),
		FailedAt:       now,
		Data:           []byte(`{"orderId": 1001, "itemId": `),
		DataBytes:      28,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("FromKinesis =\n%+v\nwant\n%+v", m, want)
	}
}

func TestMessageJSON(t *testing.T) {
	base := dlq.Message{
		Reason: "missing itemId", Source: "sink", ShardID: "shardId-000000000000",
		SequenceNumber: "4965", PartitionKey: "7", FailedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	tests := []struct {
		name         string
		data         []byte
		wantEncoding string
	}{
		{"a JSON record travels as readable text", []byte(`{"orderId":7,"note":"<a & b>"}`), dlq.EncodingText},
		{"an empty record travels as empty text", []byte{}, dlq.EncodingText},
		{"binary data travels as base64", []byte{0x1f, 0x8b, 0x08, 0x00, 0xff}, dlq.EncodingBase64},
		{"text with a character SQS refuses travels as base64", []byte("ok\uffffok"), dlq.EncodingBase64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base
			m.Data = tt.data
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			if raw["dataEncoding"] != tt.wantEncoding || raw["reason"] != "missing itemId" || raw["sequenceNumber"] != "4965" {
				t.Errorf("body %s lacks the reason, the pointer or encoding %q", b, tt.wantEncoding)
			}
			var back dlq.Message
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Data, tt.data) || back.DataBytes != len(tt.data) {
				t.Errorf("data %q came back as %q (%d bytes)", tt.data, back.Data, back.DataBytes)
			}
		})
	}
}

// fakeSQS answers SendMessageBatch from a script and records what it got.
type fakeSQS struct {
	calls   [][]types.SendMessageBatchRequestEntry
	respond func(call int, entries []types.SendMessageBatchRequestEntry) (*sqs.SendMessageBatchOutput, error)
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if aws.ToString(in.QueueUrl) != queueURL {
		return nil, errors.New("wrong queue")
	}
	f.calls = append(f.calls, in.Entries)
	if f.respond != nil {
		return f.respond(len(f.calls), in.Entries)
	}
	return ok(in.Entries), nil
}

func ok(entries []types.SendMessageBatchRequestEntry) *sqs.SendMessageBatchOutput {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range entries {
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + *e.Id)})
	}
	return out
}

const queueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/sink-dlq"

var fastRetry = dlq.WithRetry(retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond})

func messages(n, dataBytes int) []dlq.Message {
	msgs := make([]dlq.Message, n)
	for i := range msgs {
		msgs[i] = dlq.Message{Reason: "bad", Source: "sink", SequenceNumber: strconv.Itoa(1000 + i), Data: bytes.Repeat([]byte("x"), dataBytes)}
	}
	return msgs
}

func sentSequenceNumbers(t *testing.T, f *fakeSQS) []string {
	t.Helper()
	var seqs []string
	for _, call := range f.calls {
		for _, e := range call {
			var m dlq.Message
			if err := json.Unmarshal([]byte(aws.ToString(e.MessageBody)), &m); err != nil {
				t.Fatalf("body is not a dead-letter message: %v", err)
			}
			seqs = append(seqs, m.SequenceNumber)
		}
	}
	return seqs
}

func TestSQSSend(t *testing.T) {
	ctx := context.Background()

	t.Run("sends batches of at most ten in order", func(t *testing.T) {
		f := &fakeSQS{}
		if err := dlq.NewSQS(f, queueURL).Send(ctx, messages(25, 10)); err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for _, c := range f.calls {
			sizes = append(sizes, len(c))
		}
		if !reflect.DeepEqual(sizes, []int{10, 10, 5}) {
			t.Errorf("batch sizes %v, want [10 10 5]", sizes)
		}
		seqs := sentSequenceNumbers(t, f)
		if len(seqs) != 25 || seqs[0] != "1000" || seqs[24] != "1024" {
			t.Errorf("sent %v", seqs)
		}
	})

	t.Run("keeps each batch under the byte limit", func(t *testing.T) {
		f := &fakeSQS{}
		if err := dlq.NewSQS(f, queueURL, dlq.WithMaxBytes(1000)).Send(ctx, messages(6, 300)); err != nil {
			t.Fatal(err)
		}
		for _, c := range f.calls {
			total := 0
			for _, e := range c {
				total += len(*e.MessageBody)
			}
			if total > 1000 {
				t.Errorf("batch of %d bodies holds %d bytes", len(c), total)
			}
		}
		if got := len(sentSequenceNumbers(t, f)); got != 6 {
			t.Errorf("sent %d messages, want 6", got)
		}
	})

	t.Run("sends a record too large for the queue without its data", func(t *testing.T) {
		f := &fakeSQS{}
		if err := dlq.NewSQS(f, queueURL, dlq.WithMaxBytes(1000)).Send(ctx, messages(1, 5000)); err != nil {
			t.Fatal(err)
		}
		var m dlq.Message
		if err := json.Unmarshal([]byte(*f.calls[0][0].MessageBody), &m); err != nil {
			t.Fatal(err)
		}
		if !m.DataTruncated || m.DataBytes != 5000 || m.Data != nil || m.SequenceNumber != "1000" {
			t.Errorf("got %+v, want the pointer to the record, its size and no data", m)
		}
	})

	t.Run("retries a throttled call", func(t *testing.T) {
		f := &fakeSQS{respond: func(call int, entries []types.SendMessageBatchRequestEntry) (*sqs.SendMessageBatchOutput, error) {
			if call == 1 {
				return nil, &types.RequestThrottled{Message: aws.String("slow down")}
			}
			return ok(entries), nil
		}}
		if err := dlq.NewSQS(f, queueURL, fastRetry).Send(ctx, messages(3, 10)); err != nil {
			t.Fatal(err)
		}
		if len(f.calls) != 2 {
			t.Errorf("%d calls, want 2", len(f.calls))
		}
	})

	t.Run("resends only the entries that failed on the service side", func(t *testing.T) {
		f := &fakeSQS{respond: func(call int, entries []types.SendMessageBatchRequestEntry) (*sqs.SendMessageBatchOutput, error) {
			if call == 1 {
				out := ok(entries[1:])
				out.Failed = []types.BatchResultErrorEntry{{Id: entries[0].Id, Code: aws.String("InternalError"), SenderFault: false}}
				return out, nil
			}
			return ok(entries), nil
		}}
		if err := dlq.NewSQS(f, queueURL, fastRetry).Send(ctx, messages(3, 10)); err != nil {
			t.Fatal(err)
		}
		if len(f.calls) != 2 || len(f.calls[1]) != 1 || *f.calls[1][0].Id != *f.calls[0][0].Id {
			t.Errorf("second call resent %v, want only the failed entry", f.calls[1:])
		}
	})

	t.Run("reports entries rejected as the sender's fault by index", func(t *testing.T) {
		f := &fakeSQS{respond: func(call int, entries []types.SendMessageBatchRequestEntry) (*sqs.SendMessageBatchOutput, error) {
			out := ok(append(entries[:1:1], entries[2:]...))
			out.Failed = []types.BatchResultErrorEntry{{Id: entries[1].Id, Code: aws.String("InvalidMessageContents"), SenderFault: true}}
			return out, nil
		}}
		err := dlq.NewSQS(f, queueURL, fastRetry).Send(ctx, messages(3, 10))
		var se *dlq.SendError
		if !errors.As(err, &se) || !reflect.DeepEqual(se.Failed, []int{1}) {
			t.Fatalf("Send = %v, want a SendError for message 1", err)
		}
		if len(f.calls) != 1 {
			t.Errorf("%d calls, want 1: a sender fault is not retried", len(f.calls))
		}
	})

	t.Run("reports every message of a batch that keeps failing", func(t *testing.T) {
		f := &fakeSQS{respond: func(call int, entries []types.SendMessageBatchRequestEntry) (*sqs.SendMessageBatchOutput, error) {
			if len(entries) == 2 { // the second batch
				return nil, &types.RequestThrottled{}
			}
			return ok(entries), nil
		}}
		err := dlq.NewSQS(f, queueURL, fastRetry).Send(ctx, messages(12, 10))
		var se *dlq.SendError
		if !errors.As(err, &se) || !reflect.DeepEqual(se.Failed, []int{10, 11}) {
			t.Fatalf("Send = %v, want a SendError for messages 10 and 11", err)
		}
		if len(f.calls) != 1+3 {
			t.Errorf("%d calls, want 1 + 3 attempts", len(f.calls))
		}
	})
}

func TestLogSend(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	msgs := []dlq.Message{
		{Reason: "invalid JSON", Source: "sink", SequenceNumber: "1", Data: []byte(`{"orderId":`)},
		{Reason: "huge", Source: "sink", SequenceNumber: "2", Data: []byte(strings.Repeat("é", 10000))},
	}
	if err := (dlq.Log{Logger: logger}).Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per message", len(lines))
	}
	var first, second map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[1]), &second)
	if first["level"] != "ERROR" || first["reason"] != "invalid JSON" || first["data"] != `{"orderId":` || first["sequenceNumber"] != "1" {
		t.Errorf("first line %s lacks level, reason, record or sequence number", lines[0])
	}
	data, _ := second["data"].(string)
	if second["dataTruncated"] != true || second["dataEncoding"] != dlq.EncodingText || len(data) > 8<<10 || !strings.HasSuffix(data, "é") {
		t.Errorf("a large record is not cut to a whole-character prefix: truncated=%v encoding=%v len=%d", second["dataTruncated"], second["dataEncoding"], len(data))
	}
}
