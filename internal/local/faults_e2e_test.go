package local_test

import (
	"context"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/local"
)

// statements counts the SQL statements of transactions.
func statements(txs [][]string) int {
	n := 0
	for _, tx := range txs {
		n += len(tx)
	}
	return n
}

// faultsSurvived runs a random history of at least 5,000 statements with
// faults injected into a tenth of the AWS calls of the handlers and the
// CDC writer; restart, if set, is called every so often while the history
// is applied. OrderEnriched must end equal to the source join with nothing
// set aside: no dead letter, no batch given up, no on-failure record.
func faultsSurvived(t *testing.T, restart func(p *local.Pipeline) error) {
	started := time.Now()
	// Batches of 100 rather than 500: more calls, so more faults.
	p := startPipeline(t, local.Config{FaultRate: 0.1, FaultSeed: 12, BatchSize: 100})
	txs := newHistory(12, 1, 60).transactions(4800)
	if n := statements(txs); n < 5000 {
		// Each op is one or two statements; 4,800 ops make over 5,000.
		t.Fatalf("the history has %d statements; want at least 5,000", n)
	}
	// Applied in stretches, with the restarts between them: the pipeline
	// is still busy with the last stretch when its parts are killed.
	const stretches = 6
	restarts := 0
	for i := range stretches {
		apply(t, p.DB(), txs[i*len(txs)/stretches:(i+1)*len(txs)/stretches], 4)
		if restart != nil && i < stretches-1 {
			if err := restart(p); err != nil {
				t.Fatal(err)
			}
			restarts++
		}
	}
	waitIdle(t, p)
	converged(t, p)
	if files, err := p.FailureFiles(); err != nil || len(files) > 0 {
		t.Errorf("failure directory: %v, %d on-failure records %v", err, len(files), files)
	}

	f := p.FaultStats()
	e, _ := p.PollerStats()
	r := p.ReaderStats()
	t.Logf("%d statements in %d transactions, %d rows, %d restarts, %s", statements(txs), len(txs), rowCount(t, p.DB()), restarts, time.Since(started).Round(time.Millisecond))
	t.Logf("%d AWS calls, faults injected: %d throttling, %d 5xx, %d timeouts before the request, %d responses lost after it; %d retried as the same request",
		f.Calls, f.Injected[local.FaultThrottle], f.Injected[local.FaultServer], f.Injected[local.FaultTimeout], f.Injected[local.FaultLostResponse], f.Retried)
	t.Logf("enrich: %d invocations, %d batch retries, %d partial failures; CDC writer: %d PutRecords, %d retried", e.Invocations, e.Retries, e.PartialFailures, r.PutRecords, r.Retries)
	t.Logf("faulted requests not sent again identically, by operation: %v", p.FaultsNotRepeated())
	for k, n := range f.Injected {
		if n == 0 {
			t.Errorf("no %s fault was injected; the test proves little", local.FaultKind(k))
		}
	}
	if f.Retried == 0 {
		t.Error("no faulted call was retried")
	}
	if restart != nil && restarts < 3 {
		t.Errorf("only %d restarts during the history", restarts)
	}
}

func TestFaultsSurvived(t *testing.T) {
	t.Run("faults at 10% on a random history", func(t *testing.T) { faultsSurvived(t, nil) })
	t.Run("the same with enrich and the CDC writer killed and restarted mid-run", func(t *testing.T) {
		n := 0
		faultsSurvived(t, func(p *local.Pipeline) error {
			n++
			if n%2 == 1 {
				return p.RestartEnrich()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return p.RestartWriter(ctx)
		})
	})
}
