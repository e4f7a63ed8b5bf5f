package retry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/unified-streaming-etl/etl/internal/retry"
)

// sdkError wraps err the way an SDK client returns it from an operation.
func sdkError(op string, status int, err error) error {
	return &smithy.OperationError{
		ServiceID:     "DynamoDB",
		OperationName: op,
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      err,
			},
			RequestID: "REQ",
		},
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"provisioned throughput exceeded is retried", &dbtypes.ProvisionedThroughputExceededException{}, true},
		{"the same error as the SDK returns it is retried", sdkError("PutItem", 400, &dbtypes.ProvisionedThroughputExceededException{Message: ptr("slow down")}), true},
		{"request limit exceeded is retried", &dbtypes.RequestLimitExceeded{}, true},
		{"a generic throttling code is retried", &smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient}, true},
		{"a DynamoDB internal server error is retried", sdkError("PutItem", 500, &dbtypes.InternalServerError{}), true},
		{"an HTTP 503 without a known code is retried", sdkError("PutItem", 503, errors.New("service unavailable")), true},
		{"an unknown server fault is retried", &smithy.GenericAPIError{Code: "Weird", Fault: smithy.FaultServer}, true},
		{"an SQS KMS throttle is retried", &sqstypes.KmsThrottled{}, true},
		{"an SQS request throttle is retried", &sqstypes.RequestThrottled{}, true},
		{"a network timeout is retried", &net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}, true},
		{"a connection reset is retried", fmt.Errorf("send: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), true},
		{"a deadline that is not the caller's is retried", fmt.Errorf("http: %w", context.DeadlineExceeded), true},
		{"a failed condition is final", sdkError("PutItem", 400, &dbtypes.ConditionalCheckFailedException{}), false},
		{"a validation error is final", sdkError("PutItem", 400, &smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient}), false},
		{"a missing table is final", &dbtypes.ResourceNotFoundException{}, false},
		{"invalid SQS message contents are final", &sqstypes.InvalidMessageContents{}, false},
		{"cancellation is final", fmt.Errorf("op: %w", context.Canceled), false},
		{"an error without a code is final", errors.New("boom"), false},
		{"no error is not retried", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retry.IsRetryable(tt.err); got != tt.want {
				t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestIsThrottle(t *testing.T) {
	if !retry.IsThrottle(sdkError("PutItem", 400, &dbtypes.ProvisionedThroughputExceededException{})) {
		t.Error("provisioned throughput exceeded is not seen as a throttle")
	}
	if retry.IsThrottle(sdkError("PutItem", 500, &dbtypes.InternalServerError{})) {
		t.Error("an internal server error is seen as a throttle")
	}
}

var errThrottled = &dbtypes.ProvisionedThroughputExceededException{Message: ptr("throttled")}

// fast keeps the tests quick while exercising real sleeps.
var fast = retry.Policy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond}

func TestDo(t *testing.T) {
	tests := []struct {
		name      string
		failures  []error // returned by successive attempts, then success
		wantCalls int
		wantErr   error // matched with errors.Is; nil means success
		exhausted bool
	}{
		{"succeeds at once without retrying", nil, 1, nil, false},
		{"retries throttling until it succeeds", []error{errThrottled, errThrottled, errThrottled}, 4, nil, false},
		{"stops at the first error that is not retryable", []error{errThrottled, &dbtypes.ResourceNotFoundException{}}, 2, &dbtypes.ResourceNotFoundException{}, false},
		{"gives up after the last attempt and keeps its error", []error{errThrottled, errThrottled, errThrottled, errThrottled, errThrottled}, 4, errThrottled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := fast.Do(context.Background(), func(context.Context) error {
				calls++
				if calls <= len(tt.failures) {
					return tt.failures[calls-1]
				}
				return nil
			})
			if calls != tt.wantCalls {
				t.Errorf("op called %d times, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Do = %v, want success", err)
				}
				return
			}
			if !errors.As(err, new(smithy.APIError)) || !sameCode(err, tt.wantErr) {
				t.Errorf("Do = %v, want an error wrapping %v", err, tt.wantErr)
			}
			var ex *retry.ExhaustedError
			if got := errors.As(err, &ex); got != tt.exhausted {
				t.Errorf("ExhaustedError = %v, want %v (%v)", got, tt.exhausted, err)
			}
			if tt.exhausted && ex.Attempts != tt.wantCalls {
				t.Errorf("ExhaustedError.Attempts = %d, want %d", ex.Attempts, tt.wantCalls)
			}
		})
	}
}

func TestDoRespectsTheCaller(t *testing.T) {
	t.Run("returns without sleeping when the backoff would outlast the deadline", func(t *testing.T) {
		p := retry.Policy{MaxAttempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		calls := 0
		// A backoff drawn from [0, 1h] almost never fits in 10 s; when it
		// does not, Do must hand the remaining time back at once rather
		// than wait for the context to expire.
		err := p.Do(ctx, func(context.Context) error { calls++; return errThrottled })
		if ctx.Err() != nil {
			t.Fatalf("Do slept past the deadline (calls=%d)", calls)
		}
		if !errors.Is(err, errThrottled) {
			t.Errorf("Do = %v, want the throttling error", err)
		}
	})

	t.Run("stops retrying when the context is cancelled", func(t *testing.T) {
		p := retry.Policy{MaxAttempts: 1000, BaseDelay: 50 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := p.Do(ctx, func(context.Context) error {
			calls++
			if calls == 2 {
				cancel()
			}
			return errThrottled
		})
		if calls != 2 {
			t.Errorf("op called %d times after cancellation, want 2", calls)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errThrottled) {
			t.Errorf("Do = %v, want both the cancellation and the last error", err)
		}
	})

	t.Run("retries an attempt that overran its own timeout", func(t *testing.T) {
		p := fast
		p.AttemptTimeout = 20 * time.Millisecond
		calls := 0
		err := p.Do(context.Background(), func(ctx context.Context) error {
			calls++
			if calls == 1 {
				<-ctx.Done() // a hung request
				return fmt.Errorf("send request: %w", ctx.Err())
			}
			return nil
		})
		if err != nil || calls != 2 {
			t.Errorf("Do = %v after %d calls, want success on the second", err, calls)
		}
	})
}

func TestBackoff(t *testing.T) {
	p := retry.Policy{BaseDelay: 10 * time.Millisecond, MaxDelay: 200 * time.Millisecond}
	tests := []struct {
		attempt int
		ceiling time.Duration
	}{
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{4, 80 * time.Millisecond},
		{6, 200 * time.Millisecond},
		{200, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("after attempt %d waits a random time up to %v", tt.attempt, tt.ceiling), func(t *testing.T) {
			var longest time.Duration
			for range 2000 {
				d := p.Backoff(tt.attempt)
				if d < 0 || d > tt.ceiling {
					t.Fatalf("Backoff(%d) = %v, outside [0, %v]", tt.attempt, d, tt.ceiling)
				}
				longest = max(longest, d)
			}
			// Full jitter uses the whole range; without it every wait would
			// sit at one value.
			if longest < tt.ceiling*3/4 {
				t.Errorf("longest of 2000 waits is %v, want near %v", longest, tt.ceiling)
			}
		})
	}
}

func sameCode(a, b error) bool {
	var x, y smithy.APIError
	return errors.As(a, &x) && errors.As(b, &y) && x.ErrorCode() == y.ErrorCode()
}

func ptr[T any](v T) *T { return &v }
