package ops

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

const (
	streamARN = "arn:aws:kinesis:eu-west-1:111122223333:stream/unified-order-stream"
	queueURL  = "https://sqs.eu-west-1.amazonaws.com/111122223333/EnrichDlq"
)

// fakeKinesis records what PutRecords accepted; err, when set, fails
// every call.
type fakeKinesis struct {
	put []string // "key data"
	err error
}

func (f *fakeKinesis) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := &kinesis.PutRecordsOutput{}
	for _, r := range in.Records {
		f.put = append(f.put, aws.ToString(r.PartitionKey)+" "+string(r.Data))
		out.Records = append(out.Records, ktypes.PutRecordsResultEntry{SequenceNumber: aws.String("1")})
	}
	return out, nil
}

// fakeQueue hands out each message once, as a queue does while the
// visibility timeout hides received messages, and records deletes.
type fakeQueue struct {
	bodies   []string
	next     int
	deleted  []string
	received int
}

func (q *fakeQueue) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out := &sqs.ReceiveMessageOutput{}
	for q.next < len(q.bodies) && len(out.Messages) < int(in.MaxNumberOfMessages) {
		id := fmt.Sprint("m", q.next)
		out.Messages = append(out.Messages, sqstypes.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("rh-" + id), Body: aws.String(q.bodies[q.next])})
		q.next++
	}
	q.received += len(out.Messages)
	return out, nil
}

func (q *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		q.deleted = append(q.deleted, strings.TrimPrefix(aws.ToString(e.ReceiptHandle), "rh-"))
		out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func deadLetter(t *testing.T, m dlq.Message) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReplayDeadLetters(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	queue := func() *fakeQueue {
		return &fakeQueue{bodies: []string{
			deadLetter(t, dlq.Message{Reason: "bad", EventSourceARN: streamARN, PartitionKey: "1001", ArrivalTime: at, Data: []byte(`{"data":{"orderId":1001}}`)}),
			deadLetter(t, dlq.Message{Reason: "bad", EventSourceARN: "arn:aws:kinesis:eu-west-1:111122223333:stream/enriched", PartitionKey: "7", Data: []byte(`{}`)}),
			deadLetter(t, dlq.Message{Reason: "big", EventSourceARN: streamARN, PartitionKey: "1002", DataTruncated: true, DataBytes: 300000}),
			deadLetter(t, dlq.Message{Reason: "bad", EventSourceARN: streamARN, PartitionKey: "1003", ArrivalTime: at.Add(time.Hour), Data: []byte{0xff, 0x00}}),
			"not json",
			`{"requestContext":{"condition":"RetryAttemptsExhausted"},"version":"1.0","KinesisBatchInfo":{"shardId":"shardId-000000000001","startSequenceNumber":"4960","endSequenceNumber":"4961","batchSize":2,"streamArn":"` + streamARN + `"}}`,
		}}
	}
	t.Run("records go back with their partition keys; only their messages are deleted, after Kinesis accepted them", func(t *testing.T) {
		kin, q := &fakeKinesis{}, queue()
		var warnings []string
		r := Replay{Kinesis: kin, Stream: "unified-order-stream", Warn: func(m string) { warnings = append(warnings, m) }}
		stats, err := r.DeadLetters(context.Background(), q, queueURL)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{`1001 {"data":{"orderId":1001}}`, "1003 \xff\x00"}; !slices.Equal(kin.put, want) {
			t.Errorf("put %q, want %q", kin.put, want)
		}
		if want := []string{"m0", "m3"}; !slices.Equal(q.deleted, want) {
			t.Errorf("deleted %v, want %v", q.deleted, want)
		}
		if stats.Messages != 6 || stats.Records != 4 || stats.Sent != 2 || stats.Skipped != 4 || stats.Deleted != 2 || len(warnings) != 4 ||
			!strings.Contains(warnings[3], "describes a batch Lambda gave up on (shardId-000000000001, from sequence number 4960) without its records") {
			t.Errorf("stats %+v, warnings %q", stats, warnings)
		}
	})
	t.Run("nothing is deleted when Kinesis does not accept the records", func(t *testing.T) {
		kin, q := &fakeKinesis{err: errors.New("AccessDeniedException: not allowed")}, queue()
		r := Replay{Kinesis: kin, Stream: streamARN}
		if _, err := r.DeadLetters(context.Background(), q, queueURL); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Errorf("error %v", err)
		}
		if len(q.deleted) != 0 {
			t.Errorf("deleted %v", q.deleted)
		}
	})
	t.Run("a dry run counts and neither puts nor deletes", func(t *testing.T) {
		kin, q := &fakeKinesis{}, queue()
		r := Replay{Kinesis: kin, Stream: streamARN, DryRun: true}
		stats, err := r.DeadLetters(context.Background(), q, queueURL)
		if err != nil || stats.Sent != 2 || len(kin.put) != 0 || len(q.deleted) != 0 {
			t.Errorf("err %v, stats %+v, put %q, deleted %v", err, stats, kin.put, q.deleted)
		}
	})
	t.Run("--since keeps later arrivals; the others stay in the queue", func(t *testing.T) {
		kin, q := &fakeKinesis{}, queue()
		r := Replay{Kinesis: kin, Stream: streamARN, Since: at.Add(time.Minute)}
		if _, err := r.DeadLetters(context.Background(), q, queueURL); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(q.deleted, []string{"m3"}) || len(kin.put) != 1 {
			t.Errorf("put %q, deleted %v", kin.put, q.deleted)
		}
	})
}

