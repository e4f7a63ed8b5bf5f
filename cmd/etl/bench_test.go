package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/verify"
)

func benchResult(shape local.Shape, avg time.Duration, invocations int64) local.BenchResult {
	return local.BenchResult{
		Shape: shape, Orders: 1000, Items: 2000, Throughput: 290.44, Invocations: invocations,
		Latency:     local.Latency{Count: 2000, Avg: avg, P50: avg - time.Millisecond, P95: 2 * avg, P99: 3 * avg, Max: 4 * avg},
		Differences: []verify.Difference{{Problem: "missing"}},
	}
}

func TestBenchJSON(t *testing.T) {
	t.Run("one shape is one object with the agreed fields", func(t *testing.T) {
		var buf bytes.Buffer
		if err := writeBenchJSON(&buf, true, false, []local.BenchResult{benchResult(local.ShapeDefault, 412500*time.Microsecond, 90)}); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%v:\n%s", err, buf.String())
		}
		for _, k := range []string{"items", "lost", "itemsPerSecond", "latencyMs", "invocationsPer1000Items", "shape", "awsTiming"} {
			if _, ok := got[k]; !ok {
				t.Errorf("no %q in %s", k, buf.String())
			}
		}
		lat, _ := got["latencyMs"].(map[string]any)
		var keys []string
		for k := range lat {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"avg", "max", "p50", "p95", "p99"}; !slices.Equal(keys, want) {
			t.Errorf("latencyMs keys %v, want %v", keys, want)
		}
		if got["items"] != 2000.0 || got["lost"] != 1.0 || lat["avg"] != 412.5 || got["invocationsPer1000Items"] != 45.0 {
			t.Errorf("values %s", buf.String())
		}
	})
	t.Run("--compare puts one object per shape under shapes", func(t *testing.T) {
		var buf bytes.Buffer
		results := []local.BenchResult{
			benchResult(local.ShapeOriginal, time.Second, 180), benchResult(local.ShapeDefault, 500*time.Millisecond, 90), benchResult(local.ShapeEFO, 200*time.Millisecond, 90),
		}
		if err := writeBenchJSON(&buf, true, true, results); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Items  int `json:"items"`
			Shapes map[string]struct {
				Items     int                `json:"items"`
				LatencyMs map[string]float64 `json:"latencyMs"`
			} `json:"shapes"`
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Items != 2000 || len(got.Shapes) != 3 {
			t.Fatalf("got %s", buf.String())
		}
		for shape, avg := range map[string]float64{"original": 1000, "default": 500, "efo": 200} {
			if s, ok := got.Shapes[shape]; !ok || s.Items != 2000 || s.LatencyMs["avg"] != avg {
				t.Errorf("shape %s: %+v", shape, s)
			}
		}
	})
}

func TestCompareTable(t *testing.T) {
	var buf bytes.Buffer
	writeCompareTable(&buf, true, []local.BenchResult{
		benchResult(local.ShapeOriginal, time.Second, 180), benchResult(local.ShapeDefault, 500*time.Millisecond, 90), benchResult(local.ShapeEFO, 200*time.Millisecond, 90),
	})
	out := buf.String()
	for _, want := range []string{"items/s", "avg ms", "p50 ms", "p95 ms", "p99 ms", "invocations/1k items", "original", "default", "efo", "AWS delivery timing"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
