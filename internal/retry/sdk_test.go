package retry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unified-streaming-etl/etl/internal/retry"
)

// A client built from the config attempts a call once, even on an error the
// SDK's standard retryer would retry (a 500), so internal/retry is the
// only retry layer.
func TestWithoutSDKRetriesAttemptsEachCallOnce(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}`))
	}))
	defer srv.Close()
	base := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
		BaseEndpoint: aws.String(srv.URL),
	}

	attempts := func(cfg aws.Config) int32 {
		calls.Store(0)
		_, err := dynamodb.NewFromConfig(cfg).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String("t")})
		if err == nil {
			t.Fatal("DescribeTable succeeded against a server that always fails")
		}
		return calls.Load()
	}
	if n := attempts(base); n < 2 {
		t.Fatalf("the default config made %d attempts; the test needs an error the SDK retries", n)
	}
	if n := attempts(retry.WithoutSDKRetries(base)); n != 1 {
		t.Errorf("WithoutSDKRetries: %d attempts, want 1", n)
	}
}
