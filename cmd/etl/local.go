package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/privatefile"
	"github.com/unified-streaming-etl/etl/internal/verify"
)

func init() {
	register(command{
		name:    "local",
		summary: "run the whole pipeline on this machine (MariaDB, kinesalite, dynalite); `local bench` measures it",
		run:     runLocal,
	})
}

// pipelineFlags are the flags `local` and `local bench` share.
type pipelineFlags struct {
	products    string
	shards      int
	batchSize   int
	window      time.Duration
	parallel    int
	timeout     time.Duration
	verbose     bool
	keepRunning bool
	dump        string
	shape       string
	awsTiming   bool
	faults      float64
	failureDir  string
}

func (f *pipelineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.products, "products", "", "product catalogue, JSON lines (default reference-data/products.json)")
	fs.IntVar(&f.shards, "shards", 2, "shards of each Kinesis stream (1-5)")
	fs.IntVar(&f.batchSize, "batch-size", 500, "records per handler invocation (event source mapping BatchSize)")
	fs.DurationVar(&f.window, "batch-window", 0, "how long pollers gather records before invoking (MaximumBatchingWindowInSeconds)")
	fs.IntVar(&f.parallel, "parallelization-factor", 5, "concurrent batches per shard, per-key order kept (1-10)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "how long to wait for the pipeline to handle everything")
	fs.BoolVar(&f.verbose, "verbose", false, "log what every component does")
	fs.BoolVar(&f.keepRunning, "keep-running", false, "leave the pipeline running after the report, until Ctrl-C, and print its endpoints")
	fs.StringVar(&f.dump, "dump", "", "write the final OrderEnriched content to this file as JSON (one object per item; created 0600)")
	fs.StringVar(&f.shape, "shape", string(local.ShapeDefault), "how rows reach DynamoDB: default (enrich writes OrderEnriched, polling), efo (the same on enhanced fan-out push) or original (enrich -> enriched stream -> sink, two polling hops)")
	fs.Float64Var(&f.faults, "faults", 0, "inject faults into this share (0 <= RATE < 1) of the AWS calls of the handlers and the CDC writer: throttling, 5xx, timeouts before the request and responses lost after it was applied")
	fs.StringVar(&f.failureDir, "failure-dir", "", "write the batches the mappings give up on here, as Lambda's S3 on-failure records, and keep them on exit (default: a temporary directory removed on exit)")
	fs.BoolVar(&f.awsTiming, "aws-timing", false, "deliver records as Lambda does in AWS (polling once a second when idle, 5 reads/s per shard shared with the archive, ~200 ms propagation; ~70 ms push with efo) instead of as fast as the emulators allow")
}

// validate checks the shared flags before anything starts, with the limits
// local mode and Lambda's event source mappings have; zero is out of range
// like any other value.
func (f *pipelineFlags) validate(fs *flag.FlagSet) error {
	return firstInvalid(fs,
		// kinesalite's default account limit is 10 shards for both streams.
		check{f.shards < 1 || f.shards > 5, fmt.Sprintf("--shards %d: want 1 to 5", f.shards)},
		check{f.batchSize < 1 || f.batchSize > 10000, fmt.Sprintf("--batch-size %d: want 1 to 10000 (Lambda's limit for Kinesis)", f.batchSize)},
		check{f.window < 0 || f.window > 300*time.Second, fmt.Sprintf("--batch-window %s: want 0s to 5m (Lambda's limit)", f.window)},
		check{f.parallel < 1 || f.parallel > 10, fmt.Sprintf("--parallelization-factor %d: want 1 to 10", f.parallel)},
		check{f.timeout <= 0, fmt.Sprintf("--timeout %s: want a positive duration such as 10m", f.timeout)},
		check{!(f.faults >= 0 && f.faults < 1), fmt.Sprintf("--faults %v: want a rate from 0 to below 1, such as 0.1", f.faults)},
		fileCheck("--products", f.products),
		shapeCheck(f.shape),
	)
}

