package local

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/unified-streaming-etl/etl/internal/poller"
	"github.com/unified-streaming-etl/etl/internal/repo"
)

// Config describes a local pipeline. The zero value runs the sample setup
// from the repository root found above the working directory.
type Config struct {
	// Root is the repository root (it holds node_modules, sql/ and
	// reference-data/); empty searches upward from the working directory.
	Root string
	// SetupSQL is applied before the CDC reader starts; default
	// sql/ordersdb-setup.sql.
	SetupSQL string
	// PreloadSQL, if set, is applied after SetupSQL and before the CDC
	// reader starts, so its rows reach the pipeline as DMS's full load.
	PreloadSQL string
	// Products is the product catalogue; default reference-data/products.json.
	Products string
	// Shards is the shard count of both streams; default 2.
	Shards int
	// BatchSize, BatchWindow and ParallelizationFactor configure both event
	// source mappings; defaults 500, 0 and 5 (docs/design.md §5.3).
	BatchSize             int
	BatchWindow           time.Duration
	ParallelizationFactor int
	// MaxRetryAttempts bounds retries of a failing batch; default 10.
	MaxRetryAttempts int
	// DecimalsAsNumbers makes the CDC reader write DECIMAL columns as JSON
	// numbers rather than strings (DMS's format here is unconfirmed; the
	// handlers accept both).
	DecimalsAsNumbers bool
	// Logger receives the components' logs; nil logs warnings and errors
	// to stderr.
	Logger *slog.Logger
	// Now is the enrich handler's clock, which dates join-state tombstones
	// and decides which have expired; nil means time.Now. Tests advance it
	// to let join state age.
	Now func() time.Time
	// WrapHandler, if set, wraps each handler the pollers invoke (function
	// is EnrichFunction or SinkFunction): tests use it to inject failures
	// and watch invocations.
	WrapHandler func(function string, h poller.Handler) poller.Handler
	// Trace records when each source change passes each stage, for
	// Pipeline.Trace.
	Trace bool
	// Shape is how enriched rows reach OrderEnriched; default ShapeDefault.
	Shape Shape
	// AWSTiming makes the pollers deliver as Lambda's event source
	// mappings do in AWS (poller.Timing, docs/aws-facts.md §5.1): polling
	// cadence, five reads per second per shard shared with the Firehose
	// archive, propagation delay, or enhanced fan-out push for ShapeEFO.
	// Without it local mode delivers as fast as the emulators allow.
	AWSTiming bool
	// FaultRate, if not zero, injects faults (throttling, 5xx, timeouts
	// before the request, responses lost after it) into that share of the
	// AWS calls the handlers and the CDC writer make; 0 <= FaultRate < 1.
	FaultRate float64
	// FaultSeed seeds which calls get a fault.
	FaultSeed uint64
	// FailureDir, if set, receives each batch a mapping gives up on as
	// Lambda's S3 on-failure record, one JSON file per batch; default
	// failures/ under a fresh directory (Pipeline.FailureDir).
	FailureDir string
}

// Shape is how enriched rows reach OrderEnriched.
type Shape string

// The pipeline's shapes (docs/design.md §4.1).
const (
	// ShapeOriginal is the original's two polling hops: enrich puts rows
	// on the enriched stream and the sink writes them.
	ShapeOriginal Shape = "original"
	// ShapeDefault is one hop: enrich writes OrderEnriched itself, its
	// mapping polling the unified stream (consumer=polling).
	ShapeDefault Shape = "default"
	// ShapeEFO is one hop with the enrich mapping on an enhanced fan-out
	// consumer (consumer=efo): records are pushed.
	ShapeEFO Shape = "efo"
)

// Shapes lists every shape, the original first.
var Shapes = []Shape{ShapeOriginal, ShapeDefault, ShapeEFO}

// ParseShape reads a shape name; empty is ShapeDefault.
func ParseShape(s string) (Shape, error) {
	if s == "" {
		return ShapeDefault, nil
	}
	for _, sh := range Shapes {
		if string(sh) == s {
			return sh, nil
		}
	}
	return "", fmt.Errorf("shape %q: want original, default or efo", s)
}

// twoHops reports whether rows go through the enriched stream and the sink.
func (s Shape) twoHops() bool { return s == ShapeOriginal }

func (c Config) withDefaults() (Config, error) {
	if c.Root == "" {
		root, err := repo.Root()
		if err != nil {
			return c, err
		}
		c.Root = root
	}
	if c.SetupSQL == "" {
		c.SetupSQL = filepath.Join(c.Root, "sql", "ordersdb-setup.sql")
	}
	if c.Products == "" {
		c.Products = filepath.Join(c.Root, "reference-data", "products.json")
	}
	for _, f := range []string{c.SetupSQL, c.Products} {
		if _, err := os.Stat(f); err != nil {
			return c, err
		}
	}
	if c.Shards == 0 {
		c.Shards = 2
	}
	if c.Shards < 1 || c.Shards > 5 {
		// kinesalite's default account limit is 10 shards for both streams.
		return c, fmt.Errorf("shards %d: want 1 to 5 per stream", c.Shards)
	}
	if c.BatchSize == 0 {
		c.BatchSize = poller.DefaultBatchSize
	}
	if c.ParallelizationFactor == 0 {
		c.ParallelizationFactor = 5
	}
	if c.MaxRetryAttempts == 0 {
		c.MaxRetryAttempts = poller.DefaultMaxRetryAttempts
	}
	shape, err := ParseShape(string(c.Shape))
	if err != nil {
		return c, err
	}
	c.Shape = shape
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return c, nil
}