// failureRecordJSON is an on-failure record as Lambda writes it to S3 for
// a Kinesis source (docs/aws-facts.md §5), with the event in "payload" as
// a JSON object or, asString, as a string.
func failureRecordJSON(t *testing.T, asString bool, records ...[3]string) []byte {
	t.Helper()
	var recs []string
	for _, r := range records { // key, data, arrival seconds
		recs = append(recs, fmt.Sprintf(`{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":%q,"sequenceNumber":"4960","data":%q,"approximateArrivalTimestamp":%s},`+
			`"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000001:4960","eventName":"aws:kinesis:record",`+
			`"eventSourceARN":%q,"awsRegion":"eu-west-1"}`, r[0], base64.StdEncoding.EncodeToString([]byte(r[1])), r[2], streamARN))
	}
	event := `{"Records":[` + strings.Join(recs, ",") + `]}`
	payload := event
	if asString {
		b, _ := json.Marshal(event)
		payload = string(b)
	}
	return []byte(`{"requestContext":{"requestId":"c9b8fa9f","functionArn":"arn:aws:lambda:eu-west-1:111122223333:function:enrich","condition":"RetryAttemptsExhausted","approximateInvokeCount":11},` +
		`"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"version":"1.0","timestamp":"2026-11-29T10:00:06.021Z",` +
		`"KinesisBatchInfo":{"shardId":"shardId-000000000001","startSequenceNumber":"4960","endSequenceNumber":"4960","approximateArrivalOfFirstRecord":"2026-11-29T10:00:04.835Z",` +
		`"approximateArrivalOfLastRecord":"2026-11-29T10:00:05.580Z","batchSize":2,"streamArn":"` + streamARN + `"},"payload":` + payload + `}`)
}

