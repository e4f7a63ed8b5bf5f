package ops

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/unified-streaming-etl/etl/internal/dlq"
)

// Replay puts records back on the unified stream with their original
// partition keys, so the normal path applies them again; the processors'
// version checks (docs/design.md §3.6) make a record applied twice
// harmless. Its sources are the handlers' dead letters (an SQS queue of
// dlq.Message bodies), Lambda's on-failure records in S3 (which carry the
// failed batch's records, docs/aws-facts.md §5) and the raw archive
// (docs/design.md §1), the last two as s3://bucket/prefix or file:///dir.
type Replay struct {
	Kinesis Kinesis
	// Stream is the unified stream's name or ARN: the records go there,
	// and records that came from another stream are skipped.
	Stream string
	// Since and Until, when not zero, keep only records that reached the
	// stream at or after Since and before Until.
	Since, Until time.Time
	// DryRun reads and counts without putting or deleting anything.
	DryRun bool
	// Progress, when not nil, gets the running counts now and then.
	Progress func(ReplayStats)
	// Warn, when not nil, is told about everything skipped.
	Warn func(msg string)

	stats  ReplayStats
	sender *sender
}

// ReplayStats counts what a replay read and sent.
type ReplayStats struct {
	// Objects (S3 objects or files) and Messages (dead letters) read.
	Objects, Messages int
	// Records found, Sent to the stream (counted, not sent, in a dry
	// run), and Skipped (outside the time range, from another stream, or
	// without their data).
	Records, Sent, Skipped int
	// Deleted dead letters, once Kinesis had accepted their records.
	Deleted int
}

func (r *Replay) init() {
	if r.sender == nil {
		r.sender = &sender{kin: r.Kinesis, stream: r.Stream}
	}
}

// skip counts a record or message skipped and says why.
func (r *Replay) skip(format string, args ...any) {
	r.stats.Skipped++
	r.warn(format, args...)
}

func (r *Replay) warn(format string, args ...any) {
	if r.Warn != nil {
		r.Warn(fmt.Sprintf(format, args...))
	}
}

func (r *Replay) progress() {
	if r.Progress != nil {
		r.Progress(r.stats)
	}
}

// inRange reports whether a record that reached the stream at t is
// selected; a record whose arrival is unknown is.
func (r *Replay) inRange(t time.Time) bool {
	return t.IsZero() || (r.Since.IsZero() || !t.Before(r.Since)) && (r.Until.IsZero() || t.Before(r.Until))
}

// fromStream reports whether a record from the stream with ARN arn
// belongs on r.Stream; an unknown ARN does.
func (r *Replay) fromStream(arn string) bool {
	if arn == "" {
		return true
	}
	if strings.HasPrefix(r.Stream, "arn:") {
		return arn == r.Stream
	}
	return strings.HasSuffix(arn, ":stream/"+r.Stream)
}

func (r *Replay) put(ctx context.Context, key string, data []byte) error {
	r.stats.Records++
	r.stats.Sent++
	if r.DryRun {
		return nil
	}
	return r.sender.add(ctx, key, data)
}

// flush puts what is pending; after it returns nil, Kinesis has accepted
// every record put so far.
func (r *Replay) flush(ctx context.Context) error {
	if r.DryRun {
		return nil
	}
	return r.sender.flush(ctx)
}

// SQS is the part of the SQS client replay uses.
type SQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// replayVisibility hides a received dead letter from other readers while
// its records are put; one that is not deleted (skipped, or a dry run)
// reappears after it.
const replayVisibility = 120

