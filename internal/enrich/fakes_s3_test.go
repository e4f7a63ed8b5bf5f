package enrich

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fakeS3 is an in-memory ObjectGetter holding one object. Like S3 it
// answers a GetObject whose IfNoneMatch equals the object's ETag with the
// 304 error the SDK builds, and an unknown bucket or key with NoSuchKey.
type fakeS3 struct {
	mu          sync.Mutex
	bucket, key string
	body, etag  string
	fail        error // returned by every call while set

	gets, notModified, open int // open: bodies handed out and not yet closed
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.fail != nil {
		return nil, f.fail
	}
	if in.Bucket == nil || *in.Bucket != f.bucket || in.Key == nil || *in.Key != f.key {
		return nil, s3Error(http.StatusNotFound, &s3types.NoSuchKey{Message: aws.String("The specified key does not exist.")})
	}
	if in.IfNoneMatch != nil && *in.IfNoneMatch == f.etag {
		f.notModified++
		return nil, s3Error(http.StatusNotModified, &smithy.GenericAPIError{Code: "NotModified", Message: "Not Modified"})
	}
	f.open++
	etag := f.etag
	return &s3.GetObjectOutput{
		Body:          &fakeBody{Reader: strings.NewReader(f.body), f: f},
		ETag:          &etag,
		ContentLength: aws.Int64(int64(len(f.body))),
	}, nil
}

// set replaces the object and the injected failure.
func (f *fakeS3) set(body, etag string, fail error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body, f.etag, f.fail = body, etag, fail
}

// counts reports the calls made, the 304 answers among them, and the
// bodies not yet closed.
func (f *fakeS3) counts() (gets, notModified, open int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.notModified, f.open
}

type fakeBody struct {
	*strings.Reader
	f    *fakeS3
	once sync.Once
}

func (b *fakeBody) Close() error {
	b.once.Do(func() {
		b.f.mu.Lock()
		defer b.f.mu.Unlock()
		b.f.open--
	})
	return nil
}

// s3Error builds the error chain the S3 client returns for a non-2xx
// answer: OperationError → ResponseError (status, request ID) → the
// deserialised API error. The SDK wraps the awshttp.ResponseError in an
// internal S3 type that unwraps to it; errors.As sees the same thing.
func s3Error(status int, apiErr error) error {
	return &smithy.OperationError{
		ServiceID:     "S3",
		OperationName: "GetObject",
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{
					StatusCode: status,
					Status:     http.StatusText(status),
					Header:     http.Header{},
					Body:       http.NoBody,
				}},
				Err: apiErr,
			},
			RequestID: "FAKEREQUESTID000",
		},
	}
}
