package local

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region and credentials of the local emulators. Any value works; the
// emulators only need them to be consistent.
const (
	Region          = "us-east-1"
	AccessKeyID     = "local"
	SecretAccessKey = "local"
)

// AWSConfig returns an SDK configuration for an emulator at endpoint.
//
// Its HTTP client never drops a request in flight: when the caller's
// context ends (a poller being stopped, a handler's attempt timing out),
// the call returns at once but the request itself completes in the
// background. dynalite and kinesalite crash on a request aborted mid-way
// (they rethrow the socket's "aborted" error), which would take the whole
// local pipeline down with a single cancelled call.
func AWSConfig(endpoint string) aws.Config { return faultyAWSConfig(endpoint, nil) }

// faultyAWSConfig is AWSConfig with faults injected into every call
// (Config.Faults); the faults sit outside the detached transport, so an
// injected lost response comes after the emulator applied the request.
func faultyAWSConfig(endpoint string, faults *Faults) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient: &http.Client{Transport: faults.Wrap(detachedTransport{base: &http.Transport{
			Proxy:               nil, // loopback only
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			// Below Node's 5 s keep-alive timeout, so that the client, not
			// the emulator, closes an idle connection: a request sent just
			// as the server closes its end would be aborted.
			IdleConnTimeout: 2 * time.Second,
		}})},
	}
}

// detachedTransport runs each request under a context that is not
// cancelled with the caller's, and abandons (then drains) the response of
// a caller that gave up.
type detachedTransport struct{ base http.RoundTripper }

// requestTimeout bounds a request that nobody waits for any more.
const requestTimeout = 2 * time.Minute

func (t detachedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	type result struct {
		resp *http.Response
		err  error
	}
	// The request that outlives its caller gets its own copy of the body:
	// the caller may close or reuse the original once it has given up, and
	// a body that fails mid-way makes the transport drop the connection.
	detached := req.Clone(context.WithoutCancel(ctx))
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		detached.Body = io.NopCloser(bytes.NewReader(body))
		detached.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		detached.ContentLength = int64(len(body))
	}
	done := make(chan result, 1)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	go func() {
		resp, err := t.base.RoundTrip(detached.WithContext(dctx))
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			cancel()
			return nil, r.err
		}
		r.resp.Body = &cancelOnClose{ReadCloser: r.resp.Body, cancel: cancel}
		return r.resp, nil
	case <-ctx.Done():
		go func() {
			defer cancel()
			if r := <-done; r.err == nil {
				_, _ = io.Copy(io.Discard, r.resp.Body)
				_ = r.resp.Body.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// cancelOnClose releases the request's context once the body is done.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	// Reading to the end first keeps the connection reusable and the
	// response complete from the server's point of view.
	_, _ = io.Copy(io.Discard, c.ReadCloser)
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
