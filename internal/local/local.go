// Package local runs the whole pipeline on one machine (docs/design.md §8):
// MariaDB as the source, a CDC reader standing in for DMS, kinesalite for
// both streams, dynalite for DynamoDB, and the enrich and sink handlers
// driven by pollers with Lambda's event-source semantics. It is what
// `etl local` runs and what the end-to-end tests drive.
package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/unified-streaming-etl/etl/internal/binlog"
	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/emulator"
	"github.com/unified-streaming-etl/etl/internal/mariadb"
	"github.com/unified-streaming-etl/etl/internal/poller"
)

// Names of the local streams, tables and functions.
const (
	UnifiedStream  = "unified-order-stream"
	EnrichedStream = "enriched-order-item-stream"
	TableName      = "OrderEnriched"
	StateTable     = "OrderJoinState"
	EnrichFunction = "enrich"
	SinkFunction   = "sink"
)

// Pipeline is a running local pipeline.
type Pipeline struct {
	cfg      Config
	log      *slog.Logger
	server   *mariadb.Server
	emus     []*emulator.Emulator
	db       *sql.DB
	Kinesis  *kinesis.Client
	DynamoDB *dynamodb.Client

	// The CDC reader: the current one (RestartWriter replaces it), the
	// counters of stopped ones, and readerFailed, closed with readerErr
	// once a reader stops on its own.
	cdcUser, cdcPassword string
	readerMu             sync.Mutex
	reader               *binlog.Reader
	readerStop           context.CancelFunc
	readerDone           chan struct{}
	readerStopped        binlog.Stats
	readerFailed         chan struct{}
	readerFailOnce       sync.Once
	readerErr            error

	enrich, sink *mapping // sink is nil but in ShapeOriginal
	archiveStop  context.CancelFunc
	deadLetters  *capture
	commits      *commitLog
	tracer       *tracer // nil unless Config.Trace
	faults       *Faults // nil unless Config.FaultRate
	failureDir   *failureDir

	endpoints Endpoints
	closeOnce sync.Once
}

// Start brings up the pipeline: MariaDB, kinesalite and dynalite on free
// ports, the streams and tables, the schema from SetupSQL, the CDC reader
// (full load done when Start returns) and both pollers. On error everything
// already started is stopped again.
func Start(ctx context.Context, cfg Config) (*Pipeline, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := Prerequisites(cfg.Root); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, log: cfg.Logger, deadLetters: &capture{log: cfg.Logger}, commits: newCommitLog(), readerFailed: make(chan struct{})}
	if cfg.FaultRate != 0 {
		// NewFaults refuses a rate out of range, NaN included.
		if p.faults, err = NewFaults(cfg.FaultRate, cfg.FaultSeed); err != nil {
			return nil, err
		}
	}
	if p.failureDir, err = newFailureDir(cfg.FailureDir); err != nil {
		return nil, err
	}
	if cfg.Trace {
		p.tracer = newTracer()
		p.tracer.oneHop = !cfg.Shape.twoHops()
	}
	if err := p.start(ctx); err != nil {
		if cerr := p.Close(); cerr != nil {
			p.log.Warn("cleaning up after a failed start", "error", cerr)
		}
		return nil, err
	}
	return p, nil
}

func (p *Pipeline) start(ctx context.Context) error {
	cfg := p.cfg
	if err := p.startServers(ctx); err != nil {
		return err
	}
	if err := p.createResources(ctx); err != nil {
		return err
	}
	password := randomPassword()
	if _, err := RunScript(ctx, p.db, cfg.SetupSQL, []string{"SET @dms_password = '" + password + "'"}, nil); err != nil {
		return fmt.Errorf("apply %s: %w", cfg.SetupSQL, err)
	}
	if cfg.PreloadSQL != "" {
		if _, err := RunScript(ctx, p.db, cfg.PreloadSQL, nil, nil); err != nil {
			return fmt.Errorf("apply %s: %w", cfg.PreloadSQL, err)
		}
	}
	p.cdcUser, p.cdcPassword = "dms_user", password
	if err := p.startReader(ctx, nil); err != nil {
		return err
	}
	if err := p.startMappings(ctx); err != nil {
		return err
	}
	return nil
}

// Config is the configuration the pipeline runs with, defaults filled in.
func (p *Pipeline) Config() Config { return p.cfg }

// Root is the repository root the pipeline takes its files from.
func (p *Pipeline) Root() string { return p.cfg.Root }

// DB is a connection pool to the source database as root.
func (p *Pipeline) DB() *sql.DB { return p.db }

// Endpoints says where the services listen.
func (p *Pipeline) Endpoints() Endpoints { return p.endpoints }

// ReaderStats returns the CDC reader's counters, summed over restarts.
func (p *Pipeline) ReaderStats() binlog.Stats {
	p.readerMu.Lock()
	defer p.readerMu.Unlock()
	s := p.readerStopped
	if p.readerStop != nil {
		s = addReaderStats(s, p.reader.Stats())
	}
	return s
}

// PollerStats returns the enrich and sink mappings' counters, summed over
// restarts; the sink's are zero in the one-hop shapes.
func (p *Pipeline) PollerStats() (enrichStats, sinkStats poller.Stats) {
	if p.sink != nil {
		sinkStats = p.sink.stats()
	}
	return p.enrich.stats(), sinkStats
}

// Failures returns the on-failure records of both mappings.
func (p *Pipeline) Failures() []poller.FailureRecord {
	var out []poller.FailureRecord
	for _, m := range p.mappings() {
		out = append(out, m.allFailures()...)
	}
	return out
}

// FailureDir is the directory holding the batches the mappings gave up
// on, in Lambda's S3 on-failure record format (`etl replay --failures
// file://DIR` reads it). Unless Config.FailureDir chose it, Close removes it.
func (p *Pipeline) FailureDir() string { return p.failureDir.dir }

// FailureFiles lists the on-failure records written to FailureDir.
func (p *Pipeline) FailureFiles() ([]string, error) { return p.failureDir.files() }

// DeadLetters returns the records the handlers set aside.
func (p *Pipeline) DeadLetters() []dlq.Message { return p.deadLetters.all() }

// RunSQL replays a SQL script against the source, recording the commit
// time of every transaction it commits.
func (p *Pipeline) RunSQL(ctx context.Context, path string) (int, error) {
	return RunScript(ctx, p.db, path, nil, p.commits.commit)
}

// RunSQLSteps is RunSQL that also reports each statement it ran, so a
// reader can follow what the script did to the source.
func (p *Pipeline) RunSQLSteps(ctx context.Context, path string, onStep func(Step)) (int, error) {
	return runScript(ctx, p.db, path, nil, p.commits.commit, onStep)
}

// Close stops everything and deletes the database files. It is safe to
// call more than once.
func (p *Pipeline) Close() error {
	var errs []error
	p.closeOnce.Do(func() {
		for _, m := range []*mapping{p.sink, p.enrich} {
			if m != nil {
				m.stop()
			}
		}
		if p.archiveStop != nil {
			p.archiveStop()
		}
		p.stopReader()
		if p.db != nil {
			_ = p.db.Close()
		}
		for _, e := range p.emus {
			errs = append(errs, e.Stop())
		}
		errs = append(errs, p.failureDir.close())
		if p.server != nil {
			errs = append(errs, p.server.Stop())
		}
	})
	return errors.Join(errs...)
}
