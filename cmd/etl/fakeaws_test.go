package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeAWS answers the calls the operator commands make to CloudFormation
// (DescribeStacks, query protocol), Secrets Manager (GetSecretValue, JSON
// 1.1) and S3 (GetObject, path style), so that the real SDK clients run
// against it through AWS_ENDPOINT_URL_<SERVICE>.
type fakeAWS struct {
	mu      sync.Mutex
	stacks  map[string]map[string]string // stack name → outputs
	secrets map[string]string            // secret ARN → secret string
	objects map[string][]byte            // "/bucket/key" → body
}

func startFakeAWS(t *testing.T) (*fakeAWS, string) {
	f := &fakeAWS{stacks: map[string]map[string]string{}, secrets: map[string]string{}, objects: map[string][]byte{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Header.Get("X-Amz-Target") == "secretsmanager.GetSecretValue":
		var in struct{ SecretId string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		s, ok := f.secrets[in.SecretId]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": in.SecretId, "Name": in.SecretId, "SecretString": s})
	case r.Method == http.MethodPost:
		if err := r.ParseForm(); err != nil || r.PostForm.Get("Action") != "DescribeStacks" {
			http.Error(w, "unexpected call", http.StatusBadRequest)
			return
		}
		f.describeStacks(w, r.PostForm.Get("StackName"))
	case r.Method == http.MethodGet:
		body, ok := f.objects[r.URL.Path]
		if !ok {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
			return
		}
		w.Header().Set("ETag", `"1"`)
		_, _ = w.Write(body)
	default:
		http.Error(w, "unexpected call", http.StatusBadRequest)
	}
}

func (f *fakeAWS) describeStacks(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "text/xml")
	outputs, ok := f.stacks[name]
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>`+
			`<Code>ValidationError</Code><Message>Stack with id %s does not exist</Message></Error><RequestId>1</RequestId></ErrorResponse>`, esc(name))
		return
	}
	var b strings.Builder
	for k, v := range outputs {
		fmt.Fprintf(&b, "<member><OutputKey>%s</OutputKey><OutputValue>%s</OutputValue></member>", esc(k), esc(v))
	}
	fmt.Fprintf(w, `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>`+
		`<StackName>%s</StackName><StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2026-11-01T10:00:00Z</CreationTime>`+
		`<Outputs>%s</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeStacksResponse>`,
		esc(name), b.String())
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
