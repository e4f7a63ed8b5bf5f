package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/refdata"
)

// Products gives the handler the current product catalogue.
type Products interface {
	Catalogue(ctx context.Context) (refdata.Catalogue, error)
}

// ObjectGetter is the part of the S3 client the reference loader uses.
type ObjectGetter interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// DefaultRefreshInterval is how often the loader asks whether the
// reference data changed: cheap (a conditional GET or a stat), and a
// minute is as fresh as a product catalogue needs to be.
const DefaultRefreshInterval = time.Minute

// Reference loads the product catalogue from REFERENCE_DATA_URI, caches
// it, and reloads it when the object changes: the S3 ETag (asked with a
// conditional GetObject, so an unchanged object costs one small call) or
// the file's modification time and size. It checks at most once per
// interval. A catalogue that cannot be read, parsed, or holds no product is
// an error at cold start (naming the URI); on refresh the last good
// catalogue stays in use, and a warning that is also the metric
// MetricReferenceRefreshFailures says so.
type Reference struct {
	uri      string
	fetch    func(ctx context.Context, tag string) (cat refdata.Catalogue, newTag string, err error)
	interval time.Duration
	now      func() time.Time
	logger   *slog.Logger

	mu         sync.Mutex
	cat        refdata.Catalogue
	tag        string
	checked    time.Time
	refreshing bool
}

// ReferenceOption adjusts a Reference.
type ReferenceOption func(*Reference)

// WithRefreshInterval sets how often the source is checked for changes.
func WithRefreshInterval(d time.Duration) ReferenceOption {
	return func(r *Reference) { r.interval = d }
}

// WithClock sets the clock used to pace refreshes.
func WithClock(now func() time.Time) ReferenceOption { return func(r *Reference) { r.now = now } }

// WithLogger sets where refresh failures are logged.
func WithLogger(l *slog.Logger) ReferenceOption { return func(r *Reference) { r.logger = l } }

// NewReference parses uri (s3://bucket/key or file:///absolute/path). The
// S3 client is needed for s3 URIs only. Nothing is loaded until the first
// call to Catalogue.
func NewReference(uri string, client ObjectGetter, opts ...ReferenceOption) (*Reference, error) {
	r := &Reference{uri: uri, interval: DefaultRefreshInterval, now: time.Now, logger: slog.Default()}
	for _, o := range opts {
		o(r)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", EnvReferenceDataURI, uri, err)
	}
	switch u.Scheme {
	case "s3":
		bucket, objectKey := u.Host, strings.TrimPrefix(u.Path, "/")
		if bucket == "" || objectKey == "" {
			return nil, fmt.Errorf("%s %q: want s3://bucket/key", EnvReferenceDataURI, uri)
		}
		if client == nil {
			return nil, fmt.Errorf("%s %q: no S3 client", EnvReferenceDataURI, uri)
		}
		r.fetch = s3Fetcher(client, bucket, objectKey)
	case "file":
		if (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return nil, fmt.Errorf("%s %q: want file:///absolute/path", EnvReferenceDataURI, uri)
		}
		r.fetch = fileFetcher(u.Path)
	default:
		return nil, fmt.Errorf("%s %q: want an s3:// or file:// URI", EnvReferenceDataURI, uri)
	}
	return r, nil
}

// Catalogue returns the cached catalogue, loading it on first use (an
// error then means there is no catalogue at all) and checking for a newer
// version once per interval. Concurrent callers never wait for a refresh:
// they get the catalogue in hand while one of them checks.
func (r *Reference) Catalogue(ctx context.Context) (refdata.Catalogue, error) {
	r.mu.Lock()
	if r.cat == nil {
		defer r.mu.Unlock()
		cat, tag, err := r.fetch(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("load reference data %s: %w", r.uri, err)
		}
		r.cat, r.tag, r.checked = cat, tag, r.now()
		r.logger.Info("reference data loaded", "uri", r.uri, "products", len(cat), "version", tag)
		return cat, nil
	}
	cat := r.cat
	if r.refreshing || r.now().Sub(r.checked) < r.interval {
		r.mu.Unlock()
		return cat, nil
	}
	r.refreshing = true
	tag := r.tag
	r.mu.Unlock()

	fresh, newTag, err := r.fetch(ctx, tag)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshing, r.checked = false, r.now()
	switch {
	case err != nil:
		// Also a metric, so that a broken upload can be alarmed on rather
		// than found in the logs.
		r.logger.Warn("reference data refresh failed; keeping the loaded catalogue",
			append([]any{"uri", r.uri, "version", tag, "products", len(r.cat), "error", err},
				emfCount(r.now(), MetricReferenceRefreshFailures)...)...)
	case fresh != nil:
		r.cat, r.tag = fresh, newTag
		r.logger.Info("reference data reloaded", "uri", r.uri, "products", len(fresh), "version", newTag)
	}
	return r.cat, nil
}

// s3Fetcher gets the object unless its ETag is still tag; an unchanged
// object returns a nil catalogue.
func s3Fetcher(client ObjectGetter, bucket, objectKey string) func(context.Context, string) (refdata.Catalogue, string, error) {
	return func(ctx context.Context, tag string) (refdata.Catalogue, string, error) {
		in := &s3.GetObjectInput{Bucket: &bucket, Key: &objectKey}
		if tag != "" {
			in.IfNoneMatch = &tag
		}
		out, err := client.GetObject(ctx, in)
		if err != nil {
			if tag != "" && notModified(err) {
				return nil, tag, nil
			}
			return nil, "", err
		}
		defer out.Body.Close()
		cat, err := refdata.Parse(out.Body)
		if err != nil {
			return nil, "", err
		}
		newTag := ""
		if out.ETag != nil {
			newTag = *out.ETag
		}
		return cat, newTag, nil
	}
}

func notModified(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotModified {
		return true
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotModified"
}

// fileFetcher reads the file unless its modification time and size are
// still tag; an unchanged file returns a nil catalogue.
func fileFetcher(path string) func(context.Context, string) (refdata.Catalogue, string, error) {
	return func(_ context.Context, tag string) (refdata.Catalogue, string, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return nil, "", err
		}
		newTag := fmt.Sprintf("%s/%d", info.ModTime().UTC().Format(time.RFC3339Nano), info.Size())
		if newTag == tag {
			return nil, tag, nil
		}
		cat, err := refdata.Parse(f)
		if err != nil {
			return nil, "", err
		}
		return cat, newTag, nil
	}
}
