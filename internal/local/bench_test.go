package local_test

import (
	"context"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// BenchmarkPipeline pushes a burst of orders through the whole local
// pipeline (MariaDB commit to OrderEnriched) as fast as the workers can
// commit, and reports the end-to-end throughput: the pipeline's capacity
// on this machine. Latency under a burst is only the length of the queue;
// the latency figures come from `etl local bench`, which commits at a
// steady rate below that capacity.
func BenchmarkPipeline(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MariaDB, kinesalite and dynalite")
	}
	ctx := context.Background()
	p, err := local.Start(ctx, local.Config{Root: testenv.RepoRoot(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const orders, items = 2000, 2
	var throughput float64
	b.ResetTimer()
	for b.Loop() {
		res, err := p.Bench(ctx, local.BenchConfig{Orders: orders, ItemsPerOrder: items, Workers: 16})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Differences) > 0 {
			b.Fatalf("OrderEnriched differs from the source: %v", res.Differences[0])
		}
		throughput += res.Throughput
	}
	b.ReportMetric(throughput/float64(b.N), "items/s")
}
