package binlog

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/unified-streaming-etl/etl/internal/retry"
)

// fakeKinesis is a stream of two shards that splits the hash space in
// half, records what it accepts per partition key, and fails what the
// test tells it to.
type fakeKinesis struct {
	mu       sync.Mutex
	accepted map[string][]string // partition key -> data, in acceptance order
	calls    [][]string          // data of every PutRecords request
	// failEntry fails an entry (by data) the first time it is sent.
	failEntry map[string]bool
	// callErrs are returned by the next calls, one each.
	callErrs []error
	inFlight map[int]int // shard -> concurrent calls touching it
	maxShard int         // most concurrent calls seen on one shard
	delay    time.Duration
}

func newFakeKinesis() *fakeKinesis {
	return &fakeKinesis{accepted: map[string][]string{}, failEntry: map[string]bool{}, inFlight: map[int]int{}}
}

var half = new(big.Int).Lsh(big.NewInt(1), 127)

func (f *fakeKinesis) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	// Listed out of hash order on purpose: the writer must sort them.
	return &kinesis.ListShardsOutput{Shards: []types.Shard{
		{ShardId: aws.String("shardId-000000000001"), HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(half.String()), EndingHashKey: aws.String(max.String())}, SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}},
		{ShardId: aws.String("shardId-000000000000"), HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(new(big.Int).Sub(half, big.NewInt(1)).String())}, SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}},
	}}, nil
}

func shardOfKey(key string) int {
	sum := md5.Sum([]byte(key))
	if new(big.Int).SetBytes(sum[:]).Cmp(half) < 0 {
		return 0
	}
	return 1
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	shards := map[int]bool{}
	for _, e := range in.Records {
		shards[shardOfKey(aws.ToString(e.PartitionKey))] = true
	}
	f.mu.Lock()
	for s := range shards {
		f.inFlight[s]++
		f.maxShard = max(f.maxShard, f.inFlight[s])
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		for s := range shards {
			f.inFlight[s]--
		}
		f.mu.Unlock()
	}()
	time.Sleep(f.delay)

	f.mu.Lock()
	defer f.mu.Unlock()
	var sent []string
	for _, e := range in.Records {
		sent = append(sent, string(e.Data))
	}
	f.calls = append(f.calls, sent)
	if len(f.callErrs) > 0 {
		err := f.callErrs[0]
		f.callErrs = f.callErrs[1:]
		return nil, err
	}
	out := &kinesis.PutRecordsOutput{}
	failed := int32(0)
	for _, e := range in.Records {
		data := string(e.Data)
		if f.failEntry[data] {
			delete(f.failEntry, data)
			failed++
			out.Records = append(out.Records, types.PutRecordsResultEntry{
				ErrorCode:    aws.String("ProvisionedThroughputExceededException"),
				ErrorMessage: aws.String("Rate exceeded for shard"),
			})
			continue
		}
		key := aws.ToString(e.PartitionKey)
		f.accepted[key] = append(f.accepted[key], data)
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String(fmt.Sprint(shardOfKey(key))), SequenceNumber: aws.String("1")})
	}
	out.FailedRecordCount = aws.Int32(failed)
	return out, nil
}

var fastRetry = retry.Policy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, Retryable: retryableWrite}

func startWriter(t *testing.T, api Kinesis) (*writer, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := newWriter(ctx, api, "unified", fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	w.run(ctx, &wg)
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w, cancel
}

func waitShipped(t *testing.T, w *writer) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		shipped, changed := w.shipped()
		if shipped == w.issued() {
			return
		}
		select {
		case <-changed:
		case err := <-w.failed:
			t.Fatalf("writer failed: %v", err)
		case <-deadline:
			t.Fatalf("only %d of %d records shipped", shipped, w.issued())
		}
	}
}

