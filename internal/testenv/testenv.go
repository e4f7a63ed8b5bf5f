// Package testenv starts the real emulators that integration tests run
// against and builds AWS configurations that point at them. The process
// handling lives in internal/emulator, which local mode shares. It also
// holds the small fixtures tests of several packages build alike.
package testenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/repo"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/unified-streaming-etl/etl/internal/emulator"
	"github.com/unified-streaming-etl/etl/internal/mariadb"
)

// startTimeout bounds an emulator's start; Node takes about a second on an
// idle machine, far longer on a loaded CI runner.
const startTimeout = 60 * time.Second

// RepoRoot finds the module root (the directory holding go.mod) from the
// working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

// StartDynalite starts node_modules/.bin/dynalite on a free loopback port,
// waits until it answers, stops it on t.Cleanup and returns its endpoint URL
// "http://127.0.0.1:PORT". It skips the test under -short.
func StartDynalite(t testing.TB) string { t.Helper(); return start(t, emulator.Dynalite) }

// StartKinesalite is StartDynalite for kinesalite.
func StartKinesalite(t testing.TB) string { t.Helper(); return start(t, emulator.Kinesalite) }

func start(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("testenv: %s is an integration dependency; skipped under -short", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	e, err := emulator.StartConfig(ctx, emulator.Config{Name: name, Root: RepoRoot(t)})
	if errors.Is(err, emulator.ErrNotInstalled) {
		t.Fatalf("testenv: %s is not installed in node_modules: run `make deps` (npm ci) first: %v", name, err)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("testenv: stop %s: %v", name, err)
		}
	})
	return e.Endpoint()
}

// AWSConfig returns an aws.Config with static dummy credentials and region
// us-east-1 whose base endpoint is url.
func AWSConfig(t testing.TB, url string) aws.Config {
	t.Helper()
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTESTENV", "testenv-secret", ""),
		BaseEndpoint: aws.String(url),
		// Tests drive dozens of concurrent requests at one loopback host; the
		// SDK's default of 10 idle connections per host would make most of
		// them reconnect.
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 256
			tr.MaxIdleConnsPerHost = 256
			// Below Node's 5 s keep-alive timeout, so the client closes idle
			// connections before the emulator can close one under a request.
			tr.IdleConnTimeout = 2 * time.Second
		}),
	}
}

// StartMariaDB starts a private MariaDB server (internal/mariadb) with the
// given configuration, stops it on t.Cleanup, and returns it with an open
// connection pool as its root user (closed on t.Cleanup too). It skips
// the test under -short.
func StartMariaDB(t testing.TB, cfg mariadb.Config) (*mariadb.Server, *sql.DB) {
	t.Helper()
	if testing.Short() {
		t.Skip("testenv: starts a MariaDB server; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server, err := mariadb.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Stop() })
	db, err := sql.Open("mysql", server.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return server, db
}

// Gzip returns lines, one a line, gzipped: the raw archive's object format.
func Gzip(t testing.TB, lines ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
