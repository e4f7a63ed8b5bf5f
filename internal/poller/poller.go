// Package poller drives a Kinesis handler the way a Lambda event source
// mapping does, so that local mode and the end-to-end tests run the
// handlers under the semantics they get in AWS (docs/aws-facts.md §5):
//
//   - one reader per shard, starting at TRIM_HORIZON (or where a previous
//     poller of the same mapping checkpointed);
//   - batches of up to BatchSize records (and 6 MB), gathered for up to
//     BatchWindow;
//   - ParallelizationFactor concurrent batches per shard, records of one
//     partition key always in the same lane, so per-key order holds;
//   - ReportBatchItemFailures: the batch is retried from the lowest
//     reported sequence number; a handler error retries the whole batch,
//     split in halves when BisectOnError is set;
//   - bounded retries and record age, after which the batch's description
//     is kept as an on-failure record (as Lambda sends to an SQS or SNS
//     destination) and the shard moves on.
//
// Events are built exactly as Lambda builds them (events.KinesisEvent), and
// the handler's context carries a lambdacontext.LambdaContext.
//
// Shards are listed when the poller starts, and a child shard is read only
// once its parents are finished; a stream resharded while the poller runs
// is followed only by the next poller.
package poller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Handler is a Kinesis Lambda handler.
type Handler func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error)

// Kinesis is the part of the Kinesis API the poller uses.
type Kinesis interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Config is an event source mapping.
type Config struct {
	// Function names the handler in ARNs, logs and on-failure records.
	Function string
	// Stream is the Kinesis stream to read.
	Stream  string
	Kinesis Kinesis
	// Region and Account build the ARNs in events; defaults us-east-1 and
	// 000000000000.
	Region, Account string

	// BatchSize is the most records per invocation; default 500, the
	// pipeline's setting (docs/design.md §5.3).
	BatchSize int
	// BatchWindow is how long to gather records before invoking with a
	// batch smaller than BatchSize; 0 invokes with what one poll returned.
	BatchWindow time.Duration
	// ParallelizationFactor is the number of concurrent batches per shard
	// (1-10); default 1.
	ParallelizationFactor int
	// MaxRetryAttempts bounds retries of a failing batch; -1 retries until
	// the records expire. Default 10.
	MaxRetryAttempts int
	// MaxRecordAge sends a failing batch to the on-failure records once
	// its first record is older than this; 0 means no limit.
	MaxRecordAge time.Duration
	// BisectOnError splits a batch whose invocation failed and retries the
	// halves separately.
	BisectOnError bool
	// FunctionTimeout bounds one invocation; default 60s.
	FunctionTimeout time.Duration
	// PollInterval is the least time between two GetRecords calls on one
	// shard. Kinesis allows five per second per shard, shared by all its
	// consumers, so the default is 200ms; Lambda polls an idle shard about
	// once a second. Polling a busy shard faster would only fetch smaller
	// batches, with more invocations for the same records.
	PollInterval time.Duration
	// Timing, when set, delivers records when Lambda would in AWS
	// (polling cadence, shared reads, propagation delay, or enhanced
	// fan-out push); nil delivers them as soon as the emulator has them,
	// every PollInterval.
	Timing *Timing
	// RetryDelay is the first pause before retrying a failed batch; it
	// doubles up to 2s. Default 100ms.
	RetryDelay time.Duration

	// Checkpoints keeps each shard's position across pollers of the same
	// mapping, so that a new poller resumes where a stopped one left off
	// (and redelivers what the old one had not finished). Nil starts every
	// shard at TRIM_HORIZON.
	Checkpoints *Checkpoints
	// OnFailure is called for every on-failure record, besides keeping it.
	OnFailure func(FailureRecord)
	// Logger receives problems and retries; nil discards them.
	Logger *slog.Logger
}

// Defaults of a zero Config.
const (
	DefaultBatchSize        = 500
	DefaultMaxRetryAttempts = 10
	DefaultFunctionTimeout  = 60 * time.Second
	DefaultPollInterval     = 200 * time.Millisecond
	DefaultRetryDelay       = 100 * time.Millisecond
	maxRetryDelay           = 2 * time.Second
	maxPayloadBytes         = 6 << 20 // Lambda's synchronous invocation payload limit
	maxGetRecords           = 10000
)