func TestWriter(t *testing.T) {
	t.Run("keys go to the lane of the shard whose hash range holds their MD5", func(t *testing.T) {
		w, _ := startWriter(t, newFakeKinesis())
		for i := range 200 {
			key := fmt.Sprint(i)
			if got, want := w.laneOf(key), shardOfKey(key); got != want {
				t.Fatalf("key %s: lane %d, want %d", key, got, want)
			}
		}
	})

	t.Run("a failed entry is resent with every later record of its key, so the newest stays last", func(t *testing.T) {
		f := newFakeKinesis()
		f.delay = 20 * time.Millisecond // lets the whole batch queue up behind the first call
		f.failEntry["A1"] = true
		w, _ := startWriter(t, f)
		ctx := context.Background()
		// "warm" occupies the lane so that the rest form one batch.
		for _, r := range [][2]string{{"A", "warm"}, {"A", "A1"}, {"A", "A2"}, {"A", "A3"}} {
			if err := w.enqueue(ctx, r[0], []byte(r[1])); err != nil {
				t.Fatal(err)
			}
		}
		waitShipped(t, w)
		got := f.accepted["A"]
		if got[len(got)-1] != "A3" {
			t.Errorf("accepted order %v: the newest record A3 is not last", got)
		}
		// Every record reached the stream at least once.
		for _, want := range []string{"warm", "A1", "A2", "A3"} {
			if !strings.Contains(strings.Join(got, ","), want) {
				t.Errorf("record %s never accepted: %v", want, got)
			}
		}
		last := f.calls[len(f.calls)-1]
		if strings.Join(last, ",") != "A1,A2,A3" {
			t.Errorf("retry sent %v, want the failed record and its key's later ones [A1 A2 A3]", last)
		}
	})

	t.Run("records of other keys are not resent", func(t *testing.T) {
		f := newFakeKinesis()
		f.delay = 20 * time.Millisecond
		// Both keys on shard 0 so they share a batch.
		var k1, k2 string
		for i := 0; k2 == ""; i++ {
			if k := fmt.Sprint("k", i); shardOfKey(k) == 0 {
				if k1 == "" {
					k1 = k
				} else {
					k2 = k
				}
			}
		}
		f.failEntry["x1"] = true
		w, _ := startWriter(t, f)
		ctx := context.Background()
		for _, r := range [][2]string{{k1, "warm"}, {k1, "x1"}, {k2, "y1"}, {k1, "x2"}} {
			if err := w.enqueue(ctx, r[0], []byte(r[1])); err != nil {
				t.Fatal(err)
			}
		}
		waitShipped(t, w)
		if got := f.accepted[k2]; len(got) != 1 {
			t.Errorf("key %s accepted %v, want y1 exactly once", k2, got)
		}
		if got := f.accepted[k1]; got[len(got)-1] != "x2" {
			t.Errorf("key %s accepted %v, want x2 last", k1, got)
		}
	})

	t.Run("a throttled call is retried", func(t *testing.T) {
		f := newFakeKinesis()
		f.callErrs = []error{&types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}}
		w, _ := startWriter(t, f)
		if err := w.enqueue(context.Background(), "A", []byte("A1")); err != nil {
			t.Fatal(err)
		}
		waitShipped(t, w)
		if got := f.accepted["A"]; len(got) != 1 {
			t.Errorf("accepted %v, want A1 once", got)
		}
	})

	t.Run("a call that can never succeed stops the writer with its error", func(t *testing.T) {
		f := newFakeKinesis()
		f.callErrs = []error{&types.ResourceNotFoundException{Message: aws.String("Stream unified not found")}}
		w, _ := startWriter(t, f)
		if err := w.enqueue(context.Background(), "A", []byte("A1")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-w.failed:
			var rnf *types.ResourceNotFoundException
			if !errors.As(err, &rnf) {
				t.Errorf("error %v, want the ResourceNotFoundException", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("writer did not report the failure")
		}
	})

	t.Run("one call at a time per shard, shards in parallel", func(t *testing.T) {
		f := newFakeKinesis()
		f.delay = 2 * time.Millisecond
		w, _ := startWriter(t, f)
		ctx := context.Background()
		for i := range 3000 {
			if err := w.enqueue(ctx, fmt.Sprint(i%97), []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		waitShipped(t, w)
		if f.maxShard != 1 {
			t.Errorf("up to %d calls in flight on one shard, want 1", f.maxShard)
		}
		total := 0
		for key, data := range f.accepted {
			total += len(data)
			for j := 1; j < len(data); j++ {
				var a, b int
				fmt.Sscan(data[j-1], &a)
				fmt.Sscan(data[j], &b)
				if a >= b {
					t.Fatalf("key %s: %d accepted before %d", key, a, b)
				}
			}
		}
		if total != 3000 {
			t.Errorf("accepted %d records, want 3000", total)
		}
	})

	t.Run("records over the 1 MiB limit are refused before sending", func(t *testing.T) {
		w, _ := startWriter(t, newFakeKinesis())
		if err := w.enqueue(context.Background(), "A", make([]byte, maxRecordBytes)); err == nil {
			t.Error("oversized record accepted")
		}
	})
}

func TestPositions(t *testing.T) {
	var p positions
	p.set(0, pos("b.000001", 100), 0)
	p.set(3, pos("b.000001", 200), 0)
	p.set(5, pos("b.000002", 4), 0)
	for _, c := range []struct {
		shipped uint64
		want    string
		ok      bool
	}{
		{0, "(b.000001, 100)", true},
		{2, "(b.000001, 100)", true},
		{3, "(b.000001, 200)", true},
		{4, "(b.000001, 200)", true},
		{9, "(b.000002, 4)", true},
	} {
		got, ok := p.at(c.shipped)
		if ok != c.ok || got.String() != c.want {
			t.Errorf("at(%d) = %s, %v; want %s", c.shipped, got, ok, c.want)
		}
	}
}

func pos(name string, p uint32) mysql.Position { return mysql.Position{Name: name, Pos: p} }
