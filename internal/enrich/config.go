package enrich

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/retry"
)

// Environment variables the stack sets on the function, besides
// dlq.EnvURL.
const (
	EnvStateTable    = "STATE_TABLE"
	EnvTombstoneDays = "STATE_TOMBSTONE_DAYS"
	// EnvOutputTable names the OrderEnriched table enrich writes (one
	// hop, docs/design.md §4). Required.
	EnvOutputTable = "OUTPUT_TABLE"
	// EnvOutputStream names the enriched stream; optional (set with
	// enrichedStream=true), enrich then also publishes every enriched
	// change there.
	EnvOutputStream     = "OUTPUT_STREAM"
	EnvSourceStream     = "SOURCE_STREAM"
	EnvReferenceDataURI = "REFERENCE_DATA_URI"
)

// DefaultTombstoneRetention is how long a deleted row's tombstone stays in
// join state after the delete was processed: the stacks' default
// (joinStateTombstoneDays), which outlasts every older change the pipeline
// can still deliver (stream retention, the mappings' maximum record age
// and the replay window). Live rows never expire: they are kept as long
// as the source row exists, so the join stays exact at any age.
const DefaultTombstoneRetention = 14 * 24 * time.Hour

// DefaultConcurrency bounds the join-state, stream and dead-letter calls
// one invocation has in flight. The calls of a batch are few and large; 16
// keeps the round trips of a 500-record batch overlapping without tripping
// per-partition limits. The OrderEnriched writes, one small call per row,
// run with the sink's writer and its bound (sink.DefaultConcurrency), as
// in the sink.
const DefaultConcurrency = 16

// DefaultRetry is the policy of every AWS call: up to 8 attempts with
// backoff from 25 ms to 2 s and 5 s for any one attempt, so a hung call is
// retried, always within the invocation deadline.
var DefaultRetry = retry.Policy{
	MaxAttempts:    8,
	BaseDelay:      25 * time.Millisecond,
	MaxDelay:       2 * time.Second,
	AttemptTimeout: 5 * time.Second,
}

// DefaultDeadlineReserve is kept back from the invocation deadline so
// that work still unfinished is reported as failed records instead of
// Lambda timing out the whole batch.
const DefaultDeadlineReserve = time.Second

// Config configures a Handler.
type Config struct {
	// StateTable is the DynamoDB join-state table (pk S, sk S, ttl).
	StateTable string
	// TombstoneRetention is how long a tombstone lives after it is
	// written; live rows carry no expiry.
	TombstoneRetention time.Duration
	// OutputTable is the OrderEnriched table: enrich writes its rows there
	// itself, through sink.Writer (docs/design.md §4). Empty: rows go only
	// to OutputStream, for a sink to write (the original's two hops).
	OutputTable string
	// OutputStream is the enriched stream's name or ARN; empty publishes
	// nothing. At least one of OutputTable and OutputStream is required.
	OutputStream string
	// SourceStream is the unified order stream's name or ARN: the handler
	// puts the delete of a moved row's old key there, keyed by the old
	// orderId (see rekey.go). Empty: such updates are dead-lettered.
	SourceStream string
	// ReferenceDataURI (s3://bucket/key or file:///path) and DLQURL
	// (optional) are read from the environment for main, which builds the
	// Products and DLQ dependencies from them; the handler ignores them.
	ReferenceDataURI string
	DLQURL           string
	// Source names this processor in dead-letter messages.
	Source string
	// Concurrency bounds the join-state, stream and dead-letter calls in
	// flight (not the OrderEnriched writes, see DefaultConcurrency); 0
	// means DefaultConcurrency.
	Concurrency int
	// Retry is the backoff policy of every AWS call; DefaultRetry when
	// none of its limits is set.
	Retry retry.Policy
	// DeadlineReserve is kept back from the invocation deadline (at most
	// half the time left); 0 means DefaultDeadlineReserve.
	DeadlineReserve time.Duration
	// Now is the clock that dates tombstones and decides which have
	// expired; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
}

// ConfigFromEnv reads the configuration the stack sets. getenv is
// os.Getenv in production.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		StateTable:         strings.TrimSpace(getenv(EnvStateTable)),
		TombstoneRetention: DefaultTombstoneRetention,
		OutputTable:        strings.TrimSpace(getenv(EnvOutputTable)),
		OutputStream:       strings.TrimSpace(getenv(EnvOutputStream)),
		SourceStream:       strings.TrimSpace(getenv(EnvSourceStream)),
		ReferenceDataURI:   strings.TrimSpace(getenv(EnvReferenceDataURI)),
		DLQURL:             strings.TrimSpace(getenv(dlq.EnvURL)),
		Source:             strings.TrimSpace(getenv("AWS_LAMBDA_FUNCTION_NAME")),
	}
	var errs []error
	for _, v := range []struct{ name, value string }{
		{EnvStateTable, cfg.StateTable},
		{EnvOutputTable, cfg.OutputTable},
		{EnvSourceStream, cfg.SourceStream},
		{EnvReferenceDataURI, cfg.ReferenceDataURI},
	} {
		if v.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", v.name))
		}
	}
	if s := strings.TrimSpace(getenv(EnvTombstoneDays)); s != "" {
		days, err := strconv.Atoi(s)
		if err != nil || days < 1 || days > 3650 {
			errs = append(errs, fmt.Errorf("%s=%q: want a whole number of days from 1 to 3650", EnvTombstoneDays, s))
		} else {
			cfg.TombstoneRetention = time.Duration(days) * 24 * time.Hour
		}
	}
	if cfg.Source == "" {
		cfg.Source = "enrich"
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("enrich configuration: %w", err)
	}
	return cfg, nil
}

func (c Config) withDefaults() Config {
	if c.TombstoneRetention <= 0 {
		c.TombstoneRetention = DefaultTombstoneRetention
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	c.Retry = c.Retry.Or(DefaultRetry)
	if c.DeadlineReserve <= 0 {
		c.DeadlineReserve = DefaultDeadlineReserve
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Source == "" {
		c.Source = "enrich"
	}
	return c
}
