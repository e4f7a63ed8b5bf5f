package enrich

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{
		EnvStateTable: "EnrichState", EnvOutputTable: "OrderEnriched", EnvOutputStream: "order-item-enriched", EnvSourceStream: "unified-order-stream",
		EnvReferenceDataURI: "s3://reference/products.json", "AWS_LAMBDA_FUNCTION_NAME": "Enrich",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantTTL time.Duration
		wantErr string
	}{
		{name: "the tombstone retention defaults to fourteen days", env: base, wantTTL: 14 * 24 * time.Hour},
		{name: "the tombstone retention is read in days", env: with(EnvTombstoneDays, "30"), wantTTL: 30 * 24 * time.Hour},
		{name: "a retention that is not a number of days is refused", env: with(EnvTombstoneDays, "1.5"), wantErr: "STATE_TOMBSTONE_DAYS"},
		{name: "a zero retention is refused", env: with(EnvTombstoneDays, "0"), wantErr: "STATE_TOMBSTONE_DAYS"},
		{name: "a missing state table is refused", env: with(EnvStateTable, ""), wantErr: "STATE_TABLE is required"},
		{name: "a missing output table is refused", env: with(EnvOutputTable, " "), wantErr: "OUTPUT_TABLE is required"},
		{name: "the enriched stream is optional", env: with(EnvOutputStream, " "), wantTTL: 14 * 24 * time.Hour},
		{name: "a missing source stream is refused", env: with(EnvSourceStream, ""), wantErr: "SOURCE_STREAM is required"},
		{name: "missing reference data is refused", env: with(EnvReferenceDataURI, ""), wantErr: "REFERENCE_DATA_URI is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TombstoneRetention != tt.wantTTL || cfg.StateTable != "EnrichState" || cfg.OutputTable != "OrderEnriched" || cfg.OutputStream != strings.TrimSpace(tt.env[EnvOutputStream]) || cfg.SourceStream != "unified-order-stream" ||
				cfg.ReferenceDataURI != "s3://reference/products.json" || cfg.Source != "Enrich" || cfg.DLQURL != "" {
				t.Errorf("config = %+v", cfg)
			}
		})
	}
}