func shapeCheck(shape string) check {
	if _, err := local.ParseShape(shape); err != nil {
		return check{true, "--" + err.Error()}
	}
	return check{}
}

// check is one flag condition: bad, and the message naming the flag.
type check struct {
	bad bool
	msg string
}

// firstInvalid reports the first bad check as a usage error.
func firstInvalid(fs *flag.FlagSet, checks ...check) error {
	for _, c := range checks {
		if c.bad {
			return usageError(fs, c.msg)
		}
	}
	return nil
}

// fileCheck fails when a flag names a file that cannot be read.
func fileCheck(flagName, path string) check {
	if path == "" {
		return check{}
	}
	f, err := os.Open(path)
	if err != nil {
		return check{true, fmt.Sprintf("%s: %v", flagName, err)}
	}
	f.Close()
	return check{}
}

func (f *pipelineFlags) config(stderr io.Writer) local.Config {
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	shape, _ := local.ParseShape(f.shape) // validated
	return local.Config{
		Shape:                 shape,
		AWSTiming:             f.awsTiming,
		Products:              f.products,
		Shards:                f.shards,
		BatchSize:             f.batchSize,
		BatchWindow:           f.window,
		ParallelizationFactor: f.parallel,
		FaultRate:             f.faults,
		FaultSeed:             uint64(time.Now().UnixNano()),
		FailureDir:            f.failureDir,
		Logger:                slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
}

const localDescription = `
Runs the pipeline end to end on this machine with the same handler code as in
AWS: a private MariaDB (binlog ROW/FULL) as the order database, a CDC reader
that writes DMS-format records to a kinesalite stream, the enrich handler
driven by a poller with Lambda's Kinesis semantics and writing dynalite as
DynamoDB (one hop; --shape original adds the enriched stream and the sink).
--aws-timing delivers records with the timing of Lambda in AWS. It applies
sql/ordersdb-setup.sql, replays --sql, waits until every change has reached
DynamoDB, prints the enriched rows and the
commit-to-DynamoDB latency, checks the table against the SQL join of the
source, and removes everything on exit (Ctrl-C included).

Needs the MariaDB server (apt-get install mariadb-server) and the emulators
(make deps).`

func runLocal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "bench" {
		return runBench(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("local", "local [flags]\n       etl local bench [flags]", localDescription, stderr)
	var pf pipelineFlags
	pf.register(fs)
	sqlFile := fs.String("sql", "", "SQL file to replay against the source once the pipeline runs (default sql/orders-data-setup.sql)")
	preload := fs.String("preload", "", "SQL file applied before the CDC reader starts, so its rows arrive as the full load")
	trace := fs.Bool("trace", false, "print each source change as it passed each stage (commit, CDC record, join, DynamoDB write) with the time since its commit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := pf.validate(fs); err != nil {
		return err
	}
	if err := firstInvalid(fs, fileCheck("--sql", *sqlFile), fileCheck("--preload", *preload)); err != nil {
		return err
	}

	cfg := pf.config(stderr)
	cfg.PreloadSQL = *preload
	cfg.Trace = *trace
	p, err := startPipeline(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	defer closePipeline(p, stdout)

	script := *sqlFile
	if script == "" {
		script = filepath.Join(p.Root(), "sql", "orders-data-setup.sql")
	}
	fmt.Fprintf(stdout, "Replaying %s on the source database, one transaction per statement:\n", script)
	n, err := p.RunSQLSteps(ctx, script, func(st local.Step) {
		fmt.Fprintf(stdout, "  line %3d  %-72s %s\n", st.Line, oneLine(st.SQL, 72), plural(st.Rows, "row"))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d statements; the CDC reader turns each changed row into a DMS record on the stream.\n", n)

	fmt.Fprint(stdout, "Waiting until every change has reached DynamoDB ... ")
	started := time.Now()
	wctx, cancel := context.WithTimeout(ctx, pf.timeout)
	defer cancel()
	if err := p.WaitIdle(wctx); err != nil {
		fmt.Fprintln(stdout)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("not every change reached DynamoDB within --timeout %s (raise it for large scripts; --verbose shows what each part does): %w", pf.timeout, err)
		}
		return err
	}
	fmt.Fprintf(stdout, "done in %s.\n\n", local.Millis(time.Since(started)))
	if *trace {
		printTrace(p.Trace(), stdout)
	}

	diffs, items, err := p.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "DynamoDB table %s (%d items):\n\n", local.TableName, len(items))
	if err := local.WriteItemsTable(stdout, items); err != nil {
		return err
	}
	if pf.products == "" {
		fmt.Fprintln(stdout, "\nPRODUCT and PRICE come from reference-data/products.json, a generated catalogue\n(go run ./cmd/genproducts): a made-up list price per product, unrelated to what the order paid.")
	}
	fmt.Fprintln(stdout)
	printActivity(p, stdout)
	fmt.Fprintf(stdout, "Commit-to-DynamoDB latency: %s,\n  %s.\n", p.Latency(items), local.LatencyDefinition)
	if err := writeDump(ctx, p, pf.dump, stdout); err != nil {
		return err
	}
	verifyErr := reportDifferences(diffs, len(items), stdout)
	if pf.keepRunning && verifyErr == nil {
		keepRunning(ctx, p, stdout)
	}
	return verifyErr
}

func startPipeline(ctx context.Context, cfg local.Config, stdout io.Writer) (*local.Pipeline, error) {
	fmt.Fprintf(stdout, "Starting the local pipeline, shape %s (MariaDB, kinesalite, dynalite, CDC reader, %s) ...\n", cfg.Shape, shapeDescription(cfg))
	started := time.Now()
	p, err := local.Start(ctx, cfg)
	if err != nil {
		if errors.Is(err, local.ErrPrerequisite) {
			return nil, err
		}
		return nil, fmt.Errorf("start the local pipeline: %w", err)
	}
	e := p.Endpoints()
	c := p.Config()
	fmt.Fprintf(stdout, "  MariaDB     %s:%d  binlog ROW/FULL, schema from sql/ordersdb-setup.sql\n", e.MariaDBHost, e.MariaDBPort)
	if c.Shape == local.ShapeOriginal {
		fmt.Fprintf(stdout, "  kinesalite  %s  streams %s and %s, %d shards each\n", e.Kinesis, local.UnifiedStream, local.EnrichedStream, c.Shards)
	} else {
		fmt.Fprintf(stdout, "  kinesalite  %s  stream %s, %d shards\n", e.Kinesis, local.UnifiedStream, c.Shards)
	}
	fmt.Fprintf(stdout, "  dynalite    %s  tables %s and %s\n", e.DynamoDB, local.TableName, local.StateTable)
	fmt.Fprintf(stdout, "  pollers     batch size %d, parallelization factor %d, ReportBatchItemFailures, bisect on error\n", c.BatchSize, c.ParallelizationFactor)
	if c.AWSTiming {
		fmt.Fprintln(stdout, "  timing      as Lambda delivers in AWS (--aws-timing; docs/aws-facts.md §5.1)")
	}
	fmt.Fprintf(stdout, "Ready in %s.\n", local.Millis(time.Since(started)))
	return p, nil
}

// shapeDescription names the handlers and how they are fed.
func shapeDescription(cfg local.Config) string {
	switch cfg.Shape {
	case local.ShapeOriginal:
		return "enrich and sink pollers, two hops"
	case local.ShapeEFO:
		return "enrich on enhanced fan-out, writing DynamoDB itself"
	}
	return "enrich poller writing DynamoDB itself"
}

func closePipeline(p *local.Pipeline, stdout io.Writer) {
	if err := p.Close(); err != nil {
		fmt.Fprintf(stdout, "Stopped, with errors: %v\n", err)
		return
	}
	fmt.Fprintln(stdout, "Stopped everything and removed the database files.")
}

func printActivity(p *local.Pipeline, stdout io.Writer) {
	r := p.ReaderStats()
	e, s := p.PollerStats()
	fmt.Fprintf(stdout, "CDC reader: %d change records (%d load, %d insert, %d update, %d delete) and %d control records in %d PutRecords calls.\n",
		r.Loaded+r.Inserted+r.Updated+r.Deleted, r.Loaded, r.Inserted, r.Updated, r.Deleted, r.Control, r.PutRecords)
	sinkPart := "no sink (enrich writes DynamoDB)"
	if p.Config().Shape == local.ShapeOriginal {
		sinkPart = fmt.Sprintf("sink: %d records in %d invocations (%s)", s.Records, s.Invocations, local.Millis(s.HandlerTime))
	}
	givenUp := len(p.Failures())
	fmt.Fprintf(stdout, "enrich: %d records in %d invocations (%s in the handler); %s; %d retries, %d dead letters, %d batches given up.\n",
		e.Records, e.Invocations, local.Millis(e.HandlerTime), sinkPart, e.Retries+s.Retries, len(p.DeadLetters()), givenUp)
	if rate := p.Config().FaultRate; rate > 0 {
		f := p.FaultStats()
		fmt.Fprintf(stdout, "Faults (--faults %g): %d of %d AWS calls of the handlers and the CDC writer: %d throttling, %d 5xx, %d timeouts before the request, %d responses lost after it was applied;\n  %d retried with the same request, %d not (yet); the CDC writer retried %d PutRecords calls, the pollers %d batches.\n",
			rate, f.Total(), f.Calls, f.Injected[local.FaultThrottle], f.Injected[local.FaultServer], f.Injected[local.FaultTimeout], f.Injected[local.FaultLostResponse],
			f.Retried, f.Total()-f.Retried, r.Retries, e.Retries+s.Retries)
	}
	if givenUp > 0 {
		fmt.Fprintf(stdout, "The %d batches given up are in %s (replay them with etl replay --failures file://%s).\n", givenUp, p.FailureDir(), p.FailureDir())
	}
}

func writeDump(ctx context.Context, p *local.Pipeline, path string, stdout io.Writer) error {
	if path == "" {
		return nil
	}
	// The dump holds customers' names and addresses: owner-only, and a
	// link planted at the path is replaced rather than followed.
	if err := privatefile.Write(path, func(w io.Writer) error { return p.Dump(ctx, w) }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote %s.\n", path)
	return nil
}

func reportDifferences(diffs []verify.Difference, items int, stdout io.Writer) error {
	if len(diffs) == 0 {
		fmt.Fprintf(stdout, "Check: %s matches the join of the source tables (%d rows): nothing lost, nothing extra.\n", local.TableName, items)
		return nil
	}
	fmt.Fprintf(stdout, "Check FAILED: %s differs from the join of the source tables in %d rows:\n", local.TableName, len(diffs))
	for i, d := range diffs {
		if i == 20 {
			fmt.Fprintf(stdout, "  ... and %d more\n", len(diffs)-i)
			break
		}
		fmt.Fprintf(stdout, "  %s\n", d)
	}
	return fmt.Errorf("%s differs from the source in %d rows", local.TableName, len(diffs))
}

func keepRunning(ctx context.Context, p *local.Pipeline, stdout io.Writer) {
	e := p.Endpoints()
	fmt.Fprintf(stdout, "\nThe pipeline keeps running: change the source and watch DynamoDB follow.\n")
	fmt.Fprintf(stdout, "In another shell, from this directory, paste:\n\n")
	for _, v := range append(localEnvironment(e), pipelineNames(p)...) {
		fmt.Fprintf(stdout, "export %s=%s\n", v.name, shellQuote(v.value))
	}
	fmt.Fprintf(stdout, `
then, for example:

  MYSQL_PWD=%s mariadb -h %s -P %d -u %s orders   # or mysql; change orders and items by hand
  go run ./cmd/etl load --orders 100 --items-per-order 2 --rate 20
  go run ./cmd/etl verify --table %s --wait 1m
  go run ./cmd/etl repair --table "$ETL_TABLE" --stream "$ETL_STREAM" --wait 1m
  go run ./cmd/etl replay --stream "$ETL_STREAM" --failures "$ETL_FAILURES_URI"
  aws dynamodb scan --table-name %s --endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB"
  aws kinesis list-shards --stream-name %s --endpoint-url "$AWS_ENDPOINT_URL_KINESIS"

Press Ctrl-C to stop it and remove everything.
`, e.MariaDBPassword, e.MariaDBHost, e.MariaDBPort, e.MariaDBUser, local.TableName, local.TableName, local.UnifiedStream)
	<-ctx.Done()
	fmt.Fprintln(stdout)
}

// printTrace prints one line per stage of every source change, timed from
// the change's commit (or, for full-load rows, its first stage).
func printTrace(changes []local.TracedChange, stdout io.Writer) {
	fmt.Fprintln(stdout, "Trace: each source change, one line per stage it passed, with the time since its commit")
	fmt.Fprintln(stdout, "(a change superseded by a later one in the same batch is joined but not written on its own):")
	for _, c := range changes {
		fmt.Fprintf(stdout, "  %s\n", c.What)
		origin := c.Commit
		if origin.IsZero() {
			origin = c.Stages[0].At
		}
		for _, s := range c.Stages {
			fmt.Fprintf(stdout, "    %-15s %+8.1f ms  %s\n", s.Stage, float64(s.At.Sub(origin).Microseconds())/1000, s.Detail)
		}
	}
	fmt.Fprintln(stdout)
}

// oneLine squeezes a statement onto one line of at most n characters.
func oneLine(sql string, n int) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

type envVar struct{ name, value string }

// localEnvironment is what every client needs to reach the local pipeline:
// the Region under both names (AWS CLI v1 reads only AWS_DEFAULT_REGION,
// https://docs.aws.amazon.com/cli/v1/userguide/cli-configure-envvars.html;
// the SDKs and CLI v2 read AWS_REGION first), the emulators' credentials,
// the service-specific endpoints the SDKs and both CLIs honour
// (https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-endpoints.html)
// and the DSN etl reads.
func localEnvironment(e local.Endpoints) []envVar {
	return []envVar{
		{"AWS_REGION", local.Region},
		{"AWS_DEFAULT_REGION", local.Region},
		{"AWS_ACCESS_KEY_ID", local.AccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", local.SecretAccessKey},
		{"AWS_ENDPOINT_URL_KINESIS", e.Kinesis},
		{"AWS_ENDPOINT_URL_DYNAMODB", e.DynamoDB},
		{envDSN, localDSN(e)},
	}
}

// pipelineNames are the names of the local pipeline's table, stream and
// failure directory, which etl verify, repair and replay take as flags
// (--table, --stream, --failures) where on AWS they come from the stacks.
func pipelineNames(p *local.Pipeline) []envVar {
	return []envVar{
		{"ETL_TABLE", local.TableName},
		{"ETL_STREAM", local.UnifiedStream},
		{"ETL_FAILURES_URI", "file://" + p.FailureDir()},
	}
}

// localDSN is the DSN of the local MariaDB's root account, with the
// password the server was given at start.
func localDSN(e local.Endpoints) string {
	c := mysql.NewConfig()
	c.User, c.Passwd = e.MariaDBUser, e.MariaDBPassword
	c.Net, c.Addr = "tcp", net.JoinHostPort(e.MariaDBHost, strconv.Itoa(e.MariaDBPort))
	return c.FormatDSN()
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters (a DSN's parentheses would otherwise be syntax).
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
