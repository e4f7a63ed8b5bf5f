package kdastart_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/unified-streaming-etl/etl/kda/start"
	"github.com/unified-streaming-etl/etl/internal/retry"
)

// kdaServer is a stand-in for the service: it records requests and answers
// from a script of responses.
type kdaServer struct {
	mu        sync.Mutex
	requests  []recorded
	responses []response
}

type recorded struct {
	header http.Header
	body   map[string]any
}

type response struct {
	status int
	header map[string]string
	body   string
}

func (s *kdaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	s.requests = append(s.requests, recorded{header: r.Header.Clone(), body: body})
	resp := response{status: 200, body: "{}"}
	if len(s.responses) > 0 {
		resp, s.responses = s.responses[0], s.responses[1:]
	}
	for k, v := range resp.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("X-Amzn-RequestId", "4b1c8e2a-0f55-11f1-8a5b-0a1b2c3d4e5f")
	w.WriteHeader(resp.status)
	_, _ = io.WriteString(w, resp.body)
}

func newClient(t *testing.T, s *kdaServer, sessionToken string) *kdastart.Client {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c := kdastart.NewClient(aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken),
		BaseEndpoint: aws.String(srv.URL),
	})
	c.Retry = retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	return c
}

func TestClientRequests(t *testing.T) {
	t.Run("requests are SigV4-signed for kinesisanalytics and name the operation", func(t *testing.T) {
		s := &kdaServer{}
		c := newClient(t, s, "FwoGZXIvYXdzEXAMPLETOKEN")
		inputs := []kdastart.InputConfiguration{{ID: "1.1", InputStartingPositionConfiguration: kdastart.StartingPosition{InputStartingPosition: "TRIM_HORIZON"}}}
		if err := c.StartApplication(context.Background(), "Application-4Gq9Xh2LkP1e", inputs); err != nil {
			t.Fatal(err)
		}
		got := s.requests[0]
		if target := got.header.Get("X-Amz-Target"); target != "KinesisAnalytics_20150814.StartApplication" {
			t.Errorf("X-Amz-Target = %q", target)
		}
		if ct := got.header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Errorf("Content-Type = %q", ct)
		}
		auth := got.header.Get("Authorization")
		day := time.Now().UTC().Format("20060102")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"+day+"/eu-west-1/kinesisanalytics/aws4_request, SignedHeaders=") ||
			!strings.Contains(auth, "x-amz-target") || !strings.Contains(auth, "Signature=") {
			t.Errorf("Authorization = %q", auth)
		}
		if got.header.Get("X-Amz-Security-Token") != "FwoGZXIvYXdzEXAMPLETOKEN" {
			t.Error("the session token was not sent")
		}
		want := map[string]any{
			"ApplicationName": "Application-4Gq9Xh2LkP1e",
			"InputConfigurations": []any{map[string]any{
				"Id": "1.1", "InputStartingPositionConfiguration": map[string]any{"InputStartingPosition": "TRIM_HORIZON"},
			}},
		}
		if b1, b2 := mustJSON(got.body), mustJSON(want); b1 != b2 {
			t.Errorf("body = %s, want %s", b1, b2)
		}
	})
	t.Run("DescribeApplication reads the status and inputs of a real response", func(t *testing.T) {
		body, err := os.ReadFile(filepath.Join("testdata", "describe-application.json"))
		if err != nil {
			t.Fatal(err)
		}
		s := &kdaServer{responses: []response{{status: 200, body: string(body)}}}
		app, err := newClient(t, s, "").DescribeApplication(context.Background(), "Application-4Gq9Xh2LkP1e")
		if err != nil {
			t.Fatal(err)
		}
		if app.ApplicationStatus != "READY" || len(app.InputDescriptions) != 1 || app.InputDescriptions[0].InputID != "1.1" {
			t.Errorf("application = %+v", app)
		}
		if s.requests[0].body["ApplicationName"] != "Application-4Gq9Xh2LkP1e" {
			t.Errorf("request body = %v", s.requests[0].body)
		}
	})
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name      string
		responses []response
		wantCode  string
		wantCalls int
	}{
		{
			name: "an error type header with a suffix gives the code, and a client error is not retried",
			responses: []response{{status: 400, header: map[string]string{"X-Amzn-ErrorType": "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.kinesisanalytics/"},
				body: `{"message":"Application Application-4Gq9Xh2LkP1e is not found."}`}},
			wantCode: "ResourceNotFoundException", wantCalls: 1,
		},
		{
			name:      "a namespaced __type gives the code",
			responses: []response{{status: 400, body: `{"__type":"com.amazonaws.kinesisanalytics#ResourceInUseException","Message":"Application is in STARTING state"}`}},
			wantCode:  "ResourceInUseException", wantCalls: 1,
		},
		{
			name:      "throttling is retried until the attempts run out",
			responses: []response{{status: 400, body: `{"__type":"ThrottlingException"}`}, {status: 400, body: `{"__type":"ThrottlingException"}`}, {status: 400, body: `{"__type":"ThrottlingException"}`}},
			wantCode:  "ThrottlingException", wantCalls: 3,
		},
		{
			name:      "a body that is not JSON still yields the HTTP status",
			responses: []response{{status: 403, body: `<AccessDeniedException/>`}},
			wantCode:  "Forbidden", wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &kdaServer{responses: tt.responses}
			err := newClient(t, s, "").StopApplication(context.Background(), "Application-4Gq9Xh2LkP1e")
			var apiErr *kdastart.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.wantCode {
				t.Fatalf("err = %v, want an APIError with code %s", err, tt.wantCode)
			}
			if len(s.requests) != tt.wantCalls {
				t.Errorf("made %d calls, want %d", len(s.requests), tt.wantCalls)
			}
		})
	}
	t.Run("a server error is retried and the retry's answer is used", func(t *testing.T) {
		s := &kdaServer{responses: []response{{status: 503, body: `{"__type":"ServiceUnavailableException"}`}, {status: 200, body: `{"ApplicationDetail":{"ApplicationStatus":"RUNNING"}}`}}}
		app, err := newClient(t, s, "").DescribeApplication(context.Background(), "a")
		if err != nil || app.ApplicationStatus != "RUNNING" {
			t.Fatalf("app = %+v, err = %v", app, err)
		}
		if len(s.requests) != 2 {
			t.Errorf("made %d calls, want 2", len(s.requests))
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
