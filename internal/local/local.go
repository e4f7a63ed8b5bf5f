// Package local runs the whole pipeline on one machine (docs/design.md §8):
// MariaDB as the source, a CDC reader standing in for DMS, kinesalite for
// both streams, dynalite for DynamoDB, and the enrich and sink handlers
// driven by pollers with Lambda's event-source semantics. It is what
// `etl local` runs and what the end-to-end tests drive.
package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/unified-streaming-etl/etl/internal/repo"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	_ "github.com/go-sql-driver/mysql" // database/sql driver for MariaDB
	"golang.org/x/sync/errgroup"

	"github.com/unified-streaming-etl/etl/internal/binlog"
	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/emulator"
	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/mariadb"
	"github.com/unified-streaming-etl/etl/internal/poller"
	"github.com/unified-streaming-etl/etl/internal/retry"
	"github.com/unified-streaming-etl/etl/internal/sink"
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
}

// ErrPrerequisite is wrapped by errors about missing software; the
// message names the command that installs it.
var ErrPrerequisite = errors.New("missing prerequisite")

// Pipeline is a running local pipeline.
type Pipeline struct {
	cfg      Config
	log      *slog.Logger
	server   *mariadb.Server
	emus     []*emulator.Emulator
	db       *sql.DB
	Kinesis  *kinesis.Client
	DynamoDB *dynamodb.Client

	reader     *binlog.Reader
	readerStop context.CancelFunc
	readerDone chan struct{}
	readerErr  error

	enrich, sink *mapping
	deadLetters  *capture
	commits      *commitLog
	tracer       *tracer // nil unless Config.Trace

	endpoints Endpoints
	closeOnce sync.Once
}

// Endpoints say where the local services listen.
type Endpoints struct {
	MariaDBHost string
	MariaDBPort int
	MariaDBUser string
	// MariaDBPassword is MariaDBUser's password, random for each run.
	MariaDBPassword string
	MariaDBSocket   string
	Kinesis         string
	DynamoDB        string
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
	p := &Pipeline{cfg: cfg, log: cfg.Logger, deadLetters: &capture{log: cfg.Logger}, commits: newCommitLog()}
	if cfg.Trace {
		p.tracer = newTracer()
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
	if err := p.startReader(ctx, "dms_user", password); err != nil {
		return err
	}
	if err := p.startMappings(ctx); err != nil {
		return err
	}
	return nil
}

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
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return c, nil
}

