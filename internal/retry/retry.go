// Package retry runs AWS calls again after transient failures: exponential
// backoff with full jitter, a bounded number of attempts, and respect for
// the caller's context and deadline.
//
// The Lambda handlers use it as their only retry layer (their SDK clients
// are built with retries off) so that one policy, bounded by the invocation
// deadline, decides how long a record may be retried before it is reported
// back to Lambda; stacked retryers would multiply the attempts.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// Defaults of a zero Policy.
const (
	DefaultMaxAttempts = 8
	DefaultBaseDelay   = 25 * time.Millisecond
	DefaultMaxDelay    = 2 * time.Second
)

// Policy says how often and how patiently to retry. The zero value is
// usable and means the defaults above.
type Policy struct {
	// MaxAttempts is the total number of attempts, the first included.
	MaxAttempts int
	// BaseDelay is the backoff ceiling before the second attempt; it
	// doubles for every further attempt up to MaxDelay.
	BaseDelay time.Duration
	// MaxDelay caps every backoff.
	MaxDelay time.Duration
	// AttemptTimeout bounds each attempt; 0 leaves only the caller's
	// context. An attempt that runs out of time is retried.
	AttemptTimeout time.Duration
	// Retryable decides which errors are transient; nil means IsRetryable.
	Retryable func(error) bool
}

// ExhaustedError is returned when every attempt failed with a retryable
// error; it unwraps to the last attempt's error.
type ExhaustedError struct {
	Attempts int
	Err      error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("gave up after %d attempts: %v", e.Attempts, e.Err)
}

func (e *ExhaustedError) Unwrap() error { return e.Err }

// Do calls op until it succeeds, fails with an error that is not retryable,
// runs out of attempts, or ctx ends. It never sleeps past ctx's deadline:
// when the next backoff would end after it, Do returns at once so the
// caller keeps its remaining time. The returned error wraps op's last error.
func (p Policy) Do(ctx context.Context, op func(context.Context) error) error {
	p = p.withDefaults()
	var last error
	for attempt := 1; ; attempt++ {
		err := p.attempt(ctx, op)
		if err == nil {
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return fmt.Errorf("%w (stopped: %w)", last, context.Cause(ctx))
		}
		if !p.Retryable(err) && !isAttemptTimeout(err) {
			return err
		}
		if attempt >= p.MaxAttempts {
			return &ExhaustedError{Attempts: attempt, Err: last}
		}
		wait := p.Backoff(attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return &ExhaustedError{Attempts: attempt, Err: fmt.Errorf("%w (no time left to retry)", last)}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%w (stopped: %w)", last, context.Cause(ctx))
		case <-timer.C:
		}
	}
}

// Backoff is the pause after the given failed attempt (1 for the first):
// a uniformly random duration in [0, min(MaxDelay, BaseDelay·2^(attempt-1))].
// Full jitter spreads out clients that were throttled together, which is
// what lets a hot DynamoDB partition or Kinesis shard recover.
func (p Policy) Backoff(attempt int) time.Duration {
	p = p.withDefaults()
	ceiling := p.MaxDelay
	if shift := attempt - 1; shift < 32 {
		if d := p.BaseDelay << shift; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return rand.N(ceiling + 1)
}

func (p Policy) attempt(ctx context.Context, op func(context.Context) error) error {
	if p.AttemptTimeout <= 0 {
		return op(ctx)
	}
	actx, cancel := context.WithTimeoutCause(ctx, p.AttemptTimeout, errAttemptTimeout)
	defer cancel()
	err := op(actx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
		return fmt.Errorf("%w: %w", errAttemptTimeout, err)
	}
	return err
}

var errAttemptTimeout = errors.New("attempt timed out")

func isAttemptTimeout(err error) bool { return errors.Is(err, errAttemptTimeout) }

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.Retryable == nil {
		p.Retryable = IsRetryable
	}
	return p
}

// extraRetryableCodes are transient error codes of the services we call
// that the SDK's default lists lack.
var extraRetryableCodes = map[string]struct{}{
	"InternalServerError":    {}, // DynamoDB's 500
	"InternalFailure":        {},
	"InternalError":          {},
	"ServiceUnavailable":     {},
	"KmsThrottled":           {}, // SQS queues encrypted with KMS
	"KMSThrottlingException": {},
}

// retryables reuses the SDK's own classification: throttling codes
// (ProvisionedThroughputExceededException, RequestLimitExceeded,
// ThrottlingException...), HTTP 500/502/503/504, connection resets and
// refusals, and errors that mark themselves retryable.
var retryables = awsretry.IsErrorRetryables(append(
	append([]awsretry.IsErrorRetryable{}, awsretry.DefaultRetryables...),
	awsretry.RetryableErrorCode{Codes: extraRetryableCodes},
))

// IsRetryable reports whether err is worth another attempt: throttling,
// capacity and request-limit errors, server faults (5xx), connection
// failures and timeouts. Client errors (validation, access denied,
// conditional check failures) and cancellation are not.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch retryables.IsErrorRetryable(err) {
	case aws.TrueTernary:
		return true
	case aws.FalseTernary:
		return false
	}
	if IsThrottle(err) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorFault() == smithy.FaultServer {
		return true
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return true
	}
	// A deadline that was not the caller's (an HTTP client timeout, an
	// attempt timeout) is a transient condition too; Do checks the
	// caller's own context before consulting this.
	return errors.Is(err, context.DeadlineExceeded)
}

// IsThrottle reports whether err says the service is shedding load, which
// callers may want to count or log apart from other failures.
func IsThrottle(err error) bool {
	if err == nil {
		return false
	}
	if awsretry.IsErrorThrottles(awsretry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary {
		return true
	}
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		switch coded.ErrorCode() {
		case "KmsThrottled", "KMSThrottlingException":
			return true
		}
	}
	return false
}

// WithoutSDKRetries returns cfg with the SDK's own retries switched off
// (aws.NopRetryer: every call is attempted once), for the clients whose
// calls this package retries. Every handler builds its clients this one
// way. The retryer is a function of the config, so each client gets its
// own instance rather than a shared retry token bucket.
// https://docs.aws.amazon.com/sdk-for-go/v2/developer-guide/configure-retries-timeouts.html
func WithoutSDKRetries(cfg aws.Config) aws.Config {
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return cfg
}
