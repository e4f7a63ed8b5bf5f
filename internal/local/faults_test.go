package local

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/retry"
)

// Each injected fault reaches the SDK and our retry code as the same
// failure from AWS would: throttles and 5xx as service errors with their
// codes, timeouts and lost responses as retryable connection errors; a
// lost response's request was applied, a timed-out one's was not.
func TestFaultsLookLikeAWSFailures(t *testing.T) {
	var applied atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		applied.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	faults, err := NewFaults(0.999999, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := retry.WithoutSDKRetries(faultyAWSConfig(srv.URL, faults))
	db := dynamodb.NewFromConfig(cfg)
	kin := kinesis.NewFromConfig(cfg)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		before := faults.Stats().Injected
		was := applied.Load()
		var err error
		var wantCode, wantService string
		if i%2 == 0 {
			_, err = db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "v"}}})
			wantService = "InternalServerError"
		} else {
			_, err = kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
			wantService = "InternalFailure"
		}
		after := faults.Stats().Injected
		if err == nil {
			t.Fatalf("call %d: no fault at rate ~1", i)
		}
		if !retry.IsRetryable(err) {
			t.Fatalf("call %d: %v is not retryable", i, err)
		}
		var apiErr smithy.APIError
		switch {
		case after[FaultThrottle] > before[FaultThrottle]:
			wantCode = "ProvisionedThroughputExceededException"
			if !retry.IsThrottle(err) {
				t.Errorf("call %d: throttle %v not classified as one", i, err)
			}
		case after[FaultServer] > before[FaultServer]:
			wantCode = wantService
		case after[FaultTimeout] > before[FaultTimeout]:
			if applied.Load() != was {
				t.Errorf("call %d: a request that timed out before it was sent reached the service", i)
			}
		case after[FaultLostResponse] > before[FaultLostResponse]:
			if applied.Load() != was+1 {
				t.Errorf("call %d: a lost response's request did not reach the service", i)
			}
		}
		if wantCode != "" && (!errors.As(err, &apiErr) || apiErr.ErrorCode() != wantCode) {
			t.Errorf("call %d: got %v, want an API error %s", i, err, wantCode)
		}
	}
	s := faults.Stats()
	for k, n := range s.Injected {
		if n == 0 {
			t.Errorf("no %s fault injected in 200 calls", FaultKind(k))
		}
	}
	if s.Calls != 200 || s.Total() != 200 {
		t.Errorf("stats %+v: want 200 calls, all faulted", s)
	}
	// The same input again counts as a retry of the faulted call.
	if s.Retried < 150 {
		t.Errorf("retried %d of 200 repeats of the same input", s.Retried)
	}
}

func TestFaultRateValidated(t *testing.T) {
	for _, r := range []float64{-0.1, 1, 1.5} {
		if _, err := NewFaults(r, 0); err == nil {
			t.Errorf("rate %v accepted", r)
		}
	}
	if f, err := NewFaults(0, 0); err != nil || f.Wrap(http.DefaultTransport) != http.DefaultTransport {
		t.Errorf("rate 0: %v, or the transport is wrapped", err)
	}
}

// Start leaves the range check to NewFaults: a rate out of range (NaN and
// negative ones included) still fails before anything starts.
func TestStartRefusesAFaultRateOutOfRange(t *testing.T) {
	for _, r := range []float64{-0.1, 1, math.NaN()} {
		if p, err := Start(context.Background(), Config{FaultRate: r}); err == nil || !strings.Contains(err.Error(), "fault rate") {
			if p != nil {
				p.Close()
			}
			t.Errorf("rate %v: error %v, want the fault rate refused", r, err)
		}
	}
}