// DeadLetters replays the dead letters of the queue at queueURL until a
// receive returns none. A message is deleted only after Kinesis has
// accepted its record, and never in a dry run; a message that is skipped
// (outside the time range, from another stream, or whose record was too
// large to keep) stays in the queue.
func (r *Replay) DeadLetters(ctx context.Context, client SQS, queueURL string) (ReplayStats, error) {
	r.init()
	for {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: replayVisibility,
		})
		if err != nil {
			return r.stats, fmt.Errorf("receive from %s: %w", queueURL, err)
		}
		if len(out.Messages) == 0 {
			return r.stats, r.flush(ctx)
		}
		var done []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			r.stats.Messages++
			body := []byte(aws.ToString(m.Body))
			var batch failureRecord
			if json.Unmarshal(body, &batch) == nil && batch.KinesisBatchInfo.ShardID != "" {
				// The mapping's own on-failure record: with an SQS
				// destination it names the batch but holds none of its
				// records (docs/aws-facts.md §5).
				r.skip("message %s describes a batch Lambda gave up on (%s, from sequence number %s) without its records; "+
					"left in the queue: run etl repair, or replay the batch's hour from the archive", aws.ToString(m.MessageId),
					batch.KinesisBatchInfo.ShardID, batch.KinesisBatchInfo.StartSequenceNumber)
				continue
			}
			var msg dlq.Message
			if err := json.Unmarshal(body, &msg); err != nil || msg.Reason == "" || msg.PartitionKey == "" {
				r.skip("message %s is not a dead letter (%v); left in the queue", aws.ToString(m.MessageId), err)
				continue
			}
			// A dead letter holds one record, counted like the records of
			// the other sources whether sent or skipped.
			switch {
			case msg.DataTruncated:
				r.stats.Records++
				r.skip("dead letter %s: the record (%d bytes) was too large to keep; read it from the stream (%s %s) or the archive",
					aws.ToString(m.MessageId), msg.DataBytes, msg.ShardID, msg.SequenceNumber)
				continue
			case !r.fromStream(msg.EventSourceARN):
				r.stats.Records++
				r.skip("dead letter %s came from %s, not %s; left in the queue", aws.ToString(m.MessageId), msg.EventSourceARN, r.Stream)
				continue
			case !r.inRange(msg.ArrivalTime):
				r.stats.Records++
				r.stats.Skipped++
				continue
			}
			if err := r.put(ctx, msg.PartitionKey, msg.Data); err != nil {
				return r.stats, err
			}
			done = append(done, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		// Deleted only once Kinesis has accepted every record put so far.
		if err := r.flush(ctx); err != nil {
			return r.stats, err
		}
		if !r.DryRun && len(done) > 0 {
			del, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: done})
			if err != nil {
				return r.stats, fmt.Errorf("delete replayed dead letters from %s: %w", queueURL, err)
			}
			r.stats.Deleted += len(del.Successful)
			for _, f := range del.Failed {
				// Replayed already; a second replay of it is harmless.
				r.warn("dead letter replayed but not deleted (%s: %s); it will be replayed again next time", aws.ToString(f.Code), aws.ToString(f.Message))
			}
		}
		r.progress()
	}
}

// failureRecord is an on-failure destination record as Lambda writes it to
// S3 for a Kinesis source: the batch description and, in "payload", the
// invocation's event with its records (docs/aws-facts.md §5,
// https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html).
type failureRecord struct {
	KinesisBatchInfo struct {
		ShardID             string `json:"shardId"`
		StartSequenceNumber string `json:"startSequenceNumber"`
		StreamArn           string `json:"streamArn"`
	} `json:"KinesisBatchInfo"`
	Payload json.RawMessage `json:"payload"`
}

// event decodes the payload, a JSON object or, should Lambda write it so,
// a string holding one.
func (f failureRecord) event() (events.KinesisEvent, error) {
	var ev events.KinesisEvent
	p := bytes.TrimSpace(f.Payload)
	if len(p) == 0 || string(p) == "null" {
		return ev, errors.New("no payload: not an S3 on-failure record, or one for a source whose records Lambda does not keep")
	}
	if p[0] == '"' {
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return ev, err
		}
		p = []byte(s)
	}
	if err := json.Unmarshal(p, &ev); err != nil {
		return ev, fmt.Errorf("payload: %w", err)
	}
	return ev, nil
}

