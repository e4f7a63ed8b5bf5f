package ops

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/retry"
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
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// DefaultRangeOrders is how many orders Verify compares at a time.
const DefaultRangeOrders = 1000

// VerifyOptions tune Verify; the zero value is usable.
type VerifyOptions struct {
	// RangeOrders is how many orders (with all their items) are compared
	// at a time, which bounds memory; default DefaultRangeOrders.
	RangeOrders int
	// Progress, when not nil, gets the running totals after every range of
	// the source compared and every page of the table scanned.
	Progress func(VerifyProgress)
}

// VerifyProgress says how far Verify has come.
type VerifyProgress struct {
	// SourceRows rows of the source join have been compared, up to
	// orderId LastOrderID; then (Scanning) TableItems keys of the table
	// have been checked against the source.
	SourceRows  int
	LastOrderID int64
	Scanning    bool
	TableItems  int
}

// batchGetKeys is BatchGetItem's limit of keys per call.
const batchGetKeys = 100

// verifyRetry retries a chunk's BatchGetItem calls: throttled calls and
// calls DynamoDB answered in part (errUnprocessed) share one budget of
// attempts, with growing pauses between them, so a table that stays
// throttled fails the read instead of holding it forever.
var verifyRetry = retry.Policy{
	MaxAttempts: 30, BaseDelay: 50 * time.Millisecond, MaxDelay: 5 * time.Second, AttemptTimeout: 30 * time.Second,
	Retryable: func(err error) bool { return errors.Is(err, errUnprocessed) || retry.IsRetryable(err) },
}

// errUnprocessed marks a BatchGetItem answer that left keys unprocessed.
var errUnprocessed = errors.New("keys unprocessed")