// Prerequisites checks for the software local mode runs, with one message
// naming what is missing, where it was looked for and how to install it.
func Prerequisites(root string) error {
	var missing []string
	if err := mariadb.Installed(); err != nil {
		missing = append(missing, err.Error())
	}
	if _, err := emulator.Node.Find(); err != nil {
		missing = append(missing, err.Error())
	}
	for _, name := range []string{emulator.Kinesalite, emulator.Dynalite} {
		if _, err := emulator.Executable(root, name); err != nil {
			missing = append(missing, "the AWS emulators in node_modules: install them with `make deps`")
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrPrerequisite, strings.Join(missing, "; "))
}

func (p *Pipeline) startServers(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		s, err := mariadb.Start(ctx, mariadb.Config{})
		mu.Lock()
		defer mu.Unlock()
		p.server = s
		errs = append(errs, err)
	}()
	for _, name := range []string{emulator.Kinesalite, emulator.Dynalite} {
		go func() {
			defer wg.Done()
			e, err := emulator.StartConfig(ctx, emulator.Config{Name: name, Root: p.cfg.Root, Output: &lineLogger{log: p.log, name: name}})
			mu.Lock()
			defer mu.Unlock()
			if e != nil {
				p.emus = append(p.emus, e)
				if name == emulator.Kinesalite {
					p.endpoints.Kinesis = e.Endpoint()
				} else {
					p.endpoints.DynamoDB = e.Endpoint()
				}
			}
			errs = append(errs, err)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.endpoints.MariaDBHost, p.endpoints.MariaDBPort = p.server.Host(), p.server.Port()
	p.endpoints.MariaDBUser, p.endpoints.MariaDBSocket = p.server.User(), p.server.Socket()
	p.endpoints.MariaDBPassword = p.server.Password()
	db, err := sql.Open("mysql", p.server.DSN(""))
	if err != nil {
		return err
	}
	db.SetMaxIdleConns(64)
	p.db = db
	p.Kinesis = kinesis.NewFromConfig(AWSConfig(p.endpoints.Kinesis))
	p.DynamoDB = dynamodb.NewFromConfig(AWSConfig(p.endpoints.DynamoDB))
	return nil
}

func (p *Pipeline) createResources(ctx context.Context) error {
	for _, s := range []string{UnifiedStream, EnrichedStream} {
		if _, err := p.Kinesis.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), ShardCount: aws.Int32(int32(p.cfg.Shards))}); err != nil {
			return fmt.Errorf("create stream %s: %w", s, err)
		}
	}
	// The emulators take about half a second to make each resource
	// active; waiting for all of them at once saves seconds at start.
	w := kinesis.NewStreamExistsWaiter(p.Kinesis, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	steps := []func() error{
		func() error { return sink.CreateTable(ctx, p.DynamoDB, TableName) },
		func() error { return enrich.CreateStateTable(ctx, p.DynamoDB, StateTable) },
	}
	for _, s := range []string{UnifiedStream, EnrichedStream} {
		steps = append(steps, func() error {
			if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(s)}, time.Minute); err != nil {
				return fmt.Errorf("wait for stream %s: %w", s, err)
			}
			return nil
		})
	}
	var g errgroup.Group
	for _, step := range steps {
		g.Go(step)
	}
	return g.Wait()
}

