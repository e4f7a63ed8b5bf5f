package enrich

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/refdata"
)

const (
	kettle = `{"productId":7,"productName":"Handcrafted Marble Kettle","productPrice":472.59}` + "\n"
	lamp   = `{"productId":42,"productName":"Ergonomic Steel Lamp","productPrice":19.99}` + "\n"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func productNames(t *testing.T, r *Reference) string {
	t.Helper()
	cat, err := r.Catalogue(context.Background())
	if err != nil {
		t.Fatalf("Catalogue: %v", err)
	}
	var names []string
	for _, id := range []int64{7, 42} {
		if p, ok := cat[id]; ok {
			names = append(names, p.ProductName)
		}
	}
	return strings.Join(names, ",")
}

func TestReferenceFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "products.json")
	write := func(content string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Date(2024, 3, 18, 9, 0, 0, 0, time.UTC)
	write(kettle, mtime)
	clk := &clock{t: testNow}
	r, err := NewReference("file://"+path, nil, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the catalogue is loaded on first use", func(t *testing.T) {
		if got := productNames(t, r); got != "Handcrafted Marble Kettle" {
			t.Errorf("products %q", got)
		}
	})
	t.Run("a changed file is not looked at before the refresh interval", func(t *testing.T) {
		write(kettle+lamp, mtime.Add(time.Second))
		clk.advance(30 * time.Second)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle" {
			t.Errorf("products %q, want the cached catalogue", got)
		}
	})
	t.Run("a changed file is reloaded once the interval has passed", func(t *testing.T) {
		clk.advance(31 * time.Second)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle,Ergonomic Steel Lamp" {
			t.Errorf("products %q, want the new file", got)
		}
	})
	t.Run("a broken file keeps the last good catalogue", func(t *testing.T) {
		write("{not json\n", mtime.Add(2*time.Second))
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle,Ergonomic Steel Lamp" {
			t.Errorf("products %q, want the last good catalogue", got)
		}
	})
	t.Run("a missing file at cold start is an error", func(t *testing.T) {
		r, err := NewReference("file://"+filepath.Join(dir, "missing.json"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Catalogue(context.Background()); err == nil || !strings.Contains(err.Error(), "missing.json") {
			t.Errorf("Catalogue error = %v, want one naming the file", err)
		}
	})
}

func TestReferenceFromS3(t *testing.T) {
	const bucket, key = "reference-bucket", "products/products.json"
	fake := &fakeS3{bucket: bucket, key: key, body: kettle, etag: `"5d41402abc4b2a76b9719d911017c592"`}
	clk := &clock{t: testNow}
	var logs bytes.Buffer // Catalogue runs on the test goroutine, so no lock is needed
	r, err := NewReference("s3://"+bucket+"/"+key, fake, WithClock(clk.now),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the catalogue is loaded on first use with an unconditional GET", func(t *testing.T) {
		if got := productNames(t, r); got != "Handcrafted Marble Kettle" {
			t.Errorf("products %q", got)
		}
		if gets, notModified, _ := fake.counts(); gets != 1 || notModified != 0 {
			t.Errorf("GETs %d (304: %d), want 1 (0)", gets, notModified)
		}
	})
	t.Run("an unchanged object costs one conditional GET answered 304", func(t *testing.T) {
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle" {
			t.Errorf("products %q", got)
		}
		if gets, notModified, _ := fake.counts(); gets != 2 || notModified != 1 {
			t.Errorf("GETs %d (304: %d), want 2 (1)", gets, notModified)
		}
		if logs.Len() != 0 {
			t.Errorf("a 304 was logged as a problem: %s", logs.String())
		}
	})
	t.Run("no request is made within the refresh interval", func(t *testing.T) {
		clk.advance(59 * time.Second)
		productNames(t, r)
		if gets, _, _ := fake.counts(); gets != 2 {
			t.Errorf("GETs %d, want still 2", gets)
		}
	})
	t.Run("a failing S3 keeps the last good catalogue", func(t *testing.T) {
		fake.set(kettle+lamp, `"new"`, s3Error(http.StatusInternalServerError,
			&smithy.GenericAPIError{Code: "InternalError", Message: "We encountered an internal error.", Fault: smithy.FaultServer}))
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle" {
			t.Errorf("products %q, want the last good catalogue", got)
		}
		if gets, _, _ := fake.counts(); gets != 3 {
			t.Errorf("GETs %d, want 3: the refresh must have asked S3", gets)
		}
		if !strings.Contains(logs.String(), "refresh failed") || !strings.Contains(logs.String(), "InternalError") {
			t.Errorf("log %q, want a warning naming the S3 error", logs.String())
		}
	})
	t.Run("a new ETag reloads the object", func(t *testing.T) {
		fake.set(kettle+lamp, `"new"`, nil)
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle,Ergonomic Steel Lamp" {
			t.Errorf("products %q, want the new object", got)
		}
	})
	t.Run("the reloaded object's ETag is the one asked about next", func(t *testing.T) {
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle,Ergonomic Steel Lamp" {
			t.Errorf("products %q", got)
		}
		if gets, notModified, _ := fake.counts(); gets != 5 || notModified != 2 {
			t.Errorf("GETs %d (304: %d), want 5 (2)", gets, notModified)
		}
	})
	t.Run("every object body is closed", func(t *testing.T) {
		if _, _, open := fake.counts(); open != 0 {
			t.Errorf("%d bodies left open", open)
		}
	})
	t.Run("a missing object at cold start is an error", func(t *testing.T) {
		r, err := NewReference("s3://other-bucket/products.json", fake)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Catalogue(context.Background())
		if nsk := (*s3types.NoSuchKey)(nil); !errors.As(err, &nsk) {
			t.Errorf("Catalogue error = %v, want NoSuchKey", err)
		}
	})
}

