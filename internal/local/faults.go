package local

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
)

// FaultKind is one kind of fault Faults injects into an AWS call.
type FaultKind int

// The faults a network and a service really produce (docs/design.md §8).
const (
	// FaultThrottle answers, without forwarding, a well-formed
	// ProvisionedThroughputExceededException (HTTP 400).
	FaultThrottle FaultKind = iota
	// FaultServer answers, without forwarding, a well-formed 5xx error.
	FaultServer
	// FaultTimeout fails the call before the request leaves: the
	// connection timed out, the service never saw it.
	FaultTimeout
	// FaultLostResponse forwards the request, lets the service apply it,
	// then drops the response: the caller sees a reset connection.
	FaultLostResponse
	faultKinds
)

func (k FaultKind) String() string {
	return [...]string{"throttling", "5xx", "timeout before the request", "response lost after the request"}[k]
}

// FaultStats counts injected faults by kind, and how many of them were
// followed by the same request again (the caller retried it).
type FaultStats struct {
	Calls    int64
	Injected [faultKinds]int64
	Retried  int64
}

// Total is the number of faults injected.
func (s FaultStats) Total() int64 {
	var n int64
	for _, v := range s.Injected {
		n += v
	}
	return n
}

// Faults injects faults at Rate into the HTTP calls of the SDK clients it
// wraps, each kind equally likely. The zero Rate injects nothing.
type Faults struct {
	rate float64

	mu      sync.Mutex
	rng     *rand.Rand
	stats   FaultStats
	pending map[[32]byte]string // operations of requests whose last attempt got a fault
}

// NewFaults returns an injector at rate (0 <= rate < 1) seeded with seed.
func NewFaults(rate float64, seed uint64) (*Faults, error) {
	if !(rate >= 0 && rate < 1) {
		return nil, fmt.Errorf("fault rate %v: want 0 <= rate < 1", rate)
	}
	return &Faults{rate: rate, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), pending: map[[32]byte]string{}}, nil
}

// Stats returns the counters so far.
func (f *Faults) Stats() FaultStats {
	if f == nil {
		return FaultStats{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// NotRepeated counts, by operation, the faulted requests that were not
// sent again identically (yet).
func (f *Faults) NotRepeated() map[string]int {
	out := map[string]int{}
	if f == nil {
		return out
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, op := range f.pending {
		out[op]++
	}
	return out
}

// Wrap returns base with faults injected; a nil or zero-rate Faults
// returns base.
func (f *Faults) Wrap(base http.RoundTripper) http.RoundTripper {
	if f == nil || f.rate == 0 {
		return base
	}
	return faultTransport{f: f, base: base}
}

// decide draws whether this request gets a fault, and counts a request
// that repeats one that got one.
func (f *Faults) decide(key [32]byte, op string) (FaultKind, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Calls++
	if _, ok := f.pending[key]; ok {
		delete(f.pending, key)
		f.stats.Retried++
	}
	if f.rng.Float64() >= f.rate {
		return 0, false
	}
	k := FaultKind(f.rng.IntN(int(faultKinds)))
	f.stats.Injected[k]++
	f.pending[key] = op
	return k, true
}

type faultTransport struct {
	f    *Faults
	base http.RoundTripper
}

func (t faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	target := req.Header.Get("X-Amz-Target")
	// A retry carries the same operation and input; the SDK's per-attempt
	// headers (signature, date, invocation id) differ and are left out.
	key := sha256.Sum256(append([]byte(req.URL.Host+"\x00"+target+"\x00"), canonicalJSON(body)...))
	kind, ok := t.f.decide(key, target)
	if !ok {
		return t.base.RoundTrip(req)
	}
	switch kind {
	case FaultThrottle:
		// Both services answer a throttled data-plane call so
		// (docs/aws-facts.md §13).
		return errorResponse(req, http.StatusBadRequest, "ProvisionedThroughputExceededException", "Rate exceeded (injected by etl local --faults)"), nil
	case FaultServer:
		code := "InternalFailure" // Kinesis's common 500 error
		if strings.HasPrefix(target, "DynamoDB_") {
			code = "InternalServerError"
		}
		return errorResponse(req, http.StatusInternalServerError, code, "injected by etl local --faults"), nil
	case FaultTimeout:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: injectedTimeout{}}
	default: // FaultLostResponse
		resp, err := t.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
}

// canonicalJSON re-encodes a JSON body with its object keys sorted: the
// SDK writes map members in Go's random map order, so the same input can
// be sent as different bytes.
func canonicalJSON(body []byte) []byte {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// errorResponse is an AWS JSON-protocol error as Kinesis and DynamoDB send
// it: the code in X-Amzn-ErrorType and in the body's __type, which
// DynamoDB qualifies with its namespace (docs/aws-facts.md §13).
func errorResponse(req *http.Request, status int, code, msg string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	typ := code
	if strings.HasPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_") {
		h.Set("Content-Type", "application/x-amz-json-1.0")
		typ = "com.amazonaws.dynamodb.v20120810#" + code
	}
	body := fmt.Sprintf(`{"__type":%q,"message":%q}`, typ, msg)
	h.Set("X-Amzn-Errortype", code)
	h.Set("X-Amzn-Requestid", "injected")
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Request: req,
	}
}

// injectedTimeout is a connect timeout: net.Error with Timeout() true.
type injectedTimeout struct{}

func (injectedTimeout) Error() string   { return "i/o timeout (injected by etl local --faults)" }
func (injectedTimeout) Timeout() bool   { return true }
func (injectedTimeout) Temporary() bool { return true }