// Verify compares OrderEnriched with the join of the source tables in two
// passes whose memory is bounded by one range of orders (and one page of
// the table), not by the table, plus the differences found:
//
//  1. the source join a range of RangeOrders orders at a time, each row
//     compared with the table's item of the same key, read with
//     consistent BatchGetItem calls: rows missing or differing;
//  2. a consistent Scan of the table's keys only, each page's keys looked
//     up in the source: items the source does not have.
//
// The table is read once in each pass, so, while the pipeline is busy, a
// row can change between them, as it can during any scan.
func Verify(ctx context.Context, db *sql.DB, ddb DynamoDB, table string, products refdata.Catalogue, opts VerifyOptions) (Report, error) {
	if opts.RangeOrders <= 0 {
		opts.RangeOrders = DefaultRangeOrders
	}
	var r Report
	var p VerifyProgress
	report := func() {
		if opts.Progress != nil {
			opts.Progress(p)
		}
	}
	err := SourceRanges(ctx, db, opts.RangeOrders, func(lo, hi int64) error {
		want, err := verify.ExpectedRange(ctx, db, products, lo, hi)
		if err != nil {
			return err
		}
		got, err := getItems(ctx, ddb, table, want)
		if err != nil {
			return err
		}
		d := Diff(want, got)
		r.SourceRows += len(want)
		r.Missing = append(r.Missing, d.Missing...)
		r.Differing = append(r.Differing, d.Differing...)
		r.Drift = append(r.Drift, d.Drift...)
		p.SourceRows, p.LastOrderID = r.SourceRows, hi
		report()
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	err = scanKeys(ctx, ddb, table, func(keys []Key) error {
		unexpected, err := notInSource(ctx, db, keys)
		if err != nil {
			return err
		}
		r.Unexpected = append(r.Unexpected, unexpected...)
		r.TableItems += len(keys)
		p.Scanning, p.TableItems = true, r.TableItems
		report()
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	slices.SortFunc(r.Unexpected, compareKey)
	return r, nil
}

// SourceRanges calls fn with consecutive ranges of orderId, lo to hi
// inclusive, each holding n orders of orders.order (the last fewer), in
// ascending order.
func SourceRanges(ctx context.Context, db *sql.DB, n int, fn func(lo, hi int64) error) error {
	after := int64(math.MinInt64)
	for {
		rows, err := db.QueryContext(ctx, "SELECT orderId FROM orders.`order` WHERE orderId > ? ORDER BY orderId LIMIT ?", after, n)
		if err != nil {
			return fmt.Errorf("read the source's orderIds: %w", err)
		}
		var lo, hi int64
		count := 0
		for rows.Next() {
			if err := rows.Scan(&hi); err != nil {
				rows.Close()
				return err
			}
			if count == 0 {
				lo = hi
			}
			count++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if count == 0 {
			return nil
		}
		if err := fn(lo, hi); err != nil {
			return err
		}
		if count < n {
			return nil
		}
		after = hi
	}
}

// getItems reads the items with the keys of want (ordered by key) with
// consistent reads and returns those that exist, decoded, ordered by key.
// BatchGetItem takes 100 keys a call and answers what it could not read in
// UnprocessedKeys (docs/aws-facts.md §6,
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
func getItems(ctx context.Context, ddb DynamoDB, table string, want []order.Enriched) ([]sink.Item, error) {
	chunks := make([][]sink.Item, (len(want)+batchGetKeys-1)/batchGetKeys)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	c := 0
	for part := range slices.Chunk(want, batchGetKeys) {
		got := &chunks[c]
		c++
		keys := make([]map[string]types.AttributeValue, len(part))
		for i, e := range part {
			keys[i] = sink.Key(e.OrderID, e.ItemID)
		}
		g.Go(func() error {
			// Keys DynamoDB did not get to (throttling, size) come back as
			// UnprocessedKeys: the next attempt asks for those only. A
			// malformed item is not retried.
			var bad error
			err := verifyRetry.Do(ctx, func(ctx context.Context) error {
				out, err := ddb.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
					table: {Keys: keys, ConsistentRead: aws.Bool(true)},
				}})
				if err != nil {
					return err
				}
				for _, av := range out.Responses[table] {
					it, err := sink.DecodeItem(av)
					if err != nil {
						bad = fmt.Errorf("%s holds an item that is not an enriched order-item: %w", table, err)
						return bad
					}
					*got = append(*got, it)
				}
				keys = out.UnprocessedKeys[table].Keys
				if len(keys) > 0 {
					return fmt.Errorf("%w: %d of %d", errUnprocessed, len(keys), len(part))
				}
				return nil
			})
			if bad != nil {
				return bad
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", table, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	got := slices.Concat(chunks...)
	slices.SortFunc(got, func(a, b sink.Item) int {
		return compareKey(Key{a.OrderID, a.ItemID}, Key{b.OrderID, b.ItemID})
	})
	return got, nil
}

// scanKeys scans the table's keys with consistent reads and calls fn with
// every page's keys: a page is at most 1 MB read, so memory is one page
// (docs/aws-facts.md §6,
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html).
func scanKeys(ctx context.Context, ddb DynamoDB, table string, fn func([]Key) error) error {
	pages := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{
		TableName:            aws.String(table),
		ConsistentRead:       aws.Bool(true),
		ProjectionExpression: aws.String("#o, #i"),
		ExpressionAttributeNames: map[string]string{
			"#o": sink.AttrOrderID, "#i": sink.AttrItemID,
		},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("scan %s: %w", table, err)
		}
		keys := make([]Key, len(page.Items))
		for i, av := range page.Items {
			if keys[i].OrderID, keys[i].ItemID, err = sink.DecodeKey(av); err != nil {
				return fmt.Errorf("%s holds an item that is not an enriched order-item: %w", table, err)
			}
		}
		if err := fn(keys); err != nil {
			return err
		}
	}
	return nil
}

// lookupOrders bounds the orderIds of one query.
const lookupOrders = 500

// notInSource returns the keys that are not rows of the source join.
func notInSource(ctx context.Context, db *sql.DB, keys []Key) ([]Key, error) {
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.OrderID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	present := make(map[Key]bool, len(keys))
	for chunk := range slices.Chunk(ids, lookupOrders) {
		list, args := inList(chunk)
		rows, err := db.QueryContext(ctx, "SELECT i.orderId, i.itemId FROM orders.order_item i "+
			"JOIN orders.`order` o ON o.orderId = i.orderId WHERE i.orderId IN "+list, args...)
		if err != nil {
			return nil, fmt.Errorf("look up the table's keys in the source: %w", err)
		}
		for rows.Next() {
			var k Key
			if err := rows.Scan(&k.OrderID, &k.ItemID); err != nil {
				rows.Close()
				return nil, err
			}
			present[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	var out []Key
	for _, k := range keys {
		if !present[k] {
			out = append(out, k)
		}
	}
	return out, nil
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
