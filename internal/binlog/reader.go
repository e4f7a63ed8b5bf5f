// Package binlog is the local stand-in for AWS DMS: a change-data-capture
// reader that takes a consistent snapshot of the source tables (the full
// load), then follows the MySQL/MariaDB binlog (ROW, FULL) and writes every
// row change to Kinesis as the JSON record DMS writes (docs/design.md §3.2,
// docs/aws-facts.md §1), partitioned by a column so that an order and its items
// share a shard.
//
// Records of one partition key reach Kinesis in commit order. Metadata
// timestamps are strictly increasing microseconds, so the version the
// consumers derive from them orders commits exactly.
package binlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/retry"
)

// Config says where to read and where to write.
type Config struct {
	// Host, Port, User and Password reach the source database. The user
	// needs SELECT, RELOAD, REPLICATION CLIENT and REPLICATION SLAVE.
	Host     string
	Port     int
	User     string
	Password string
	// Flavor is "mariadb" (the default) or "mysql".
	Flavor string
	// ServerID identifies the reader to the source as a replica; it must
	// differ from the source's own server id. 0 means 1001.
	ServerID uint32

	// Schema and Tables select what is captured, as DMS table mappings do.
	// Defaults: orders, and its order and order_item tables.
	Schema string
	Tables []string
	// PartitionKey is the column whose value keys each data record
	// (partition-key-type attribute-name). Default orderId.
	PartitionKey string

	// Kinesis and Stream are the target.
	Kinesis Kinesis
	Stream  string
	// Retry bounds how long a failing PutRecords is retried before the
	// reader gives up; the zero value means the retry package's defaults.
	Retry retry.Policy

	// ResumeAt, if set, resumes a stopped reader as DMS resumes a task
	// from its checkpoint: no control records and no full load, the binlog
	// followed from this position (a previous reader's ShippedPosition).
	// Changes after it that the previous reader had shipped are shipped
	// again, with later versions: at least once, in order per key.
	ResumeAt *mysql.Position

	// TaskID names the replication task in control records' partition keys.
	TaskID string
	// IncludeNullAndEmpty writes NULL columns as null; by default they are
	// left out, as DMS does unless the endpoint setting is on.
	IncludeNullAndEmpty bool
	// DecimalsAsNumbers writes DECIMAL values as JSON numbers instead of
	// strings. Either way the text is exact.
	DecimalsAsNumbers bool
	// OmitControlDetails leaves the table definition out of create-table
	// control records (endpoint setting IncludeControlDetails off).
	OmitControlDetails bool

	// Logger receives progress and problems; nil discards them.
	Logger *slog.Logger
	// OnRecord, when set, is called for every data record before it is
	// queued for Kinesis, from the reader's goroutine.
	OnRecord func(Emitted)
}

// Emitted describes one data record the reader produced.
type Emitted struct {
	// Version is the record's metadata timestamp in microseconds, which is
	// what consumers use as the row version.
	Version   int64
	Table     string
	Operation string
	Key       string
	// GTID identifies the source transaction ("domain-server-seq" on
	// MariaDB, "uuid:gno" on MySQL); empty for full-load records.
	GTID string
}

// Stats counts what the reader did.
type Stats struct {
	Loaded, Inserted, Updated, Deleted, Control int64
	// PutRecords counts calls; Retries counts calls that failed wholly or
	// partly and were sent again.
	PutRecords, Retries int64
}

// Reader is a running CDC reader; create it with New and start it with Run.
type Reader struct {
	cfg    Config
	enc    encoder
	log    *slog.Logger
	db     *sql.DB
	tables map[string]*table

	loaded chan struct{}
	writer atomic.Pointer[writer]
	pos    positions
	clock  clock
	prev   *txnRef

	loads, inserts, updates, deletes, controls atomic.Int64
}

