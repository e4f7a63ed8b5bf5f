package local

import (
	"slices"
	"sync"
	"time"

	"github.com/unified-streaming-etl/etl/internal/binlog"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// commitLog links what the sink wrote back to when the source committed
// it. The CDC reader reports, for every record, its version and the GTID
// of its transaction; whoever commits on the source (the SQL replayer, the
// load generator) reports each GTID's commit time.
type commitLog struct {
	mu       sync.Mutex
	gtidOf   map[int64]string // record version -> source transaction
	commitAt map[string]time.Time
}

func newCommitLog() *commitLog {
	return &commitLog{gtidOf: map[int64]string{}, commitAt: map[string]time.Time{}}
}

func (c *commitLog) record(e binlog.Emitted) {
	if e.GTID == "" {
		return // full-load records have no transaction
	}
	c.mu.Lock()
	c.gtidOf[e.Version] = e.GTID
	c.mu.Unlock()
}

func (c *commitLog) commit(cm Commit) {
	c.mu.Lock()
	c.commitAt[cm.GTID] = cm.At
	c.mu.Unlock()
}

// committed returns the commit time of the transaction that produced the
// record of this version.
func (c *commitLog) committed(version int64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gtid, ok := c.gtidOf[version]
	if !ok {
		return time.Time{}, false
	}
	at, ok := c.commitAt[gtid]
	return at, ok
}

// Latency summarises commit-to-DynamoDB latencies.
type Latency struct {
	// Count items were measured; Unmeasured had no known commit time
	// (rows from the full load, or committed by another client).
	Count, Unmeasured       int
	Avg, P50, P95, P99, Max time.Duration
}

// Latency measures, for each item, the time from the source commit of the
// change that produced the item's current version to its write to
// OrderEnriched (by enrich in one hop, by the sink in the original's shape).
//
// Commit time is when the COMMIT of that transaction returned to the
// client that issued it (the replayer or load generator; on this machine's
// clock). The write time is the item's updatedAt, which sink.Writer stamps
// when it starts writing the batch. An enriched row's version is that of
// the newer of its two sides (docs/design.md §3.6), so its latency is measured
// from the commit of whichever change — order or item — made the row what
// it is.
func (p *Pipeline) Latency(items []sink.Item) Latency {
	samples := make([]time.Duration, 0, len(items))
	unmeasured := 0
	for _, it := range items {
		at, ok := p.commits.committed(it.Version)
		if !ok || it.UpdatedAt.IsZero() {
			unmeasured++
			continue
		}
		samples = append(samples, it.UpdatedAt.Sub(at))
	}
	l := summarise(samples)
	l.Unmeasured = unmeasured
	return l
}

func summarise(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	// Nearest-rank percentiles.
	pct := func(q float64) time.Duration {
		i := int(q*float64(len(samples))+0.999999) - 1
		return samples[max(0, min(i, len(samples)-1))]
	}
	return Latency{
		Count: len(samples),
		Avg:   sum / time.Duration(len(samples)),
		P50:   pct(0.50),
		P95:   pct(0.95),
		P99:   pct(0.99),
		Max:   samples[len(samples)-1],
	}
}
