package enrich

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// An upload that empties products.json must not strip the rows emitted
// afterwards of their product names and prices.
func TestHandlerKeepsTheCatalogueWhenItBecomesEmptyOnRefresh(t *testing.T) {
	const bucket, key = "reference-bucket", "reference-data/products.json"
	fake := &fakeS3{bucket: bucket, key: key, body: kettle + lamp, etag: `"v1"`}
	clk := &clock{t: testNow}
	var logs bytes.Buffer
	ref, err := NewReference("s3://"+bucket+"/"+key, fake, WithClock(clk.now),
		WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, ref)
	s := newSource()

	products := func() []string {
		var out []string
		for _, r := range f.stream.rows() {
			name, price := "none", "none"
			if r.ProductName != nil {
				name = *r.ProductName
			}
			if r.ProductPrice != nil {
				price = r.ProductPrice.String()
			}
			out = append(out, name+" "+price)
		}
		return out
	}

	if resp := f.handle(t, event(s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1))); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("first batch failed: %v", seqs(resp))
	}
	fake.set("", `"empty"`, nil)
	clk.advance(2 * DefaultRefreshInterval)
	f.stream.entries = nil
	if resp := f.handle(t, event(s.item("update", 1, 7, 2), s.item("insert", 1, 42, 1))); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("second batch failed: %v", seqs(resp))
	}

	if got, want := strings.Join(products(), "; "), "Handcrafted Marble Kettle 472.59; Ergonomic Steel Lamp 19.99"; got != want {
		t.Errorf("rows after the empty upload carry products %q, want %q from the last good catalogue", got, want)
	}
	if gets, _, _ := fake.counts(); gets != 2 {
		t.Errorf("S3 asked %d times, want 2: the refresh must have read the empty object", gets)
	}
	if !strings.Contains(logs.String(), "keeping the loaded catalogue") || !strings.Contains(logs.String(), MetricReferenceRefreshFailures) {
		t.Errorf("log %q, want the refresh failure and its metric", logs.String())
	}
}