// Failures replays the records of the on-failure records under uri
// (s3://bucket/prefix or file:///dir), each with the partition key it had.
func (r *Replay) Failures(ctx context.Context, client S3, uri string) (ReplayStats, error) {
	r.init()
	store, err := openStore(client, uri)
	if err != nil {
		return r.stats, err
	}
	err = store.each(ctx, func(name string, body []byte) error {
		r.stats.Objects++
		var f failureRecord
		if err := json.Unmarshal(body, &f); err != nil {
			r.skip("%s is not an on-failure record: %v", name, err)
			return nil
		}
		if !r.fromStream(f.KinesisBatchInfo.StreamArn) {
			r.skip("%s is a batch of %s, not %s; skipped", name, f.KinesisBatchInfo.StreamArn, r.Stream)
			return nil
		}
		ev, err := f.event()
		if err != nil {
			r.skip("%s: %v", name, err)
			return nil
		}
		for _, rec := range ev.Records {
			if !r.inRange(rec.Kinesis.ApproximateArrivalTimestamp.Time) {
				r.stats.Records++
				r.stats.Skipped++
				continue
			}
			if err := r.put(ctx, rec.Kinesis.PartitionKey, rec.Kinesis.Data); err != nil {
				return err
			}
		}
		r.progress()
		return nil
	})
	if err != nil {
		return r.stats, err
	}
	return r.stats, r.flush(ctx)
}

// Archive replays the raw archive's records under uri (s3://bucket/raw/ or
// file:///dir holding yyyy/MM/dd/HH/ folders) from the hours that overlap
// Since to Until: the archive keeps the hour each record reached the
// stream, not the instant, so whole hours are replayed. A record goes back
// keyed by its data's orderId, the key DMS and enrich give every record of
// the unified stream (docs/design.md §3.6); records without one (DMS
// control records) are skipped.
func (r *Replay) Archive(ctx context.Context, client S3, uri string) (ReplayStats, error) {
	r.init()
	if r.Since.IsZero() {
		return r.stats, errors.New("replaying the archive needs a time range: --since (and --until, default now)")
	}
	store, err := openStore(client, uri)
	if err != nil {
		return r.stats, err
	}
	until := r.Until
	if until.IsZero() {
		until = time.Now()
	}
	// Keys are yyyy/MM/dd/HH/... under the prefix and sort by hour, so
	// the listing starts after the name of the first hour's folder (every
	// key in it sorts after that name) and stops at the first key of an
	// hour past Until.
	first := r.Since.UTC().Truncate(time.Hour)
	store.startAfter = first.Format(hourLayout)
	listed, dated := 0, 0
	store.filter = func(rel string) (keep, stop bool) {
		listed++
		parts := strings.Split(rel, "/")
		if len(parts) < 5 {
			return false, false
		}
		hour, err := time.Parse(hourLayout, strings.Join(parts[:4], "/"))
		if err != nil {
			return false, false
		}
		dated++
		if !hour.Before(until) {
			return false, true
		}
		return !hour.Before(first), false
	}
	defer func() {
		if listed > 0 && dated == 0 {
			r.warn("none of the %d objects listed under %s lies in a yyyy/MM/dd/HH/ folder: is it the archive's raw/ prefix?", listed, uri)
		}
	}()
	err = store.each(ctx, func(name string, body []byte) error {
		r.stats.Objects++
		var in io.Reader = bytes.NewReader(body)
		if len(body) > 2 && body[0] == 0x1f && body[1] == 0x8b {
			zr, err := gzip.NewReader(in)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			in = zr
		}
		sc := bufio.NewScanner(in)
		sc.Buffer(nil, 2<<20) // a Kinesis record is at most 1 MiB (10 MiB on request); DMS's are far smaller
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			key, ok := orderKey(line)
			if !ok {
				r.stats.Records++
				r.stats.Skipped++
				continue
			}
			if err := r.put(ctx, key, bytes.Clone(line)); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.progress()
		return nil
	})
	if err != nil {
		return r.stats, err
	}
	return r.stats, r.flush(ctx)
}

