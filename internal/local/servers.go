package local

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/go-mysql-org/go-mysql/mysql"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	_ "github.com/go-sql-driver/mysql" // database/sql driver for MariaDB
	"golang.org/x/sync/errgroup"

	"github.com/unified-streaming-etl/etl/internal/binlog"
	"github.com/unified-streaming-etl/etl/internal/emulator"
	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/mariadb"
	"github.com/unified-streaming-etl/etl/internal/retry"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

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

// ErrPrerequisite is wrapped by errors about missing software; the
// message names the command that installs it.
var ErrPrerequisite = errors.New("missing prerequisite")

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
	for _, s := range p.streams() {
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
	for _, s := range p.streams() {
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

// streams are the Kinesis streams of the pipeline's shape: the enriched
// stream only for the original's two hops.
func (p *Pipeline) streams() []string {
	if p.cfg.Shape.twoHops() {
		return []string{UnifiedStream, EnrichedStream}
	}
	return []string{UnifiedStream}
}

// startReader runs the CDC reader as the DMS replication user the setup
// script created, and waits for its full load to be queued (resume nil)
// or for it to follow the binlog from resume.
func (p *Pipeline) startReader(ctx context.Context, resume *mysql.Position) error {
	r, err := binlog.New(binlog.Config{
		Host: p.server.Host(), Port: p.server.Port(), User: p.cdcUser, Password: p.cdcPassword,
		ServerID: p.server.ServerID() + 1000,
		// The writer has its own client, as DMS would, so that injected
		// faults reach its calls and not the pipeline's bookkeeping; its
		// own retry policy, not the SDK's, retries them (and counts them).
		Kinesis:           kinesis.NewFromConfig(retry.WithoutSDKRetries(p.handlerAWSConfig(p.endpoints.Kinesis))),
		Stream:            UnifiedStream,
		DecimalsAsNumbers: p.cfg.DecimalsAsNumbers,
		Logger:            p.log,
		OnRecord:          p.onRecord,
		ResumeAt:          resume,
	})
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	p.readerMu.Lock()
	p.reader, p.readerStop, p.readerDone = r, stop, done
	p.readerMu.Unlock()
	go func() {
		defer close(done)
		if err := r.Run(rctx); err != nil {
			p.log.Error("CDC reader stopped", "error", err)
			p.readerFailOnce.Do(func() {
				p.readerErr = err
				close(p.readerFailed)
			})
		}
	}()
	select {
	case <-r.Loaded():
		return nil
	case <-p.readerFailed:
		return fmt.Errorf("CDC reader: %w", p.readerErr)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopReader stops the running CDC reader, waits for it, and returns the
// position up to which everything it read is in Kinesis.
func (p *Pipeline) stopReader() (mysql.Position, bool) {
	p.readerMu.Lock()
	r, stop, done := p.reader, p.readerStop, p.readerDone
	p.readerStop = nil
	p.readerMu.Unlock()
	if stop == nil {
		return mysql.Position{}, false
	}
	stop()
	<-done
	p.readerMu.Lock()
	p.readerStopped = addReaderStats(p.readerStopped, r.Stats())
	p.readerMu.Unlock()
	return r.ShippedPosition()
}

// RestartWriter kills the CDC reader and its Kinesis writer mid-stream,
// cancelling the PutRecords calls in flight, and starts a new one that
// resumes from the binlog position up to which Kinesis had accepted
// everything, as a DMS task resumes from its checkpoint: changes after it
// are shipped again (docs/design.md §8).
func (p *Pipeline) RestartWriter(ctx context.Context) error {
	pos, ok := p.stopReader()
	if !ok {
		return errors.New("CDC reader: no shipped position to resume from")
	}
	return p.startReader(ctx, &pos)
}

func (p *Pipeline) currentReader() *binlog.Reader {
	p.readerMu.Lock()
	defer p.readerMu.Unlock()
	if p.readerStop == nil {
		return nil
	}
	return p.reader
}

func addReaderStats(a, b binlog.Stats) binlog.Stats {
	return binlog.Stats{
		Loaded: a.Loaded + b.Loaded, Inserted: a.Inserted + b.Inserted, Updated: a.Updated + b.Updated,
		Deleted: a.Deleted + b.Deleted, Control: a.Control + b.Control,
		PutRecords: a.PutRecords + b.PutRecords, Retries: a.Retries + b.Retries,
	}
}

func (p *Pipeline) onRecord(e binlog.Emitted) {
	p.commits.record(e)
	if p.tracer != nil {
		p.tracer.record(e)
	}
}

func randomPassword() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
