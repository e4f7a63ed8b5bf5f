package retry

import (
	"context"
	"time"
)

// WithDeadlineReserve returns a context that ends reserve before ctx's
// deadline, keeping at most half of the time left, so that work cut short
// by it (retries included) still leaves a Lambda handler time to report
// what is unfinished: hitting the invocation's own timeout would fail the
// whole batch. Without a deadline it is context.WithCancel.
func WithDeadlineReserve(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve = min(reserve, time.Until(deadline)/2)
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

// Or returns p, or def when p sets none of MaxAttempts, BaseDelay, MaxDelay
// and AttemptTimeout, so that a component's own default policy replaces a
// zero Policy in its configuration. p's Retryable is kept either way.
func (p Policy) Or(def Policy) Policy {
	if p.MaxAttempts != 0 || p.BaseDelay != 0 || p.MaxDelay != 0 || p.AttemptTimeout != 0 {
		return p
	}
	def.Retryable = p.Retryable
	return def
}
