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

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

func TestCompare(t *testing.T) {
	s := func(v string) *string { return &v }
	d := func(v string) *order.Decimal { x := order.MustDecimal(v); return &x }
	row := func(orderID, itemID int64, amount string) order.Enriched {
		return order.Enriched{OrderID: orderID, ItemID: itemID, OrderAmount: d(amount), OrderStatus: s("PLACED"), ProductName: s("Kettle")}
	}
	item := func(e order.Enriched) sink.Item { return sink.Item{Enriched: e} }

	want := []order.Enriched{row(1, 1, "10.50"), row(1, 2, "3"), row(2, 7, "1")}
	t.Run("equal content has no differences, whatever the decimal's spelling", func(t *testing.T) {
		got := []sink.Item{item(row(1, 1, "10.5")), item(row(1, 2, "3.00")), item(row(2, 7, "1"))}
		if diffs := Compare(want, got); len(diffs) != 0 {
			t.Errorf("differences %v", diffs)
		}
	})
	t.Run("missing, unexpected and changed rows are each reported", func(t *testing.T) {
		changed := row(1, 2, "3")
		changed.ProductName = nil
		changed.OrderStatus = s("SHIPPED")
		got := []sink.Item{item(changed), item(row(2, 7, "1")), item(row(3, 1, "1"))}
		var names []string
		for _, d := range Compare(want, got) {
			names = append(names, d.String())
		}
		wantDiffs := []string{
			"order 1 item 1: missing",
			"order 1 item 2: differs in [orderStatus productName]",
			"order 3 item 1: unexpected",
		}
		if !slices.Equal(names, wantDiffs) {
			t.Errorf("differences %q, want %q", names, wantDiffs)
		}
	})
}

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
