package jsonscan_test

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/cdc/cdctest"
	"github.com/unified-streaming-etl/etl/internal/cdc/jsonscan"
)

// These benchmarks measure jsonscan against github.com/go-json-experiment/json
// (the proposed encoding/json/v2) on the same DMS records; the package
// comment records the figures.

// compareRecords are 1,000 DMS change records in the json-unformatted and
// json (tab-indented) message formats.
func compareRecords(b *testing.B) map[string][][]byte {
	compact := cdctest.Records(1000)
	indented := make([][]byte, len(compact))
	for i, r := range compact {
		v := jsontext.Value(bytes.Clone(r))
		if err := v.Indent(jsontext.WithIndent("\t")); err != nil {
			b.Fatal(err)
		}
		indented[i] = v
	}
	return map[string][][]byte{"json-unformatted": compact, "json": indented}
}

// BenchmarkValidateRecord validates a whole record and finds its end, the
// work under every read.
func BenchmarkValidateRecord(b *testing.B) {
	for _, format := range []string{"json-unformatted", "json"} {
		recs := compareRecords(b)[format]
		b.Run(format+"/jsonscan", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				s := jsonscan.New(recs[i%len(recs)])
				if _, err := s.Value(1); err != nil {
					b.Fatal(err)
				}
				if err := s.End(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(format+"/go-json-experiment", func(b *testing.B) {
			b.ReportAllocs()
			var r bytes.Reader
			dec := jsontext.NewDecoder(&r)
			for i := 0; b.Loop(); i++ {
				r.Reset(recs[i%len(recs)])
				dec.Reset(&r)
				if _, err := dec.ReadValue(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// dmsRecord is what a go-json-experiment decoder would read a record into:
// the metadata cdc.Decode checks and the columns as raw JSON values, whose
// text (exact decimals) it would then convert. cdc.Decode does that
// conversion too, so this side does less work.
type dmsRecord struct {
	Data     map[string]jsontext.Value `json:"data"`
	Metadata struct {
		RecordType       string `json:"record-type"`
		Operation        string `json:"operation"`
		PartitionKeyType string `json:"partition-key-type"`
		SchemaName       string `json:"schema-name"`
		TableName        string `json:"table-name"`
		Timestamp        string `json:"timestamp"`
	} `json:"metadata"`
}

// BenchmarkDecodeRecord decodes a record: cdc.Decode on jsonscan against
// json.Unmarshal into dmsRecord, names matched without regard to case as
// cdc.Decode matches them.
func BenchmarkDecodeRecord(b *testing.B) {
	for _, format := range []string{"json-unformatted", "json"} {
		recs := compareRecords(b)[format]
		b.Run(format+"/jsonscan", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := cdc.Decode(recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(format+"/go-json-experiment", func(b *testing.B) {
			b.ReportAllocs()
			opts := json.MatchCaseInsensitiveNames(true)
			for i := 0; b.Loop(); i++ {
				var r dmsRecord
				if err := json.Unmarshal(recs[i%len(recs)], &r, opts); err != nil {
					b.Fatal(err)
				}
				if len(r.Data) == 0 || r.Metadata.TableName == "" {
					b.Fatalf("decoded nothing: %+v", r)
				}
			}
		})
	}
}