// New validates cfg and fills in its defaults; nothing is contacted yet.
func New(cfg Config) (*Reader, error) {
	if cfg.Host == "" || cfg.Port == 0 || cfg.User == "" {
		return nil, errors.New("binlog: host, port and user are required")
	}
	if cfg.Kinesis == nil || cfg.Stream == "" {
		return nil, errors.New("binlog: a Kinesis client and stream are required")
	}
	if cfg.Flavor == "" {
		cfg.Flavor = mysql.MariaDBFlavor
	}
	if cfg.Flavor != mysql.MariaDBFlavor && cfg.Flavor != mysql.MySQLFlavor {
		return nil, fmt.Errorf("binlog: flavor %q is neither %q nor %q", cfg.Flavor, mysql.MariaDBFlavor, mysql.MySQLFlavor)
	}
	if cfg.ServerID == 0 {
		cfg.ServerID = 1001
	}
	if cfg.Schema == "" {
		cfg.Schema = order.SourceSchema
	}
	if len(cfg.Tables) == 0 {
		cfg.Tables = []string{order.TableOrder, order.TableOrderItem}
	}
	if cfg.PartitionKey == "" {
		cfg.PartitionKey = "orderId"
	}
	if cfg.TaskID == "" {
		cfg.TaskID = "ETLLOCALTASK"
	}
	if cfg.Retry.Retryable == nil {
		cfg.Retry.Retryable = retryableWrite
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reader{
		cfg: cfg,
		enc: encoder{
			includeNulls:      cfg.IncludeNullAndEmpty,
			decimalsAsNumbers: cfg.DecimalsAsNumbers,
			controlDetails:    !cfg.OmitControlDetails,
			partitionKeyType:  cdc.PartitionKeyAttribute,
		},
		log:    log.With("component", "cdc"),
		tables: map[string]*table{},
		loaded: make(chan struct{}),
	}, nil
}

// Loaded is closed once the full load has been queued and the reader has
// switched to the binlog.
func (r *Reader) Loaded() <-chan struct{} { return r.loaded }

// Stats returns the reader's counters.
func (r *Reader) Stats() Stats {
	s := Stats{
		Loaded:   r.loads.Load(),
		Inserted: r.inserts.Load(),
		Updated:  r.updates.Load(),
		Deleted:  r.deletes.Load(),
		Control:  r.controls.Load(),
	}
	if w := r.writer.Load(); w != nil {
		s.PutRecords, s.Retries = w.puts.Load(), w.retries.Load()
	}
	return s
}

// Run performs the full load and then follows the binlog until ctx ends
// (it then returns nil) or something fails for good.
func (r *Reader) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	dsn := gomysql.NewConfig()
	dsn.User, dsn.Passwd, dsn.Net = r.cfg.User, r.cfg.Password, "tcp"
	dsn.Addr = netAddr(r.cfg.Host, r.cfg.Port)
	dsn.Loc = time.UTC
	dsn.Params = map[string]string{"time_zone": "'+00:00'"}
	if r.db, err = sql.Open("mysql", dsn.FormatDSN()); err != nil {
		return fmt.Errorf("binlog: %w", err)
	}
	defer r.db.Close()

	for _, name := range r.cfg.Tables {
		t, err := loadTable(ctx, r.db, r.cfg.Schema, name, r.cfg.PartitionKey)
		if err != nil {
			return fmt.Errorf("binlog: %w", err)
		}
		r.tables[name] = t
	}

	w, err := newWriter(ctx, r.cfg.Kinesis, r.cfg.Stream, r.cfg.Retry)
	if err != nil {
		return fmt.Errorf("binlog: %w", err)
	}
	r.writer.Store(w)
	var lanes sync.WaitGroup
	laneCtx, stopLanes := context.WithCancel(context.WithoutCancel(ctx))
	w.run(laneCtx, &lanes)
	defer func() {
		stopLanes()
		lanes.Wait()
	}()
	go func() {
		select {
		case err := <-w.failed:
			cancel(err)
		case <-ctx.Done():
		}
	}()

	err = r.run(ctx, w)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		// A lane failed: that, not the cancellation it caused, is the news.
		return fmt.Errorf("binlog: %w", cause)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *Reader) run(ctx context.Context, w *writer) error {
	if r.cfg.ResumeAt != nil {
		start := *r.cfg.ResumeAt
		r.pos.set(w.issued(), start, 0)
		close(r.loaded)
		r.log.Info("resuming from the binlog", "file", start.Name, "position", start.Pos)
		return r.follow(ctx, w, start)
	}
	if err := r.emitControl(ctx, w); err != nil {
		return err
	}
	start, err := r.fullLoad(ctx, w)
	if err != nil {
		return err
	}
	r.pos.set(w.issued(), start, 0)
	close(r.loaded)
	r.log.Info("full load queued; following the binlog", "file", start.Name, "position", start.Pos,
		"records", r.loads.Load())
	return r.follow(ctx, w, start)
}

