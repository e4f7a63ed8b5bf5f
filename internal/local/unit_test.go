package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestSummarise(t *testing.T) {
	var samples []time.Duration
	for i := 1; i <= 100; i++ {
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	// Shuffled input must not matter.
	slices.Reverse(samples)
	l := summarise(samples)
	if l.Count != 100 || l.Avg != 50500*time.Microsecond || l.P50 != 50*time.Millisecond ||
		l.P95 != 95*time.Millisecond || l.P99 != 99*time.Millisecond || l.Max != 100*time.Millisecond {
		t.Errorf("summary %+v", l)
	}
	if (summarise(nil) != Latency{}) {
		t.Error("empty samples give a non-empty summary")
	}
}

func TestWriteDump(t *testing.T) {
	items := []map[string]types.AttributeValue{{
		"itemId":      &types.AttributeValueMemberN{Value: "2"},
		"orderId":     &types.AttributeValueMemberN{Value: "1001"},
		"orderAmount": &types.AttributeValueMemberN{Value: "12345678901234567890.01"},
		"productName": &types.AttributeValueMemberS{Value: "Kettle \"XL\""},
		"gift":        &types.AttributeValueMemberBOOL{Value: true},
		"note":        &types.AttributeValueMemberNULL{Value: true},
	}}
	var buf bytes.Buffer
	if err := WriteDump(&buf, items); err != nil {
		t.Fatal(err)
	}
	want := `[` + "\n" + `{"orderId":1001,"itemId":2,"gift":true,"note":null,"orderAmount":12345678901234567890.01,"productName":"Kettle \"XL\""}` + "\n]\n"
	if buf.String() != want {
		t.Errorf("dump\n%s\nwant\n%s", buf.String(), want)
	}
	if !json.Valid(buf.Bytes()) {
		t.Error("dump is not valid JSON")
	}
}

func TestPrerequisites(t *testing.T) {
	t.Run("missing emulators name make deps", func(t *testing.T) {
		err := Prerequisites(t.TempDir())
		if !errors.Is(err, ErrPrerequisite) || !strings.Contains(err.Error(), "`make deps`") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("a missing MariaDB server names the package to install", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		err := Prerequisites(filepath.Join("..", ".."))
		if !errors.Is(err, ErrPrerequisite) || !strings.Contains(err.Error(), "apt-get install mariadb-server") {
			t.Errorf("error %v", err)
		}
	})
}

// TestDetachedTransport checks that a caller giving up does not cut the
// request off: the server still receives and answers it in full.
func TestDetachedTransport(t *testing.T) {
	serverSawCancel := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			serverSawCancel <- true
		case <-time.After(300 * time.Millisecond):
			serverSawCancel <- false
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	client := AWSConfig(srv.URL).HTTPClient

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	start := time.Now()
	_, err := client.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the caller's deadline", err)
	}
	if time.Since(start) > 250*time.Millisecond {
		t.Errorf("the caller waited %s for a request it gave up on", time.Since(start))
	}
	if <-serverSawCancel {
		t.Error("the server saw the request aborted")
	}

	t.Run("a completed request returns its body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		<-serverSawCancel
		if b.String() != "ok" {
			t.Errorf("body %q", b.String())
		}
	})
}