func TestNotModified(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"the SDK's error for a 304 answer is not-modified", s3Error(http.StatusNotModified, &smithy.GenericAPIError{Code: "NotModified", Message: "Not Modified"}), true},
		{"a wrapped 304 is still not-modified", fmt.Errorf("get: %w", s3Error(http.StatusNotModified, &smithy.GenericAPIError{Code: "NotModified"})), true},
		{"a 500 is a failure", s3Error(http.StatusInternalServerError, &smithy.GenericAPIError{Code: "InternalError"}), false},
		{"a missing key is a failure", s3Error(http.StatusNotFound, &s3types.NoSuchKey{}), false},
		{"a network error is a failure", errors.New("dial tcp: connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := notModified(tc.err); got != tc.want {
				t.Errorf("notModified(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestNewReferenceRejectsBadURIs(t *testing.T) {
	client := &fakeS3{}
	for _, uri := range []string{"", "products.json", "https://example.com/products.json", "s3://bucket", "s3:///key", "file://relative/products.json"} {
		t.Run(fmt.Sprintf("%q is refused with the variable's name", uri), func(t *testing.T) {
			if _, err := NewReference(uri, client); err == nil || !strings.Contains(err.Error(), EnvReferenceDataURI) {
				t.Errorf("NewReference(%q) error = %v", uri, err)
			}
		})
	}
}

// jsonLines decodes JSON log lines.
func jsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestReferenceRefusesAnEmptyCatalogue(t *testing.T) {
	const bucket, key = "reference-bucket", "reference-data/products.json"
	t.Run("an empty object at cold start is an error naming the object", func(t *testing.T) {
		fake := &fakeS3{bucket: bucket, key: key, body: "", etag: `"d41d8cd98f00b204e9800998ecf8427e"`}
		r, err := NewReference("s3://"+bucket+"/"+key, fake)
		if err != nil {
			t.Fatal(err)
		}
		cat, err := r.Catalogue(context.Background())
		if cat != nil || !errors.Is(err, refdata.ErrEmpty) || !strings.Contains(err.Error(), "s3://"+bucket+"/"+key) {
			t.Errorf("Catalogue = %v, %v; want an error naming s3://%s/%s and saying it is empty", cat, err, bucket, key)
		}
	})

	t.Run("an object emptied later keeps the last good catalogue, logged and counted as a metric", func(t *testing.T) {
		fake := &fakeS3{bucket: bucket, key: key, body: kettle + lamp, etag: `"v1"`}
		clk := &clock{t: testNow}
		var logs bytes.Buffer
		r, err := NewReference("s3://"+bucket+"/"+key, fake, WithClock(clk.now),
			WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		if err != nil {
			t.Fatal(err)
		}
		productNames(t, r)
		fake.set("\n", `"v2"`, nil)
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle,Ergonomic Steel Lamp" {
			t.Errorf("products %q, want the last good catalogue", got)
		}
		lines := jsonLines(t, logs.Bytes())
		if len(lines) != 1 {
			t.Fatalf("log lines %q, want one warning", logs.String())
		}
		line := lines[0]
		if line["level"] != "WARN" || !strings.Contains(fmt.Sprint(line["msg"]), "keeping the loaded catalogue") ||
			!strings.Contains(fmt.Sprint(line["error"]), "no products") || line["uri"] != "s3://"+bucket+"/"+key {
			t.Errorf("log line %v", line)
		}
		// The line is an embedded-metric-format document: the metric's
		// value at the root, declared under _aws with a dimension that is
		// also at the root.
		if line[MetricReferenceRefreshFailures] != 1.0 || line["FunctionName"] == "" {
			t.Errorf("metric value or dimension missing: %v", line)
		}
		meta, _ := line["_aws"].(map[string]any)
		wantMeta := map[string]any{
			"Timestamp": float64(testNow.Add(time.Minute).UnixMilli()),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  MetricsNamespace,
				"Dimensions": []any{[]any{"FunctionName"}},
				"Metrics":    []any{map[string]any{"Name": MetricReferenceRefreshFailures, "Unit": "Count"}},
			}},
		}
		if !reflect.DeepEqual(meta, wantMeta) {
			t.Errorf("_aws = %v, want %v", meta, wantMeta)
		}
	})
}
