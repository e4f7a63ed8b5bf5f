package enrich

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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

// s3Server serves one object like S3 does: ETag on every answer, 304 for
// a matching If-None-Match, and an injected 500 on request.
type s3Server struct {
	mu        sync.Mutex
	body      string
	etag      string
	gets, not int
	fail      bool
}

func (s *s3Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/reference-bucket/products/products.json" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		return
	}
	s.gets++
	if s.fail {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`)
		return
	}
	w.Header().Set("ETag", s.etag)
	if r.Header.Get("If-None-Match") == s.etag {
		s.not++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(s.body)))
	fmt.Fprint(w, s.body)
}

func (s *s3Server) set(body, etag string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag, s.fail = body, etag, fail
}

func TestReferenceFromS3(t *testing.T) {
	srv := &s3Server{body: kettle, etag: `"5d41402abc4b2a76b9719d911017c592"`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ts.URL), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1,
	})
	clk := &clock{t: testNow}
	r, err := NewReference("s3://reference-bucket/products/products.json", client, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the catalogue is loaded on first use", func(t *testing.T) {
		if got := productNames(t, r); got != "Handcrafted Marble Kettle" {
			t.Errorf("products %q", got)
		}
	})
	t.Run("an unchanged object costs one conditional GET answered 304", func(t *testing.T) {
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle" {
			t.Errorf("products %q", got)
		}
		if srv.gets != 2 || srv.not != 1 {
			t.Errorf("GETs %d (304: %d), want 2 (1)", srv.gets, srv.not)
		}
	})
	t.Run("no request is made within the refresh interval", func(t *testing.T) {
		clk.advance(59 * time.Second)
		productNames(t, r)
		if srv.gets != 2 {
			t.Errorf("GETs %d, want still 2", srv.gets)
		}
	})
	t.Run("a failing S3 keeps the last good catalogue", func(t *testing.T) {
		srv.set(kettle+lamp, `"new"`, true)
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle" {
			t.Errorf("products %q, want the last good catalogue", got)
		}
	})
	t.Run("a new ETag reloads the object", func(t *testing.T) {
		srv.set(kettle+lamp, `"new"`, false)
		clk.advance(time.Minute)
		if got := productNames(t, r); got != "Handcrafted Marble Kettle,Ergonomic Steel Lamp" {
			t.Errorf("products %q, want the new object", got)
		}
	})
	t.Run("a missing object at cold start is an error", func(t *testing.T) {
		r, err := NewReference("s3://other-bucket/products.json", client)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Catalogue(context.Background()); err == nil {
			t.Error("Catalogue succeeded without an object")
		}
	})
}

func TestNewReferenceRejectsBadURIs(t *testing.T) {
	client := s3.New(s3.Options{Region: "us-east-1"})
	for _, uri := range []string{"", "products.json", "https://example.com/products.json", "s3://bucket", "s3:///key", "file://relative/products.json"} {
		t.Run(fmt.Sprintf("%q is refused with the variable's name", uri), func(t *testing.T) {
			if _, err := NewReference(uri, client); err == nil || !strings.Contains(err.Error(), EnvReferenceDataURI) {
				t.Errorf("NewReference(%q) error = %v", uri, err)
			}
		})
	}
}