// startReader runs the CDC reader as the DMS replication user the setup
// script created, and waits for its full load to be queued.
func (p *Pipeline) startReader(ctx context.Context, user, password string) error {
	r, err := binlog.New(binlog.Config{
		Host: p.server.Host(), Port: p.server.Port(), User: user, Password: password,
		ServerID:          p.server.ServerID() + 1000,
		Kinesis:           p.Kinesis,
		Stream:            UnifiedStream,
		DecimalsAsNumbers: p.cfg.DecimalsAsNumbers,
		Logger:            p.log,
		OnRecord:          p.onRecord,
	})
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.reader, p.readerStop, p.readerDone = r, stop, make(chan struct{})
	go func() {
		defer close(p.readerDone)
		if err := r.Run(rctx); err != nil {
			p.readerErr = err
			p.log.Error("CDC reader stopped", "error", err)
		}
	}()
	select {
	case <-r.Loaded():
		return nil
	case <-p.readerDone:
		return fmt.Errorf("CDC reader: %w", p.readerErr)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pipeline) onRecord(e binlog.Emitted) {
	p.commits.record(e)
	if p.tracer != nil {
		p.tracer.record(e)
	}
}

// wrapHandler applies the tracer (innermost, so it sees what the handler
// itself did) and then Config.WrapHandler.
func (p *Pipeline) wrapHandler(function string, h poller.Handler) poller.Handler {
	if p.tracer != nil {
		h = p.tracer.wrap(function, h)
	}
	if p.cfg.WrapHandler != nil {
		h = p.cfg.WrapHandler(function, h)
	}
	return h
}

func (p *Pipeline) startMappings(ctx context.Context) error {
	products, err := filepath.Abs(p.cfg.Products)
	if err != nil {
		return err
	}
	esm := func(function, stream string) poller.Config {
		return poller.Config{
			Function:              function,
			Stream:                stream,
			Kinesis:               p.Kinesis,
			Region:                Region,
			BatchSize:             p.cfg.BatchSize,
			BatchWindow:           p.cfg.BatchWindow,
			ParallelizationFactor: p.cfg.ParallelizationFactor,
			MaxRetryAttempts:      p.cfg.MaxRetryAttempts,
			BisectOnError:         true,
			Checkpoints:           poller.NewCheckpoints(),
			Logger:                p.log,
		}
	}
	// Like a Lambda environment, each poller start builds its handler and
	// clients afresh: a restarted enrich poller shares nothing with the
	// one it replaces but the checkpoints.
	p.enrich = &mapping{cfg: esm(EnrichFunction, UnifiedStream), wrap: p.wrapHandler, newHandler: func() (poller.Handler, error) {
		ref, err := enrich.NewReference("file://"+products, nil, enrich.WithLogger(p.log))
		if err != nil {
			return nil, err
		}
		h, err := enrich.New(enrich.Config{
			StateTable: StateTable, OutputStream: EnrichedStream, SourceStream: UnifiedStream, Source: EnrichFunction, Logger: p.log, Now: p.cfg.Now,
		}, enrich.Deps{
			DB:       dynamodb.NewFromConfig(retry.WithoutSDKRetries(AWSConfig(p.endpoints.DynamoDB))),
			Stream:   kinesis.NewFromConfig(retry.WithoutSDKRetries(AWSConfig(p.endpoints.Kinesis))),
			Products: ref,
			DLQ:      p.deadLetters,
		})
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	}}
	p.sink = &mapping{cfg: esm(SinkFunction, EnrichedStream), wrap: p.wrapHandler, newHandler: func() (poller.Handler, error) {
		h, err := sink.New(sink.Config{TableName: TableName, Source: SinkFunction, Logger: p.log},
			dynamodb.NewFromConfig(retry.WithoutSDKRetries(AWSConfig(p.endpoints.DynamoDB))),
			p.deadLetters)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	}}
	for _, m := range []*mapping{p.enrich, p.sink} {
		if err := m.start(p.log); err != nil {
			return err
		}
	}
	return nil
}

// mapping is an event source mapping whose poller can be stopped and
// started again with the same checkpoints.
type mapping struct {
	cfg        poller.Config
	newHandler func() (poller.Handler, error)
	wrap       func(string, poller.Handler) poller.Handler

	mu     sync.Mutex
	p      *poller.Poller
	cancel context.CancelFunc
	done   chan struct{}
	runErr error // why the current poller stopped on its own
	// failures and counters of pollers that were stopped
	failures []poller.FailureRecord
	stopped  poller.Stats
}

func (m *mapping) start(log *slog.Logger) error {
	h, err := m.newHandler()
	if err != nil {
		return fmt.Errorf("%s: %w", m.cfg.Function, err)
	}
	if m.wrap != nil {
		h = m.wrap(m.cfg.Function, h)
	}
	p, err := poller.New(m.cfg, h)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.mu.Lock()
	m.p, m.cancel, m.done, m.runErr = p, cancel, done, nil
	m.mu.Unlock()
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			log.Error("poller stopped", "function", m.cfg.Function, "error", err)
			m.mu.Lock()
			m.runErr = fmt.Errorf("%s poller stopped: %w", m.cfg.Function, err)
			m.mu.Unlock()
		}
	}()
	return nil
}

func (m *mapping) stop() {
	m.mu.Lock()
	p, cancel, done := m.p, m.cancel, m.done
	m.p = nil
	m.mu.Unlock()
	if p == nil {
		return
	}
	cancel()
	<-done
	m.mu.Lock()
	m.failures = append(m.failures, p.Failures()...)
	m.stopped = addStats(m.stopped, p.Stats())
	m.mu.Unlock()
}

// stats returns the counters of every poller this mapping has run.
func (m *mapping) stats() poller.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stopped
	if m.p != nil {
		s = addStats(s, m.p.Stats())
	}
	return s
}

func addStats(a, b poller.Stats) poller.Stats {
	return poller.Stats{
		Invocations:     a.Invocations + b.Invocations,
		Records:         a.Records + b.Records,
		Retries:         a.Retries + b.Retries,
		FunctionErrors:  a.FunctionErrors + b.FunctionErrors,
		PartialFailures: a.PartialFailures + b.PartialFailures,
		FailedBatches:   a.FailedBatches + b.FailedBatches,
		HandlerTime:     a.HandlerTime + b.HandlerTime,
	}
}