// orderKey is the record's data.orderId as DMS writes a partition key: a
// JSON number or string, as text.
func orderKey(record []byte) (string, bool) {
	// encoding/json matches the field name without regard to case, as
	// DMS's column names may come.
	var rec struct {
		Data struct {
			OrderID json.RawMessage `json:"orderId"`
		} `json:"data"`
	}
	if json.Unmarshal(record, &rec) != nil || rec.Data.OrderID == nil {
		return "", false
	}
	var s string
	if json.Unmarshal(rec.Data.OrderID, &s) == nil {
		s = strings.TrimSpace(s)
	} else {
		s = string(rec.Data.OrderID)
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", false
	}
	return s, true
}

// S3 is the part of the S3 client replay uses.
type S3 interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// store reads every object under an s3:// prefix or every file under a
// file:// directory, in key order.
type store struct {
	client         S3
	bucket, prefix string // s3
	dir            string // file
	// startAfter, when set, skips the keys relative to the prefix that
	// sort at or before it: S3 starts listing after it.
	startAfter string
	// filter, when not nil, is shown every key relative to the prefix
	// (slash-separated), in order, and says whether to read the object
	// and whether to stop listing.
	filter func(rel string) (keep, stop bool)
}

func openStore(client S3, uri string) (*store, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", uri, err)
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("%q names no bucket: want s3://bucket/prefix", uri)
		}
		if client == nil {
			return nil, fmt.Errorf("%q: no S3 client", uri)
		}
		return &store{client: client, bucket: u.Host, prefix: strings.TrimPrefix(u.Path, "/")}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("%q: want file:///absolute/dir", uri)
		}
		return &store{dir: filepath.FromSlash(u.Path)}, nil
	}
	return nil, fmt.Errorf("%q: want s3://bucket/prefix or file:///dir", uri)
}

func (s *store) keep(rel string) (keep, stop bool) {
	if s.startAfter != "" && rel <= s.startAfter {
		return false, false
	}
	if s.filter == nil {
		return true, false
	}
	return s.filter(rel)
}

// hourLayout is the archive's folder of an hour: Firehose's default
// yyyy/MM/dd/HH/ prefix, UTC (docs/design.md §7.9).
const hourLayout = "2006/01/02/15"

func (s *store) each(ctx context.Context, fn func(name string, body []byte) error) error {
	if s.bucket == "" {
		var names []string
		err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(s.dir, p)
				keep, stop := s.keep(filepath.ToSlash(rel))
				if stop {
					return fs.SkipAll
				}
				if keep {
					names = append(names, p)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.Sort(names)
		for _, n := range names {
			body, err := os.ReadFile(n)
			if err != nil {
				return err
			}
			if err := fn(n, body); err != nil {
				return err
			}
		}
		return nil
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)}
	if s.startAfter != "" {
		// A general purpose bucket lists keys in UTF-8 binary order,
		// starting after StartAfter, which need not be a key
		// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html).
		in.StartAfter = aws.String(path.Join(s.prefix, s.startAfter))
	}
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", s.bucket, s.prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			rel := strings.TrimPrefix(strings.TrimPrefix(key, s.prefix), "/")
			if strings.HasSuffix(key, "/") {
				continue
			}
			keep, stop := s.keep(rel)
			if stop {
				return nil
			}
			if !keep {
				continue
			}
			out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
			if err != nil {
				return fmt.Errorf("read s3://%s/%s: %w", s.bucket, key, err)
			}
			body, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				return fmt.Errorf("read s3://%s/%s: %w", s.bucket, key, err)
			}
			if err := fn("s3://"+path.Join(s.bucket, key), body); err != nil {
				return err
			}
		}
	}
	return nil
}
