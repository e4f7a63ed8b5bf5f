package local

import "github.com/unified-streaming-etl/etl/internal/order"

// DifferingFields names the enriched attributes in which got differs from
// want, compared as Compare compares them (amounts as exact decimals; the
// bookkeeping fields event_ts, op and version not at all).
func DifferingFields(want, got *order.Enriched) []string { return differingFields(want, got) }