// emitControl writes the create-table control records DMS sends when a
// task starts: one for its own exceptions table (with no schema) and one
// per captured table. Consumers must recognise and skip them.
func (r *Reader) emitControl(ctx context.Context, w *writer) error {
	recs := []*record{{control: true, op: opCreateTable, tableName: "awsdms_apply_exceptions"}}
	for _, name := range r.cfg.Tables {
		t := r.tables[name]
		recs = append(recs, &record{control: true, op: opCreateTable, table: t, schemaName: t.schema, tableName: t.name})
	}
	for _, rec := range recs {
		rec.timestamp = r.clock.next()
		rec.partition = r.cfg.TaskID
		if rec.schemaName != "" {
			rec.partition += "." + rec.schemaName + "." + rec.tableName
		}
		if err := w.enqueue(ctx, rec.partition, r.enc.appendRecord(nil, rec)); err != nil {
			return err
		}
		r.controls.Add(1)
	}
	return nil
}

// WaitShipped blocks until every change committed on the source before the
// call is in Kinesis: it reads the source's binlog end and waits until the
// reader has read up to it and Kinesis has accepted everything before it.
func (r *Reader) WaitShipped(ctx context.Context) error {
	select {
	case <-r.loaded:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.db == nil {
		return errors.New("binlog: reader is not running")
	}
	target, err := masterPosition(ctx, r.db)
	if err != nil {
		return fmt.Errorf("binlog: %w", err)
	}
	w := r.writer.Load()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		shipped, changed := w.shipped()
		if p, ok := r.pos.at(shipped); ok && p.Compare(target) >= 0 {
			return nil
		}
		select {
		case <-changed:
		case <-tick.C: // the reader may advance without shipping anything
		case <-ctx.Done():
			return fmt.Errorf("binlog: waiting for position %s: %w", target, ctx.Err())
		}
	}
}

// ShippedPosition is the binlog position up to which every change is in
// Kinesis.
func (r *Reader) ShippedPosition() (mysql.Position, bool) {
	w := r.writer.Load()
	if w == nil {
		return mysql.Position{}, false
	}
	shipped, _ := w.shipped()
	return r.pos.at(shipped)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// masterPosition reads the end of the source's binlog.
func masterPosition(ctx context.Context, db querier) (mysql.Position, error) {
	rows, err := db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return mysql.Position{}, fmt.Errorf("read the source's binlog position: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return mysql.Position{}, fmt.Errorf("read the source's binlog position: %w", err)
	}
	if !rows.Next() {
		return mysql.Position{}, errors.New("the source has no binlog (log_bin is off)")
	}
	if len(cols) < 2 {
		return mysql.Position{}, fmt.Errorf("SHOW MASTER STATUS returned %d columns", len(cols))
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return mysql.Position{}, fmt.Errorf("read the source's binlog position: %w", err)
	}
	pos, err := strconv.ParseUint(string(vals[1]), 10, 32)
	if err != nil {
		return mysql.Position{}, fmt.Errorf("binlog position %q: %w", vals[1], err)
	}
	return mysql.Position{Name: string(vals[0]), Pos: uint32(pos)}, nil
}

// positions remembers which binlog position each shipped-record count
// corresponds to, so that "everything before position P is in Kinesis"
// can be answered.
type positions struct {
	mu   sync.Mutex
	list []posMark
}

type posMark struct {
	issued uint64 // records enqueued once the position was reached
	pos    mysql.Position
}

// set records that pos was reached once issued records were enqueued;
// shipped (the writer's current count) lets it drop marks nobody can need.
func (p *positions) set(issued uint64, pos mysql.Position, shipped uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.list); n > 0 && p.list[n-1].issued == issued {
		p.list[n-1].pos = pos
		return
	}
	p.list = append(p.list, posMark{issued, pos})
	if len(p.list) > 1024 {
		i := 0
		for i+1 < len(p.list) && p.list[i+1].issued <= shipped {
			i++
		}
		p.list = append(p.list[:0], p.list[i:]...)
	}
}

// at returns the furthest position whose records all count below shipped.
func (p *positions) at(shipped uint64) (mysql.Position, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.list) && p.list[i].issued <= shipped {
		i++
	}
	if i == 0 {
		return mysql.Position{}, false
	}
	// Earlier marks are superseded by the one returned.
	p.list = p.list[i-1:]
	return p.list[0].pos, true
}

// clock hands out strictly increasing microsecond timestamps: wall time,
// nudged forward when two records fall in the same microsecond.
type clock struct{ last int64 }

func (c *clock) next() int64 {
	now := time.Now().UnixMicro()
	if now <= c.last {
		now = c.last + 1
	}
	c.last = now
	return now
}

func netAddr(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// quietHandler passes only warnings and errors: go-mysql logs every
// connection step at info level.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
