package cdc_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc"
)

func TestDecodeTellsControlRecordsFromForeignTables(t *testing.T) {
	for file, control := range map[string]bool{
		"control-create-table.json":     true,
		"control-apply-exceptions.json": true,
		"foreign-table.json":            false,
		"foreign-schema.json":           false,
	} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = cdc.Decode(b)
			if !errors.Is(err, cdc.ErrNotData) || errors.Is(err, cdc.ErrControl) != control {
				t.Errorf("Decode error %v: ErrNotData %v, ErrControl %v; want true, %v", err, errors.Is(err, cdc.ErrNotData), errors.Is(err, cdc.ErrControl), control)
			}
		})
	}
}
