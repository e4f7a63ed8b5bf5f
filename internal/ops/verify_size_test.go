package ops_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/sync/errgroup"

	"github.com/unified-streaming-etl/etl/internal/mariadb"
	"github.com/unified-streaming-etl/etl/internal/ops"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
	"github.com/unified-streaming-etl/etl/internal/verify"
)

// verifySizes are the row counts TestVerifyMemoryDoesNotGrowWithTheTable
// compares, small enough for every test run; ETL_VERIFY_ROWS replaces the
// larger (the figure is 200000, which takes minutes to load).
func verifySizes(t *testing.T) (small, large int) {
	small, large = 4_000, 16_000
	if s := os.Getenv("ETL_VERIFY_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= small {
			t.Fatalf("ETL_VERIFY_ROWS=%q: want a row count above %d", s, small)
		}
		large = n
	}
	return small, large
}

// TestVerifyMemoryDoesNotGrowWithTheTable runs Verify over a matching
// source and table of two sizes, four items per order, and checks that
// the peak heap is that of one range, whatever the table's size.
func TestVerifyMemoryDoesNotGrowWithTheTable(t *testing.T) {
	small, large := verifySizes(t)
	_, db := testenv.StartMariaDB(t, mariadb.Config{})
	ddb := dynamodb.NewFromConfig(testenv.AWSConfig(t, testenv.StartDynalite(t)))
	ctx := context.Background()
	if _, err := ops.SetupSchemaKeepingPassword(ctx, db); err != nil {
		t.Fatal(err)
	}
	cat, err := ops.LoadProducts(ctx, filepath.Join(testenv.RepoRoot(t), ops.ProductsFile), nil)
	if err != nil {
		t.Fatal(err)
	}

	type figures struct {
		rows            int
		peak, allocated uint64
		ranges          int
		took            time.Duration
	}
	measure := func(rows int) figures {
		table := fmt.Sprintf("OrderEnriched%d", rows)
		fillSource(t, db, rows)
		fillTable(t, db, ddb, cat, table)
		f := figures{rows: rows}
		opts := ops.VerifyOptions{RangeOrders: testRangeOrders, Progress: func(p ops.VerifyProgress) {
			if !p.Scanning {
				f.ranges++
			}
		}}
		var report ops.Report
		f.peak, f.allocated, f.took = peakHeap(t, func() {
			var err error
			if report, err = ops.Verify(ctx, db, ddb, table, cat, opts); err != nil {
				t.Fatal(err)
			}
		})
		if !report.Equal() || report.SourceRows != rows || report.TableItems != rows {
			t.Fatalf("%d rows: report %d source rows, %d items, %d differences", rows, report.SourceRows, report.TableItems, report.Differences())
		}
		t.Logf("%7d rows, %3d ranges of %d orders: peak heap %5.1f MiB above the start, %6.1f MiB allocated (%5.2f MiB per range), %s",
			rows, f.ranges, testRangeOrders, mib(f.peak), mib(f.allocated), mib(f.allocated)/float64(f.ranges), f.took.Round(time.Millisecond))
		return f
	}
	s := measure(small)
	l := measure(large)
	// Everything a range holds is garbage once the next starts, so the
	// peak stays near one range's worth whatever the table's size; a
	// verify holding the table would need large/small times as much.
	if limit := s.peak*3/2 + 4<<20; l.peak > limit {
		t.Errorf("peak heap %.1f MiB for %d rows against %.1f MiB for %d rows: it grows with the table (limit %.1f MiB)",
			mib(l.peak), l.rows, mib(s.peak), s.rows, mib(limit))
	}
}

// testRangeOrders is smaller than the default so that the small size
// spans several ranges too.
const testRangeOrders = 250

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// peakHeap runs fn with a tight garbage collector and returns the largest
// heap it saw above the heap before fn, the bytes fn allocated, and how
// long fn took.
func peakHeap(t *testing.T, fn func()) (peak, allocated uint64, took time.Duration) {
	t.Helper()
	// The heap then tracks the live data closely instead of doubling it.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(samples)
	base, allocs := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	var max atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > max.Load() {
				max.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	fn()
	took = time.Since(start)
	close(stop)
	<-done
	metrics.Read(samples)
	if m := max.Load(); m > base {
		peak = m - base
	}
	return peak, samples[1].Value.Uint64() - allocs, took
}

// fillSource replaces the source tables' rows with rows/4 orders of four
// items each.
func fillSource(t *testing.T, db *sql.DB, rows int) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{"DELETE FROM orders.order_item", "DELETE FROM orders.`order`"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const perStatement = 1000
	orders := rows / 4
	for first := 1; first <= orders; first += perStatement {
		var o, i strings.Builder
		o.WriteString("INSERT INTO orders.`order` VALUES ")
		i.WriteString("INSERT INTO orders.order_item VALUES ")
		for id := first; id < first+perStatement && id <= orders; id++ {
			if id > first {
				o.WriteString(",")
				i.WriteString(",")
			}
			fmt.Fprintf(&o, "(%d, %d.25, 'PLACED', '2026-11-29 10:00:00.123', 'Name %d', '%d Main Street', 'Springfield', 'IL', '62701')", id, id%900+10, id, id)
			for item := 1; item <= 4; item++ {
				if item > 1 {
					i.WriteString(",")
				}
				fmt.Fprintf(&i, "(%d, %d, %d, %d.50, 'NEW')", id, (id*7+item*131)%1000+1, item, item*3)
			}
		}
		for _, q := range []string{o.String(), i.String()} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fillTable creates the table and writes the source join to it through
// the sink handler, as the pipeline would.
func fillTable(t *testing.T, db *sql.DB, ddb *dynamodb.Client, cat refdata.Catalogue, table string) {
	t.Helper()
	ctx := context.Background()
	if err := sink.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	h, err := sink.New(sink.Config{TableName: table, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, ddb, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	err = ops.SourceRanges(ctx, db, 500, func(lo, hi int64) error {
		want, err := verify.ExpectedRange(ctx, db, cat, lo, hi)
		if err != nil {
			return err
		}
		var ev events.KinesisEvent
		for i, e := range want {
			e.Version = 1
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			ev.Records = append(ev.Records, events.KinesisEventRecord{
				EventSource: "aws:kinesis", EventSourceArn: "arn:aws:kinesis:us-east-1:111122223333:stream/enriched",
				Kinesis: events.KinesisRecord{
					Data: data, PartitionKey: strconv.FormatInt(e.OrderID, 10), SequenceNumber: strconv.Itoa(i + 1),
					ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: time.Now()},
				},
			})
		}
		g.Go(func() error {
			resp, err := h.Handle(gctx, ev)
			if err == nil && len(resp.BatchItemFailures) > 0 {
				err = fmt.Errorf("sink: %d failures", len(resp.BatchItemFailures))
			}
			return err
		})
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
}
