package ops

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/verify"
)

// Key identifies an order-item.
type Key struct{ OrderID, ItemID int64 }

func (k Key) String() string { return fmt.Sprintf("order %d item %d", k.OrderID, k.ItemID) }

// Mismatch is an order-item present on both sides with different
// attributes.
type Mismatch struct {
	Key
	Fields []FieldDiff
}

// FieldDiff is one attribute's value in the source join and in the table,
// as JSON ("absent" when the attribute is missing).
type FieldDiff struct{ Name, Source, Table string }

// Report is how OrderEnriched compares with the join of the source
// tables.
type Report struct {
	// SourceRows is the size of the source join, TableItems of the table.
	SourceRows, TableItems int
	// Missing rows are in the source join but not in the table.
	Missing []Key
	// Unexpected items are in the table but not in the source join.
	Unexpected []Key
	// Differing rows are on both sides with different attributes.
	Differing []Mismatch
	// Drift rows differ only in their product columns (productName,
	// productPrice). The pipeline enriches a row with the catalogue of the
	// moment the row last changed, as the original KDA application did,
	// and does not rewrite rows when the catalogue changes; the source join
	// uses today's catalogue. So drift follows from every catalogue change
	// and is not a fault.
	Drift []Mismatch
}

// Equal reports whether the table matches the source join exactly, product
// columns included.
func (r Report) Equal() bool { return r.Consistent() && len(r.Drift) == 0 }

// Consistent reports whether the table matches the source join apart from
// catalogue drift: nothing missing, nothing unexpected, and no difference
// outside the product columns.
func (r Report) Consistent() bool {
	return len(r.Missing) == 0 && len(r.Unexpected) == 0 && len(r.Differing) == 0
}

// Differences counts the rows that differ in more than catalogue drift.
func (r Report) Differences() int { return len(r.Missing) + len(r.Unexpected) + len(r.Differing) }

// catalogueFields are the enriched attributes taken from the catalogue.
var catalogueFields = map[string]bool{"productName": true, "productPrice": true}

// isDrift reports whether the differing attributes are all product columns.
func isDrift(fields []FieldDiff) bool {
	for _, f := range fields {
		if !catalogueFields[f.Name] {
			return false
		}
	}
	return len(fields) > 0
}

// Diff compares the expected rows with the table's items, both ordered by
// key, as local mode checks itself (verify.Compare), and records the
// values of differing attributes.
func Diff(want []order.Enriched, got []sink.Item) Report {
	r := Report{SourceRows: len(want), TableItems: len(got)}
	diffs := verify.Compare(want, got)
	if len(diffs) == 0 {
		return r
	}
	// Both sides are sorted by key, so the differing rows are found by
	// binary search rather than by indexing everything.
	find := func(k Key) (*order.Enriched, *order.Enriched) {
		i, ok := slices.BinarySearchFunc(want, k, func(e order.Enriched, k Key) int { return compareKey(Key{e.OrderID, e.ItemID}, k) })
		j, ok2 := slices.BinarySearchFunc(got, k, func(e sink.Item, k Key) int { return compareKey(Key{e.OrderID, e.ItemID}, k) })
		if !ok || !ok2 {
			return nil, nil
		}
		return &want[i], &got[j].Enriched
	}
	for _, d := range diffs {
		k := Key{d.OrderID, d.ItemID}
		switch d.Problem {
		case "missing":
			r.Missing = append(r.Missing, k)
		case "unexpected":
			r.Unexpected = append(r.Unexpected, k)
		default:
			w, g := find(k)
			if w == nil {
				// Duplicate keys on one side, which neither source primary
				// keys nor DynamoDB allow; keep Compare's description.
				r.Differing = append(r.Differing, Mismatch{Key: k, Fields: []FieldDiff{{Name: d.Problem}}})
				continue
			}
			m := Mismatch{Key: k, Fields: fieldDiffs(w, g)}
			if isDrift(m.Fields) {
				r.Drift = append(r.Drift, m)
			} else {
				r.Differing = append(r.Differing, m)
			}
		}
	}
	return r
}