// FailureRecord is what Lambda sends to an on-failure destination when it
// gives up on a batch: the invocation's outcome and where the batch is in
// the stream (the records themselves stay in the stream).
type FailureRecord struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	Version          string           `json:"version"`
	Timestamp        string           `json:"timestamp"`
	KinesisBatchInfo KinesisBatchInfo `json:"KinesisBatchInfo"`
	// Err is the last invocation's error or partial-failure summary; it is
	// not part of Lambda's record.
	Err string `json:"-"`
	// Records are the batch's records: what an S3 destination receives as
	// the record's "payload" (docs/aws-facts.md §5), and not the other
	// destinations.
	Records []events.KinesisEventRecord `json:"-"`
}

// KinesisBatchInfo locates a failed batch in its stream.
type KinesisBatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamArn                       string `json:"streamArn"`
}

// Conditions of on-failure records, as Lambda names them.
const (
	ConditionRetriesExhausted = "RetryAttemptsExhausted"
	ConditionRecordAge        = "RecordAgeExceeded"
)

// Stats counts what a poller did.
type Stats struct {
	Invocations, Records, Retries, FunctionErrors, PartialFailures, FailedBatches int64
	// HandlerTime is the time spent in the handler, summed over invocations.
	HandlerTime time.Duration
}

// Poller is one event source mapping at work.
type Poller struct {
	cfg         Config
	handler     Handler
	log         *slog.Logger
	streamARN   string
	functionARN string
	roleARN     string

	mu       sync.Mutex
	shards   []*shard
	running  bool
	failures []FailureRecord

	invocations, records, retries, functionErrors, partialFailures, failedBatches atomic.Int64
	handlerNanos                                                                  atomic.Int64
}

// New checks cfg, fills in its defaults and returns a poller for handler.
func New(cfg Config, handler Handler) (*Poller, error) {
	if cfg.Kinesis == nil || cfg.Stream == "" || handler == nil {
		return nil, errors.New("poller: a Kinesis client, a stream and a handler are required")
	}
	if cfg.Function == "" {
		cfg.Function = cfg.Stream + "-consumer"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > maxGetRecords {
		return nil, fmt.Errorf("poller: batch size %d is outside 1-%d", cfg.BatchSize, maxGetRecords)
	}
	if cfg.ParallelizationFactor == 0 {
		cfg.ParallelizationFactor = 1
	}
	if cfg.ParallelizationFactor < 1 || cfg.ParallelizationFactor > 10 {
		return nil, fmt.Errorf("poller: parallelization factor %d is outside 1-10", cfg.ParallelizationFactor)
	}
	if cfg.MaxRetryAttempts == 0 {
		cfg.MaxRetryAttempts = DefaultMaxRetryAttempts
	}
	if cfg.MaxRetryAttempts < -1 {
		return nil, fmt.Errorf("poller: max retry attempts %d is below -1", cfg.MaxRetryAttempts)
	}
	if cfg.FunctionTimeout <= 0 {
		cfg.FunctionTimeout = DefaultFunctionTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Poller{
		cfg:         cfg,
		handler:     handler,
		log:         log.With("function", cfg.Function, "stream", cfg.Stream),
		streamARN:   fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", cfg.Region, cfg.Account, cfg.Stream),
		functionARN: fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", cfg.Region, cfg.Account, cfg.Function),
		roleARN:     fmt.Sprintf("arn:aws:iam::%s:role/%s-role", cfg.Account, cfg.Function),
	}, nil
}

// Run polls every shard of the stream and invokes the handler until ctx
// ends. In-flight invocations see ctx cancelled; what they had not
// finished is not checkpointed and is redelivered to the next poller that
// shares the Checkpoints.
func (p *Poller) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("poller: already running")
	}
	p.running = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}()

	shards, err := p.listShards(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.shards = shards
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (p *Poller) listShards(ctx context.Context) ([]*shard, error) {
	var shards []*shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(p.cfg.Stream)}
	for {
		cctx, cancel := callContext(ctx)
		out, err := p.cfg.Kinesis.ListShards(cctx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("poller %s: list shards of %s: %w", p.cfg.Function, p.cfg.Stream, err)
		}
		for _, s := range out.Shards {
			sh := newShard(p, aws.ToString(s.ShardId))
			sh.parentIDs = []string{aws.ToString(s.ParentShardId), aws.ToString(s.AdjacentParentShardId)}
			shards = append(shards, sh)
		}
		if out.NextToken == nil {
			// A child shard starts once its parents are finished, so that
			// a key's records stay in order across a reshard.
			byID := map[string]*shard{}
			for _, sh := range shards {
				byID[sh.id] = sh
			}
			for _, sh := range shards {
				for _, id := range sh.parentIDs {
					if parent, ok := byID[id]; ok {
						sh.parents = append(sh.parents, parent)
					}
				}
			}
			return shards, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// Failures returns the on-failure records so far.
func (p *Poller) Failures() []FailureRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]FailureRecord(nil), p.failures...)
}

