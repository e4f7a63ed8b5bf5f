package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/retry"
)

func TestWithDeadlineReserve(t *testing.T) {
	t.Run("the work ends the reserve before the caller's deadline", func(t *testing.T) {
		deadline := time.Now().Add(time.Hour)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		work, cancelWork := retry.WithDeadlineReserve(ctx, time.Minute)
		defer cancelWork()
		if got, _ := work.Deadline(); !got.Equal(deadline.Add(-time.Minute)) {
			t.Errorf("deadline %v, want %v", got, deadline.Add(-time.Minute))
		}
	})
	t.Run("a reserve longer than the time left takes only half of it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		deadline, _ := ctx.Deadline()
		work, cancelWork := retry.WithDeadlineReserve(ctx, time.Hour)
		defer cancelWork()
		got, _ := work.Deadline()
		if left := time.Until(got); left < 25*time.Second || left > 30*time.Second {
			t.Errorf("work has %v left of the caller's %v, want about half", left, time.Until(deadline))
		}
	})
	t.Run("without a deadline the work only ends when cancelled", func(t *testing.T) {
		work, cancelWork := retry.WithDeadlineReserve(context.Background(), time.Second)
		if _, ok := work.Deadline(); ok {
			t.Error("work has a deadline the caller did not set")
		}
		cancelWork()
		if !errors.Is(work.Err(), context.Canceled) {
			t.Errorf("after cancel: %v, want context.Canceled", work.Err())
		}
	})
}

func TestPolicyOr(t *testing.T) {
	never := func(error) bool { return false }
	always := func(error) bool { return true }
	def := retry.Policy{MaxAttempts: 8, BaseDelay: 25 * time.Millisecond, MaxDelay: 2 * time.Second, AttemptTimeout: 5 * time.Second, Retryable: never}
	for _, tc := range []struct {
		name          string
		p             retry.Policy
		want          retry.Policy
		wantRetryable func(error) bool // nil: no Retryable
	}{
		{"a zero policy takes the default's timing and keeps its nil Retryable", retry.Policy{}, def, nil},
		{"a policy with only Retryable takes the default's timing and keeps its Retryable", retry.Policy{Retryable: always}, def, always},
		{"a policy that sets a timing field is kept as it is", retry.Policy{AttemptTimeout: time.Second, Retryable: always}, retry.Policy{AttemptTimeout: time.Second}, always},
		{"a policy that sets only MaxAttempts is kept as it is", retry.Policy{MaxAttempts: 1}, retry.Policy{MaxAttempts: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.Or(def)
			if got.MaxAttempts != tc.want.MaxAttempts || got.BaseDelay != tc.want.BaseDelay ||
				got.MaxDelay != tc.want.MaxDelay || got.AttemptTimeout != tc.want.AttemptTimeout {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.wantRetryable == nil && got.Retryable != nil:
				t.Error("Retryable is set; want the policy's nil kept")
			case tc.wantRetryable != nil && (got.Retryable == nil || !got.Retryable(errors.New("x"))):
				t.Error("Retryable is not the policy's own")
			}
		})
	}
}