func writeFile(t *testing.T, path string, body []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReplayFailures(t *testing.T) {
	dir := t.TempDir()
	// 2026-11-29T10:00:04Z and an hour later.
	writeFile(t, filepath.Join(dir, "aws/lambda/esm-1/shardId-000000000001/2026/11/29/2026-11-29T10.00.06-a"),
		failureRecordJSON(t, false, [3]string{"1001", `{"data":{"orderId":1001}}`, "1795946404.835"}, [3]string{"1002", `{"data":{"orderId":1002}}`, "1795950004.5"}))
	writeFile(t, filepath.Join(dir, "aws/lambda/esm-1/shardId-000000000001/2026/11/29/2026-11-29T10.00.07-b"),
		failureRecordJSON(t, true, [3]string{"1003", `{"data":{"orderId":1003}}`, "1795946405"}))
	writeFile(t, filepath.Join(dir, "aws/lambda/esm-1/shardId-000000000001/2026/11/29/2026-11-29T10.00.08-c"),
		[]byte(`{"requestContext":{},"KinesisBatchInfo":{"streamArn":"`+streamARN+`"}}`))

	t.Run("every record of every failed batch goes back with its partition key", func(t *testing.T) {
		kin := &fakeKinesis{}
		var warnings []string
		r := Replay{Kinesis: kin, Stream: "unified-order-stream", Warn: func(m string) { warnings = append(warnings, m) }}
		stats, err := r.Failures(context.Background(), nil, "file://"+dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`1001 {"data":{"orderId":1001}}`, `1002 {"data":{"orderId":1002}}`, `1003 {"data":{"orderId":1003}}`}
		if !slices.Equal(kin.put, want) {
			t.Errorf("put %q, want %q", kin.put, want)
		}
		if stats.Objects != 3 || stats.Sent != 3 || stats.Skipped != 1 || len(warnings) != 1 || !strings.Contains(warnings[0], "no payload") {
			t.Errorf("stats %+v, warnings %q", stats, warnings)
		}
	})
	t.Run("--since and --until select records by arrival", func(t *testing.T) {
		kin := &fakeKinesis{}
		r := Replay{Kinesis: kin, Stream: streamARN,
			Since: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 29, 10, 30, 0, 0, time.UTC)}
		if _, err := r.Failures(context.Background(), nil, "file://"+dir); err != nil {
			t.Fatal(err)
		}
		if len(kin.put) != 2 || strings.HasPrefix(kin.put[1], "1002") {
			t.Errorf("put %q", kin.put)
		}
	})
	t.Run("a batch of another stream is skipped", func(t *testing.T) {
		kin := &fakeKinesis{}
		r := Replay{Kinesis: kin, Stream: "other-stream"}
		if stats, err := r.Failures(context.Background(), nil, "file://"+dir); err != nil || len(kin.put) != 0 || stats.Skipped != 3 {
			t.Errorf("err %v, put %q, stats %+v", err, kin.put, stats)
		}
	})
	t.Run("a URI that is neither s3:// nor file:// is refused", func(t *testing.T) {
		r := Replay{Kinesis: &fakeKinesis{}, Stream: streamARN}
		if _, err := r.Failures(context.Background(), nil, "http://bucket/x"); err == nil || !strings.Contains(err.Error(), "want s3://bucket/prefix or file:///dir") {
			t.Errorf("error %v", err)
		}
	})
}

func TestReplayArchive(t *testing.T) {
	dir := t.TempDir()
	order := `{"data":{"orderId":1001,"orderStatus":"PLACED"},"metadata":{"timestamp":"2026-11-29T10:05:00.000000Z","record-type":"data","operation":"insert","schema-name":"orders","table-name":"order"}}`
	item := `{"data":{"orderId":"1001","itemId":1},"metadata":{"timestamp":"2026-11-29T10:05:00.000000Z","record-type":"data","operation":"insert","schema-name":"orders","table-name":"order_item"}}`
	control := `{"control":{},"metadata":{"record-type":"control","operation":"create-table","schema-name":"orders","table-name":"order"}}`
	writeFile(t, filepath.Join(dir, "2026/11/29/10/RawArchive-1-2026-11-29-10-05-00-abc.gz"), testenv.Gzip(t, order, item, control))
	writeFile(t, filepath.Join(dir, "2026/11/29/11/RawArchive-1-2026-11-29-11-05-00-def.gz"), testenv.Gzip(t, strings.Replace(order, "1001", "1002", 1)))

	t.Run("the records of the hours in range go back keyed by orderId; control records are skipped", func(t *testing.T) {
		kin := &fakeKinesis{}
		r := Replay{Kinesis: kin, Stream: streamARN, Since: time.Date(2026, 11, 29, 10, 30, 0, 0, time.UTC), Until: time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC)}
		stats, err := r.Archive(context.Background(), nil, "file://"+dir)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"1001 " + order, "1001 " + item}; !slices.Equal(kin.put, want) {
			t.Errorf("put %q, want %q", kin.put, want)
		}
		if stats.Objects != 1 || stats.Records != 3 || stats.Skipped != 1 {
			t.Errorf("stats %+v", stats)
		}
	})
	t.Run("an archive replay needs a start", func(t *testing.T) {
		r := Replay{Kinesis: &fakeKinesis{}, Stream: streamARN}
		if _, err := r.Archive(context.Background(), nil, "file://"+dir); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("error %v", err)
		}
	})
}

// fakeBucket is an S3 bucket in memory whose listing pages hold two keys,
// so the replay has to follow continuation tokens. It records the
// StartAfter of every listing call.
type fakeBucket struct {
	bucket      string
	objects     map[string][]byte
	gets        []string
	startAfters []string
}

