package kdastart

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/retry"
)

// Client calls the three operations of the Kinesis Data Analytics API
// version 2015-08-14 (the "v1" API of SQL applications) that this package
// needs, over its JSON 1.1 protocol with Signature Version 4 from the
// SDK's signer. The module proxy this project builds from does not serve
// the SDK's kinesisanalytics module; API is the seam where the SDK client
// can replace this one.
type Client struct {
	HTTPClient  aws.HTTPClient
	Credentials aws.CredentialsProvider
	Region      string
	// Endpoint is the service URL, e.g.
	// https://kinesisanalytics.eu-west-1.amazonaws.com.
	Endpoint string
	// Retry retries throttling, server errors and network failures.
	Retry retry.Policy

	signer *v4.Signer
	now    func() time.Time
}

// signingName and targetPrefix identify the service to SigV4 and the
// operation to the JSON protocol.
const (
	signingName  = "kinesisanalytics"
	targetPrefix = "KinesisAnalytics_20150814."
	maxBody      = 10 << 20
)

// NewClient builds a client from an SDK configuration. The endpoint is,
// as the SDK would choose it, AWS_ENDPOINT_URL_KINESIS_ANALYTICS,
// cfg.BaseEndpoint (AWS_ENDPOINT_URL), or the Region's public endpoint.
func NewClient(cfg aws.Config) *Client {
	endpoint := os.Getenv("AWS_ENDPOINT_URL_KINESIS_ANALYTICS")
	if endpoint == "" && cfg.BaseEndpoint != nil {
		endpoint = *cfg.BaseEndpoint
	}
	if endpoint == "" {
		suffix := "amazonaws.com"
		if strings.HasPrefix(cfg.Region, "cn-") {
			suffix = "amazonaws.com.cn"
		}
		endpoint = "https://kinesisanalytics." + cfg.Region + "." + suffix
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{
		HTTPClient:  httpClient,
		Credentials: cfg.Credentials,
		Region:      cfg.Region,
		Endpoint:    strings.TrimSuffix(endpoint, "/"),
		Retry:       retry.Policy{MaxAttempts: 5, BaseDelay: 200 * time.Millisecond, MaxDelay: 5 * time.Second, AttemptTimeout: 20 * time.Second},
	}
}

// Application is the part of ApplicationDetail the handler reads.
type Application struct {
	ApplicationName   string             `json:"ApplicationName"`
	ApplicationARN    string             `json:"ApplicationARN"`
	ApplicationStatus string             `json:"ApplicationStatus"`
	InputDescriptions []InputDescription `json:"InputDescriptions"`
}

// InputDescription is an application input.
type InputDescription struct {
	InputID    string `json:"InputId"`
	NamePrefix string `json:"NamePrefix"`
	// InputStartingPositionConfiguration is where the input was last
	// started from; empty on an application that never ran.
	InputStartingPositionConfiguration *StartingPosition `json:"InputStartingPositionConfiguration,omitempty"`
}

// StartingPosition is an InputStartingPositionConfiguration.
type StartingPosition struct {
	InputStartingPosition string `json:"InputStartingPosition,omitempty"`
}

// InputConfiguration says where an input starts reading.
type InputConfiguration struct {
	ID                                 string           `json:"Id"`
	InputStartingPositionConfiguration StartingPosition `json:"InputStartingPositionConfiguration"`
}

// DescribeApplication returns the application's status and inputs.
func (c *Client) DescribeApplication(ctx context.Context, name string) (Application, error) {
	var out struct {
		ApplicationDetail Application `json:"ApplicationDetail"`
	}
	err := c.call(ctx, "DescribeApplication", map[string]any{"ApplicationName": name}, &out)
	return out.ApplicationDetail, err
}

// StartApplication starts the application reading its inputs from the
// given positions.
func (c *Client) StartApplication(ctx context.Context, name string, inputs []InputConfiguration) error {
	return c.call(ctx, "StartApplication", map[string]any{"ApplicationName": name, "InputConfigurations": inputs}, nil)
}

// StopApplication stops the application.
func (c *Client) StopApplication(ctx context.Context, name string) error {
	return c.call(ctx, "StopApplication", map[string]any{"ApplicationName": name}, nil)
}

func (c *Client) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("kinesisanalytics %s: %w", op, err)
	}
	err = c.Retry.Do(ctx, func(ctx context.Context) error { return c.once(ctx, op, body, out) })
	if err != nil {
		return fmt.Errorf("kinesisanalytics %s: %w", op, err)
	}
	return nil
}

func (c *Client) once(ctx context.Context, op string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	signer, now := c.signer, c.now
	if signer == nil {
		signer = v4.NewSigner()
	}
	if now == nil {
		now = time.Now
	}
	if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), signingName, c.Region, now().UTC()); err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseError(resp, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// APIError is an error the service answered with. It implements
// smithy.APIError, so the SDK's retry classification applies to it.
type APIError struct {
	Code       string
	Message    string
	StatusCode int
	RequestID  string
}

func (e *APIError) Error() string {
	msg := e.Code
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return fmt.Sprintf("%s (HTTP %d, request ID %s)", msg, e.StatusCode, e.RequestID)
}

// ErrorCode is the service's error code, e.g. ResourceNotFoundException.
func (e *APIError) ErrorCode() string { return e.Code }

// ErrorMessage is the service's message.
func (e *APIError) ErrorMessage() string { return e.Message }

// ErrorFault says whether the caller or the service is at fault.
func (e *APIError) ErrorFault() smithy.ErrorFault {
	if e.StatusCode >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// HTTPStatusCode is the response's status code.
func (e *APIError) HTTPStatusCode() int { return e.StatusCode }

var _ smithy.APIError = (*APIError)(nil)

// parseError reads an AWS JSON 1.1 error: the code comes from the
// X-Amzn-ErrorType header or the body's __type, either of which may carry
// a namespace ("…#Code") or a suffix ("Code:http://…").
func parseError(resp *http.Response, data []byte) error {
	var body struct {
		Type         string `json:"__type"`
		Message      string `json:"message"`
		MessageUpper string `json:"Message"`
	}
	_ = json.Unmarshal(data, &body) // a body that is not JSON leaves only the status
	code := resp.Header.Get("X-Amzn-ErrorType")
	if code == "" {
		code = body.Type
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if code == "" {
		code = http.StatusText(resp.StatusCode)
	}
	msg := body.Message
	if msg == "" {
		msg = body.MessageUpper
	}
	return &APIError{Code: code, Message: msg, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-RequestId")}
}

// hasCode reports whether err is the service's error code.
func hasCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}