func (m *mapping) current() (*poller.Poller, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p, m.runErr
}

func (m *mapping) allFailures() []poller.FailureRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]poller.FailureRecord(nil), m.failures...)
	if m.p != nil {
		out = append(out, m.p.Failures()...)
	}
	return out
}

// RestartEnrich stops the enrich poller, cancelling whatever invocation is
// in flight as if its Lambda environment died, and starts a new one with a
// fresh handler from the same checkpoints: what the old one had not
// finished is delivered again.
func (p *Pipeline) RestartEnrich() error {
	p.enrich.stop()
	return p.enrich.start(p.log)
}

// WaitIdle blocks until every change committed on the source before the
// call has gone all the way through: shipped by the CDC reader, handled by
// enrich, and handled by the sink.
func (p *Pipeline) WaitIdle(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.readerDone:
			cancel(fmt.Errorf("CDC reader stopped: %w", p.readerErr))
		case <-ctx.Done():
		}
	}()
	steps := []func(context.Context) error{
		p.reader.WaitShipped,
		func(ctx context.Context) error { return waitPoller(ctx, p.enrich) },
		// Again: the first wait's invocations may have put the old key's
		// delete of a moved row back on the unified stream (see
		// internal/enrich/rekey.go) after the wait began. Those deletes
		// put nothing back themselves, so one more wait covers them.
		func(ctx context.Context) error { return waitPoller(ctx, p.enrich) },
		func(ctx context.Context) error { return waitPoller(ctx, p.sink) },
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
				return cause
			}
			return err
		}
	}
	return nil
}

func waitPoller(ctx context.Context, m *mapping) error {
	for {
		p, err := m.current()
		if err != nil {
			return err
		}
		// A poller being restarted is briefly absent; one that stopped on
		// its own is reported above.
		if p != nil {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			err := p.WaitIdle(wctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Config is the configuration the pipeline runs with, defaults filled in.
func (p *Pipeline) Config() Config { return p.cfg }

// Root is the repository root the pipeline takes its files from.
func (p *Pipeline) Root() string { return p.cfg.Root }

// DB is a connection pool to the source database as root.
func (p *Pipeline) DB() *sql.DB { return p.db }

// Endpoints says where the services listen.
func (p *Pipeline) Endpoints() Endpoints { return p.endpoints }

// ReaderStats returns the CDC reader's counters.
func (p *Pipeline) ReaderStats() binlog.Stats { return p.reader.Stats() }

// PollerStats returns the enrich and sink mappings' counters, summed over
// restarts.
func (p *Pipeline) PollerStats() (enrichStats, sinkStats poller.Stats) {
	return p.enrich.stats(), p.sink.stats()
}

// Failures returns the on-failure records of both mappings.
func (p *Pipeline) Failures() []poller.FailureRecord {
	return append(p.enrich.allFailures(), p.sink.allFailures()...)
}

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
		if p.readerStop != nil {
			p.readerStop()
			<-p.readerDone
		}
		if p.db != nil {
			_ = p.db.Close()
		}
		for _, e := range p.emus {
			errs = append(errs, e.Stop())
		}
		if p.server != nil {
			errs = append(errs, p.server.Stop())
		}
	})
	return errors.Join(errs...)
}

// lineLogger logs an emulator's output line by line: the emulators print
// nothing but their start line unless something goes wrong (a crash's
// stack trace).
type lineLogger struct {
	log  *slog.Logger
	name string
	mu   sync.Mutex
	buf  []byte
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
		if line != "" && !strings.Contains(strings.ToLower(line), "listening at") {
			l.log.Warn("emulator output", "emulator", l.name, "line", line)
		}
	}
	return len(b), nil
}

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

func randomPassword() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
