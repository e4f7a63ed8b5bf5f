package cdc_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/cdc/cdctest"
)

// benchRecords are the inputs of the preprocess benchmarks in both message
// formats DMS offers: json-unformatted (one line) and json (tab-indented).
func benchRecords(b *testing.B) map[string][][]byte {
	compact := cdctest.Records(1000)
	indented := make([][]byte, len(compact))
	for i, r := range compact {
		var buf bytes.Buffer
		if err := json.Indent(&buf, r, "", "\t"); err != nil {
			b.Fatal(err)
		}
		indented[i] = buf.Bytes()
	}
	return map[string][][]byte{"json-unformatted": compact, "json": indented}
}

// BenchmarkDecodeAppendFlat measures the preprocess path: decode a DMS
// record, normalise it and encode the flat record (docs/design.md §9).
func BenchmarkDecodeAppendFlat(b *testing.B) {
	for _, format := range []string{"json-unformatted", "json"} {
		recs := benchRecords(b)[format]
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for i := 0; b.Loop(); i++ {
				c, err := cdc.Decode(recs[i%len(recs)])
				if err != nil {
					b.Fatal(err)
				}
				buf = cdc.AppendFlat(buf[:0], &c)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkNaiveMapRoundTrip is the baseline docs/design.md §9 compares against:
// unmarshal into a map, reshape into a flat map, marshal.
func BenchmarkNaiveMapRoundTrip(b *testing.B) {
	for _, format := range []string{"json-unformatted", "json"} {
		recs := benchRecords(b)[format]
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := cdctest.NaiveFlat(recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