// Stats returns the poller's counters.
func (p *Poller) Stats() Stats {
	return Stats{
		Invocations:     p.invocations.Load(),
		Records:         p.records.Load(),
		Retries:         p.retries.Load(),
		FunctionErrors:  p.functionErrors.Load(),
		PartialFailures: p.partialFailures.Load(),
		FailedBatches:   p.failedBatches.Load(),
		HandlerTime:     time.Duration(p.handlerNanos.Load()),
	}
}

// StreamARN is the ARN events carry as eventSourceARN.
func (p *Poller) StreamARN() string { return p.streamARN }

// Idle reports whether every shard has been polled empty by a call that
// started at or after since, with nothing fetched still being processed or
// retried. Together with "every record was put before since", it means
// the handler has finished with all of them.
func (p *Poller) Idle(since time.Time) bool {
	p.mu.Lock()
	shards, running := p.shards, p.running
	p.mu.Unlock()
	if !running || len(shards) == 0 {
		return false
	}
	for _, s := range shards {
		if !s.idleSince(since) {
			return false
		}
	}
	return true
}

// WaitIdle blocks until Idle(t) for t the time of the call: everything in
// the stream before the call has been handled (or given up on).
func (p *Poller) WaitIdle(ctx context.Context) error {
	since := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !p.Idle(since) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("poller %s: waiting for idle: %w", p.cfg.Function, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

func (p *Poller) addFailure(f FailureRecord) {
	p.failedBatches.Add(1)
	p.mu.Lock()
	p.failures = append(p.failures, f)
	p.mu.Unlock()
	p.log.Error("giving up on batch; kept as on-failure record",
		"condition", f.RequestContext.Condition, "shard", f.KinesisBatchInfo.ShardID,
		"start", f.KinesisBatchInfo.StartSequenceNumber, "end", f.KinesisBatchInfo.EndSequenceNumber,
		"records", f.KinesisBatchInfo.BatchSize, "attempts", f.RequestContext.ApproximateInvokeCount, "error", f.Err)
	if p.cfg.OnFailure != nil {
		p.cfg.OnFailure(f)
	}
}

// lane picks the concurrent batch a partition key belongs to.
func (p *Poller) lane(key string) int {
	if p.cfg.ParallelizationFactor == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(p.cfg.ParallelizationFactor))
}

func (p *Poller) event(shardID string, r types.Record) events.KinesisEventRecord {
	seq := aws.ToString(r.SequenceNumber)
	var arrival time.Time
	if r.ApproximateArrivalTimestamp != nil {
		arrival = *r.ApproximateArrivalTimestamp
	}
	return events.KinesisEventRecord{
		AwsRegion:         p.cfg.Region,
		EventID:           shardID + ":" + seq,
		EventName:         "aws:kinesis:record",
		EventSource:       "aws:kinesis",
		EventSourceArn:    p.streamARN,
		EventVersion:      "1.0",
		InvokeIdentityArn: p.roleARN,
		Kinesis: events.KinesisRecord{
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: arrival},
			Data:                        r.Data,
			EncryptionType:              string(r.EncryptionType),
			PartitionKey:                aws.ToString(r.PartitionKey),
			SequenceNumber:              seq,
			KinesisSchemaVersion:        "1.0",
		},
	}
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