func (b *fakeBucket) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	if aws.ToString(in.Bucket) != b.bucket {
		return nil, errors.New("NoSuchBucket")
	}
	b.startAfters = append(b.startAfters, aws.ToString(in.StartAfter))
	after := aws.ToString(in.StartAfter)
	if in.ContinuationToken != nil {
		after = *in.ContinuationToken
	}
	var keys []string
	for k := range b.objects {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := &s3.ListObjectsV2Output{}
	for _, k := range keys[:min(2, len(keys))] {
		out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k)})
	}
	if len(keys) > 2 {
		out.IsTruncated, out.NextContinuationToken = aws.Bool(true), aws.String(keys[1])
	}
	return out, nil
}

func (b *fakeBucket) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	body, ok := b.objects[aws.ToString(in.Key)]
	if aws.ToString(in.Bucket) != b.bucket || !ok {
		return nil, &s3types.NoSuchKey{}
	}
	b.gets = append(b.gets, aws.ToString(in.Key))
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(body))}, nil
}

func TestReplayFromS3(t *testing.T) {
	line := func(id int) string {
		return fmt.Sprintf(`{"data":{"orderId":%d},"metadata":{"record-type":"data"}}`, id)
	}
	b := &fakeBucket{bucket: "archive", objects: map[string][]byte{
		"raw/2026/11/29/09/a.gz": testenv.Gzip(t, line(1)),
		"raw/2026/11/29/10/b.gz": testenv.Gzip(t, line(2)),
		"raw/2026/11/29/10/c.gz": testenv.Gzip(t, line(3)),
		"raw/2026/11/29/11/d.gz": testenv.Gzip(t, line(4)),
		"raw/2026/11/29/12/e.gz": testenv.Gzip(t, line(5)),
		"raw/2026/11/29/13/f.gz": testenv.Gzip(t, line(6)),
		"raw/2026/11/29/14/g.gz": testenv.Gzip(t, line(7)),
		"raw/2026/11/29/15/h.gz": testenv.Gzip(t, line(8)),
		"errors/x":               []byte("not an archive object"),
	}}
	kin := &fakeKinesis{}
	r := Replay{Kinesis: kin, Stream: streamARN, Since: time.Date(2026, 11, 29, 10, 15, 0, 0, time.UTC), Until: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	stats, err := r.Archive(context.Background(), b, "s3://archive/raw/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"2 " + line(2), "3 " + line(3), "4 " + line(4)}; !slices.Equal(kin.put, want) {
		t.Errorf("put %q, want %q", kin.put, want)
	}
	if want := []string{"raw/2026/11/29/10/b.gz", "raw/2026/11/29/10/c.gz", "raw/2026/11/29/11/d.gz"}; !slices.Equal(b.gets, want) || stats.Objects != 3 {
		t.Errorf("read %q (stats %+v), want only the hours in range: %q", b.gets, stats, want)
	}
	// The listing starts at 10:00's folder and stops at the first key of
	// 12:00 (the second page of two keys), not at the bucket's end.
	if want := []string{"raw/2026/11/29/10", "raw/2026/11/29/10"}; !slices.Equal(b.startAfters, want) {
		t.Errorf("listed with StartAfter %q, want %q: one call a page, two pages", b.startAfters, want)
	}

	t.Run("a URI without hour folders under it is reported, not replayed as nothing", func(t *testing.T) {
		var warnings []string
		kin := &fakeKinesis{}
		r := Replay{Kinesis: kin, Stream: streamARN, Since: r.Since, Until: r.Until, Warn: func(m string) { warnings = append(warnings, m) }}
		stats, err := r.Archive(context.Background(), b, "s3://archive/")
		if err != nil {
			t.Fatal(err)
		}
		if len(kin.put) != 0 || stats.Objects != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], "yyyy/MM/dd/HH/") || !strings.Contains(warnings[0], "s3://archive/") {
			t.Errorf("put %q, stats %+v, warnings %q; want one warning naming the URI and the folders", kin.put, stats, warnings)
		}
	})
	if _, err := r.Archive(context.Background(), b, "s3:///raw/"); err == nil || !strings.Contains(err.Error(), "names no bucket") {
		t.Errorf("error %v", err)
	}
}
