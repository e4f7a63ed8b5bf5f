//go:build !unix

package sink_test

import "time"

// processCPU is unavailable here; the benchmark then reports 0.
func processCPU() time.Duration { return 0 }