func compareKey(a, b Key) int {
	return cmp.Or(cmp.Compare(a.OrderID, b.OrderID), cmp.Compare(a.ItemID, b.ItemID))
}

// fieldDiffs renders the attributes verify.DifferingFields names with both
// values, in the record's JSON form: strings quoted, amounts exact.
func fieldDiffs(want, got *order.Enriched) []FieldDiff {
	names := verify.DifferingFields(want, got)
	w, g := jsonFields(want), jsonFields(got)
	out := make([]FieldDiff, len(names))
	for i, n := range names {
		out[i] = FieldDiff{Name: n, Source: w.value(n), Table: g.value(n)}
	}
	return out
}

type fields map[string]json.RawMessage

func jsonFields(e *order.Enriched) fields {
	b, err := json.Marshal(e)
	if err != nil {
		return nil // not reachable: every field marshals
	}
	var f fields
	_ = json.Unmarshal(b, &f)
	return f
}

func (f fields) value(name string) string {
	v, ok := f[name]
	if !ok {
		return "absent"
	}
	return string(v)
}

// DynamoDB is the part of the DynamoDB client verify uses.
type DynamoDB interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Verify reads the join of the source tables from db, the whole table
// from DynamoDB (consistently), and compares them. progress, when not
// nil, gets the item count of every page scanned, so a long scan can
// show progress.
func Verify(ctx context.Context, db *sql.DB, ddb DynamoDB, table string, products refdata.Catalogue, progress func(items int)) (Report, error) {
	want, err := verify.Expected(ctx, db, products)
	if err != nil {
		return Report{}, err
	}
	got, err := sink.ScanItems(ctx, ddb, table, progress)
	if err != nil {
		return Report{}, err
	}
	return Diff(want, got), nil
}

// Write prints the report: a one-line verdict, then per kind of
// difference its count and its first limit rows.
func (r Report) Write(w io.Writer, table string, limit int) error {
	var b strings.Builder
	list := func(title string, n int, line func(i int) string) {
		fmt.Fprintf(&b, "\n%s: %d\n", title, n)
		for i := range min(n, limit) {
			fmt.Fprintf(&b, "  %s\n", line(i))
		}
		if n > limit {
			fmt.Fprintf(&b, "  ... and %d more\n", n-limit)
		}
	}
	mismatch := func(m Mismatch) string {
		parts := make([]string, len(m.Fields))
		for k, f := range m.Fields {
			if f.Source == "" && f.Table == "" {
				parts[k] = f.Name
				continue
			}
			parts[k] = fmt.Sprintf("%s: source %s, table %s", f.Name, f.Source, f.Table)
		}
		return m.Key.String() + ": " + strings.Join(parts, "; ")
	}
	drift := func() {
		list("Catalogue drift (product columns as of the row's last change, catalogue changed since)", len(r.Drift),
			func(i int) string { return mismatch(r.Drift[i]) })
	}
	switch {
	case r.Equal():
		fmt.Fprintf(&b, "OK: %s matches the join of the source tables (%d rows): nothing lost, nothing extra, no attribute differs.\n", table, r.SourceRows)
	case r.Consistent():
		fmt.Fprintf(&b, "OK: %s matches the join of the source tables (%d rows): nothing lost, nothing extra; "+
			"catalogue drift in %d rows, whose product name or price changed in the catalogue after the row last changed.\n",
			table, r.SourceRows, len(r.Drift))
		drift()
	default:
		fmt.Fprintf(&b, "DIFFERENT: %s (%d items) differs from the join of the source tables (%d rows) in %d rows.\n",
			table, r.TableItems, r.SourceRows, r.Differences())
		list("Missing (in the source, not in "+table+")", len(r.Missing), func(i int) string { return r.Missing[i].String() })
		list("Unexpected (in "+table+", not in the source)", len(r.Unexpected), func(i int) string { return r.Unexpected[i].String() })
		list("Differing attributes", len(r.Differing), func(i int) string { return mismatch(r.Differing[i]) })
		drift()
	}
	_, err := io.WriteString(w, b.String())
	return err
}
