package cdc_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc"
)

// DMS writes Kinesis records in one of two message formats: json, the
// service default, spreads a record over many tab-indented lines;
// json-unformatted (what the data stack configures) writes it on one line.
// The fixtures are multi-line; each must decode to the same change, or the
// same error, in both formats.
func TestDecodeReadsBothDMSMessageFormats(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(raw) {
				t.Skip("not JSON; the malformed-input cases cover it")
			}
			var oneLine, indented bytes.Buffer
			if err := json.Compact(&oneLine, raw); err != nil {
				t.Fatal(err)
			}
			if err := json.Indent(&indented, raw, "", "\t"); err != nil {
				t.Fatal(err)
			}
			if bytes.ContainsAny(oneLine.Bytes(), "\n\r") || !bytes.Contains(indented.Bytes(), []byte("\n\t")) {
				t.Fatal("the two forms are not one-line and multi-line")
			}
			wantChange, wantErr := cdc.Decode(indented.Bytes())
			gotChange, gotErr := cdc.Decode(oneLine.Bytes())
			if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
				t.Fatalf("json-unformatted: error %v; json: error %v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(gotChange, wantChange) {
				t.Errorf("json-unformatted decodes to %+v\njson decodes to %+v", gotChange, wantChange)
			}
		})
	}
}
