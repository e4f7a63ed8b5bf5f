package binlog_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	_ "github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/binlog"
	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/mariadb"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// schema is the source schema of docs/design.md §3.1, plus a table and a schema
// that are not captured.
var schema = []string{
	"CREATE DATABASE orders",
	"CREATE TABLE orders.`order` (orderId INT PRIMARY KEY, orderAmount DECIMAL(10,2), orderStatus VARCHAR(32), " +
		"orderDateTime DATETIME(3), shipToName VARCHAR(100), shipToAddress VARCHAR(200), shipToCity VARCHAR(100), " +
		"shipToState VARCHAR(32), shipToZip VARCHAR(16))",
	"CREATE TABLE orders.order_item (orderId INT NOT NULL, itemId INT NOT NULL, itemQuantity INT, " +
		"itemAmount DECIMAL(10,2), itemStatus VARCHAR(32), PRIMARY KEY (orderId, itemId), " +
		"FOREIGN KEY (orderId) REFERENCES orders.`order` (orderId))",
	"CREATE TABLE orders.audit (id INT AUTO_INCREMENT PRIMARY KEY, orderId INT, note VARCHAR(100))",
	"CREATE DATABASE other",
	"CREATE TABLE other.`order` (orderId INT PRIMARY KEY)",
}

type env struct {
	db      *sql.DB
	server  *mariadb.Server
	kinesis *kinesis.Client
	stream  string
}

func setup(t *testing.T, shards int32) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("binlog: needs MariaDB and kinesalite; skipped under -short")
	}
	server, db := testenv.StartMariaDB(t, mariadb.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, q := range schema {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	client := kinesis.NewFromConfig(local.AWSConfig(testenv.StartKinesalite(t)))
	e := &env{db: db, server: server, kinesis: client, stream: "unified"}
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(e.stream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(e.stream)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs a reader until the test ends and waits for its full load.
func (e *env) start(t *testing.T, mutate func(*binlog.Config)) *binlog.Reader {
	t.Helper()
	cfg := binlog.Config{
		Host: e.server.Host(), Port: e.server.Port(), User: e.server.User(),
		Password: e.server.Password(),
		Kinesis:  e.kinesis, Stream: e.stream,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := binlog.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reader: %v", err)
		}
	})
	select {
	case <-r.Loaded():
	case err := <-done:
		t.Fatalf("reader stopped during the full load: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("full load did not finish")
	}
	return r
}

func (e *env) exec(t *testing.T, stmts ...string) {
	t.Helper()
	tx, err := e.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// streamed is one record read back from Kinesis.
type streamed struct {
	shard, seq string
	key        string
	raw        []byte
	rec        cdc.Record
}

// readAll returns every record in the stream, shard by shard in sequence
// order.
func (e *env) readAll(t *testing.T) []streamed {
	t.Helper()
	ctx := context.Background()
	shards, err := e.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	var out []streamed
	for _, s := range shards.Shards {
		it, err := e.kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(e.stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			got, err := e.kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got.Records {
				st := streamed{shard: aws.ToString(s.ShardId), seq: aws.ToString(r.SequenceNumber), key: aws.ToString(r.PartitionKey), raw: r.Data}
				if err := json.Unmarshal(r.Data, &st.rec); err != nil {
					t.Fatalf("record is not JSON: %v: %s", err, r.Data)
				}
				out = append(out, st)
			}
			if len(got.Records) == 0 {
				break
			}
			iter = got.NextShardIterator
		}
	}
	return out
}

func dataRecords(all []streamed) []streamed {
	var out []streamed
	for _, s := range all {
		if s.rec.Metadata.RecordType == cdc.RecordTypeData {
			out = append(out, s)
		}
	}
	// Metadata timestamps are strictly increasing in production order.
	slices.SortFunc(out, func(a, b streamed) int { return strings.Compare(a.rec.Metadata.Timestamp, b.rec.Metadata.Timestamp) })
	return out
}

// Orders 1 and 2 as the reader tests start from.
const (
	insertOrder1 = "INSERT INTO orders.`order` VALUES (1, 12.50, 'PENDING', '2020-05-01 17:11:49.973', 'Ana', '1 Main St', 'Seattle', 'WA', '98101')"
	insertOrder2 = "INSERT INTO orders.`order` VALUES (2, 1000.00, 'SHIPPED', '2020-05-02 08:00:00.000', 'Bo', NULL, 'Austin', 'TX', '73301')"
)

func TestReader(t *testing.T) {
	e := setup(t, 2)
	e.exec(t,
		insertOrder1, insertOrder2,
		"INSERT INTO orders.order_item VALUES (1, 101, 2, 5.25, 'PENDING'), (1, 102, 1, 2.00, 'PENDING'), (2, 103, 10, 100.00, 'SHIPPED')",
	)
	r := e.start(t, nil)
	e.exec(t,
		"INSERT INTO orders.`order` VALUES (3, 7.10, 'PENDING', '2021-01-01 00:00:00.001', 'Cy', '3 Elm', 'Boise', 'ID', '83701')",
		"INSERT INTO orders.order_item VALUES (3, 101, 1, 3.55, 'PENDING'), (3, 104, 2, 3.55, NULL)",
		"INSERT INTO orders.audit (orderId, note) VALUES (3, 'not captured')",
		"INSERT INTO other.`order` VALUES (3)",
	)
	e.exec(t, "UPDATE orders.`order` SET orderStatus = 'SHIPPED', orderAmount = 12.55 WHERE orderId = 1")
	e.exec(t, "DELETE FROM orders.order_item WHERE orderId = 1 AND itemId = 102")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitShipped(ctx); err != nil {
		t.Fatal(err)
	}
	all := e.readAll(t)
	data := dataRecords(all)

	t.Run("control records come first and are not data for the pipeline", func(t *testing.T) {
		var tables []string
		for _, s := range all {
			if s.rec.Metadata.RecordType != cdc.RecordTypeControl {
				continue
			}
			m := s.rec.Metadata
			tables = append(tables, m.SchemaName+"."+m.TableName)
			if m.Operation != "create-table" || m.PartitionKeyType != cdc.PartitionKeyTaskID {
				t.Errorf("control record metadata %+v", m)
			}
			if _, err := cdc.Decode(s.raw); !errors.Is(err, cdc.ErrNotData) {
				t.Errorf("cdc.Decode(control) = %v, want ErrNotData", err)
			}
		}
		slices.Sort(tables)
		if want := []string{".awsdms_apply_exceptions", "orders.order", "orders.order_item"}; !slices.Equal(tables, want) {
			t.Errorf("control records for %v, want %v", tables, want)
		}
		first := map[string]string{} // shard -> record type of its first record
		for _, s := range all {
			if _, ok := first[s.shard]; !ok {
				first[s.shard] = s.rec.Metadata.RecordType
			}
		}
		for shard, rt := range first {
			if rt != cdc.RecordTypeControl && slices.ContainsFunc(all, func(x streamed) bool {
				return x.shard == shard && x.rec.Metadata.RecordType == cdc.RecordTypeControl
			}) {
				t.Errorf("shard %s starts with a %s record before its control records", shard, rt)
			}
		}
	})

	t.Run("the full load and every committed change arrive in commit order", func(t *testing.T) {
		var got []string
		for _, s := range data {
			m := s.rec.Metadata
			got = append(got, fmt.Sprintf("%s %s %v/%v", m.Operation, m.TableName, s.rec.Data["orderId"], s.rec.Data["itemId"]))
		}
		want := []string{
			"load order 1/<nil>", "load order 2/<nil>",
			"load order_item 1/101", "load order_item 1/102", "load order_item 2/103",
			"insert order 3/<nil>", "insert order_item 3/101", "insert order_item 3/104",
			"update order 1/<nil>",
			"delete order_item 1/102",
		}
		if !slices.Equal(got, want) {
			t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("data is written as DMS writes it: exact decimals, ISO datetimes, absent nulls", func(t *testing.T) {
		var load1, upd1 streamed
		for _, s := range data {
			if s.rec.Data["orderId"] == 1.0 && s.rec.Metadata.TableName == "order" {
				if s.rec.Metadata.Operation == "load" {
					load1 = s
				} else {
					upd1 = s
				}
			}
		}
		for _, want := range []string{
			`"orderId":1,`, `"orderAmount":"12.50"`, `"orderDateTime":"2020-05-01T17:11:49.973Z"`,
			`"shipToZip":"98101"`,
		} {
			if !strings.Contains(string(load1.raw), want) {
				t.Errorf("load record lacks %s: %s", want, load1.raw)
			}
		}
		if !strings.Contains(string(upd1.raw), `"orderStatus":"SHIPPED"`) || !strings.Contains(string(upd1.raw), `"orderAmount":"12.55"`) {
			t.Errorf("update record does not carry the after image: %s", upd1.raw)
		}
		for _, s := range data {
			if s.rec.Data["orderId"] == 2.0 && s.rec.Metadata.TableName == "order" {
				if _, ok := s.rec.Data["shipToAddress"]; ok {
					t.Errorf("NULL column written: %s", s.raw)
				}
			}
		}
	})

	t.Run("records decode into the flat changes the handlers expect", func(t *testing.T) {
		for _, s := range data {
			c, err := cdc.Decode(s.raw)
			if err != nil {
				t.Fatalf("cdc.Decode: %v: %s", err, s.raw)
			}
			if c.Operation != s.rec.Metadata.Operation || c.RecordType != s.rec.Metadata.TableName {
				t.Errorf("decoded %s %s from %s", c.Operation, c.RecordType, s.raw)
			}
			if c.RecordType == order.TableOrder && c.OrderID == 1 && c.Operation == "load" {
				if c.OrderAmount.String() != "12.5" || *c.OrderDateTime != "2020-05-01 17:11:49.973" {
					t.Errorf("decoded amount %s, datetime %s", c.OrderAmount, *c.OrderDateTime)
				}
			}
		}
	})

	t.Run("records are keyed by orderId and carry the key as partition-key-value", func(t *testing.T) {
		for _, s := range data {
			want := fmt.Sprint(s.rec.Data["orderId"])
			if s.key != want || s.rec.Metadata.PartitionKeyValue != want || s.rec.Metadata.PartitionKeyType != cdc.PartitionKeyAttribute {
				t.Errorf("key %q, metadata %+v for orderId %s", s.key, s.rec.Metadata, want)
			}
		}
	})

	t.Run("a transaction's records share its id and number its records", func(t *testing.T) {
		var ids []string
		var recIDs []int64
		for _, s := range data {
			m := s.rec.Metadata
			if m.Operation == "load" {
				if m.TransactionID != nil || m.CommitTimestamp != "" {
					t.Errorf("load record has transaction details: %+v", m)
				}
				continue
			}
			if m.CommitTimestamp == "" || m.StreamPosition == "" || m.TransactionRecordID == nil {
				t.Errorf("change record lacks transaction details: %s", s.raw)
				continue
			}
			ids = append(ids, string(m.TransactionID))
			recIDs = append(recIDs, *m.TransactionRecordID)
		}
		if len(ids) != 5 || ids[0] != ids[1] || ids[1] != ids[2] || ids[2] == ids[3] || ids[3] == ids[4] {
			t.Errorf("transaction ids %v, want three records of one transaction then two single ones", ids)
		}
		if !slices.Equal(recIDs, []int64{1, 2, 3, 1, 1}) {
			t.Errorf("transaction-record-ids %v, want [1 2 3 1 1]", recIDs)
		}
	})

	t.Run("stats count what was written", func(t *testing.T) {
		st := r.Stats()
		if st.Loaded != 5 || st.Inserted != 3 || st.Updated != 1 || st.Deleted != 1 || st.Control != 3 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestReaderOptions(t *testing.T) {
	e := setup(t, 1)
	e.exec(t, "INSERT INTO orders.`order` (orderId, orderAmount) VALUES (9, 0.10)")
	r := e.start(t, func(c *binlog.Config) {
		c.DecimalsAsNumbers = true
		c.IncludeNullAndEmpty = true
		c.OmitControlDetails = true
	})
	if err := r.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := e.readAll(t)
	t.Run("decimals can be written as JSON numbers and nulls as null", func(t *testing.T) {
		d := dataRecords(all)
		if len(d) != 1 || !strings.Contains(string(d[0].raw), `"orderAmount":0.10,`) || !strings.Contains(string(d[0].raw), `"orderStatus":null`) {
			t.Errorf("records %v", d)
		}
	})
	t.Run("control details can be left out", func(t *testing.T) {
		for _, s := range all {
			if s.rec.Metadata.RecordType == cdc.RecordTypeControl && s.rec.Control != nil {
				t.Errorf("control record has details: %s", s.raw)
			}
		}
	})
}

// TestReaderConcurrentHistory commits many concurrent transactions and
// checks that replaying the stream, key by key in stream order, rebuilds
// exactly the source tables: nothing lost, nothing reordered within a key.
func TestReaderConcurrentHistory(t *testing.T) {
	e := setup(t, 3)
	var versions sync.Map // version -> GTID
	r := e.start(t, func(c *binlog.Config) {
		c.OnRecord = func(em binlog.Emitted) { versions.Store(em.Version, em.GTID) }
	})
	const workers, txPerWorker, orders = 8, 40, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range txPerWorker {
				id := rng.IntN(orders) + 1
				item := rng.IntN(4) + 1
				stmts := []string{
					fmt.Sprintf("INSERT INTO orders.`order` (orderId, orderAmount, orderStatus) VALUES (%d, %d.%02d, 'NEW') "+
						"ON DUPLICATE KEY UPDATE orderAmount = VALUES(orderAmount), orderStatus = 'CHANGED'", id, rng.IntN(1000), rng.IntN(100)),
				}
				switch rng.IntN(3) {
				case 0:
					stmts = append(stmts, fmt.Sprintf("INSERT INTO orders.order_item VALUES (%d, %d, %d, 1.00, 'NEW') "+
						"ON DUPLICATE KEY UPDATE itemQuantity = itemQuantity + 1", id, item, rng.IntN(9)+1))
				case 1:
					stmts = append(stmts, fmt.Sprintf("DELETE FROM orders.order_item WHERE orderId = %d AND itemId = %d", id, item))
				}
				tx, err := e.db.Begin()
				if err == nil {
					for _, q := range stmts {
						if _, err = tx.Exec(q); err != nil {
							break
						}
					}
					if err == nil {
						err = tx.Commit()
					} else {
						_ = tx.Rollback()
					}
				}
				// Deadlocks between workers are part of the game; the
				// loser's transaction simply never happened.
				if err != nil && !strings.Contains(err.Error(), "Deadlock") {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := r.WaitShipped(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Replay: per shard in sequence order (the order consumers see).
	all := e.readAll(t)
	state := map[string]string{}
	lastVersion := map[string]string{}
	for _, s := range all {
		if s.rec.Metadata.RecordType != cdc.RecordTypeData {
			continue
		}
		c, err := cdc.Decode(s.raw)
		if err != nil {
			t.Fatal(err)
		}
		ts := s.rec.Metadata.Timestamp
		if prev := lastVersion[s.key]; prev >= ts {
			t.Fatalf("key %s: record %s after %s in the stream", s.key, ts, prev)
		}
		lastVersion[s.key] = ts
		if _, ok := versions.Load(c.Version); !ok {
			t.Fatalf("version %d was not reported to OnRecord", c.Version)
		}
		rowKey := fmt.Sprintf("%s/%d", c.RecordType, c.OrderID)
		if c.ItemID != nil {
			rowKey += fmt.Sprintf("/%d", *c.ItemID)
		}
		if c.IsDelete() {
			delete(state, rowKey)
			continue
		}
		if c.RecordType == order.TableOrder {
			state[rowKey] = fmt.Sprintf("%s %s", c.OrderAmount, *c.OrderStatus)
		} else {
			state[rowKey] = fmt.Sprintf("%d", *c.ItemQuantity)
		}
	}

	want := map[string]string{}
	rows, err := e.db.Query("SELECT orderId, orderAmount, orderStatus FROM orders.`order`")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		var amount, status string
		if err := rows.Scan(&id, &amount, &status); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("order/%d", id)] = fmt.Sprintf("%s %s", order.MustDecimal(amount), status)
	}
	rows, err = e.db.Query("SELECT orderId, itemId, itemQuantity FROM orders.order_item")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, item, qty int
		if err := rows.Scan(&id, &item, &qty); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("order_item/%d/%d", id, item)] = fmt.Sprint(qty)
	}
	if len(want) == 0 {
		t.Fatal("the history left no rows; the test proves nothing")
	}
	for k, v := range want {
		if state[k] != v {
			t.Errorf("%s: replay %q, source %q", k, state[k], v)
		}
	}
	for k, v := range state {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: replay has %q, source has no row", k, v)
		}
	}
}

func TestReaderKeyChangesAndTruncate(t *testing.T) {
	e := setup(t, 2)
	e.exec(t,
		insertOrder1, insertOrder2,
		"INSERT INTO orders.order_item VALUES (1, 101, 2, 5.25, 'PENDING'), (1, 102, 1, 2.00, 'PENDING')",
	)
	r := e.start(t, nil)
	e.exec(t, "UPDATE orders.order_item SET itemId = 105 WHERE orderId = 1 AND itemId = 101")
	e.exec(t, "UPDATE orders.order_item SET orderId = 2 WHERE orderId = 1 AND itemId = 102")
	e.exec(t, "UPDATE orders.order_item SET itemQuantity = 3 WHERE orderId = 2 AND itemId = 102")
	if _, err := e.db.Exec("TRUNCATE TABLE orders.order_item"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitShipped(ctx); err != nil {
		t.Fatal(err)
	}
	all := e.readAll(t)

	t.Run("key-changing updates carry the old key in the before image and decode to it", func(t *testing.T) {
		var got []string
		for _, s := range dataRecords(all) {
			if s.rec.Metadata.Operation != "update" {
				continue
			}
			c, err := cdc.Decode(s.raw)
			if err != nil {
				t.Fatalf("cdc.Decode: %v", err)
			}
			old := "same key"
			if c.OldOrderID != nil {
				old = fmt.Sprintf("from %d/%d", *c.OldOrderID, *c.OldItemID)
			}
			got = append(got, fmt.Sprintf("%d/%d %s, key %s, before image %v", c.OrderID, *c.ItemID, old, s.key, s.rec.BeforeImage))
		}
		want := []string{
			"1/105 from 1/101, key 1, before image map[itemId:101 orderId:1]",
			"2/102 from 1/102, key 2, before image map[itemId:102 orderId:1]",
			"2/102 same key, key 2, before image map[itemId:102 orderId:2]",
		}
		if !slices.Equal(got, want) {
			t.Errorf("updates\n got %v\nwant %v", got, want)
		}
	})

	t.Run("a truncate of a captured table is one control record that the decoder refuses", func(t *testing.T) {
		var truncates []streamed
		for _, s := range all {
			if s.rec.Metadata.Operation == "truncate-table" {
				truncates = append(truncates, s)
			}
		}
		if len(truncates) != 1 {
			t.Fatalf("%d truncate records, want 1", len(truncates))
		}
		s := truncates[0]
		m := s.rec.Metadata
		if m.RecordType != cdc.RecordTypeControl || m.SchemaName != "orders" || m.TableName != "order_item" ||
			m.PartitionKeyType != cdc.PartitionKeyTaskID || s.key != "ETLLOCALTASK.orders.order_item" {
			t.Errorf("truncate record %s under key %s", s.raw, s.key)
		}
		if _, err := cdc.Decode(s.raw); !errors.Is(err, cdc.ErrTruncate) {
			t.Errorf("cdc.Decode = %v, want ErrTruncate", err)
		}
		for _, d := range dataRecords(all) {
			if d.rec.Metadata.Operation == "delete" {
				t.Errorf("the truncate produced a row delete: %s", d.raw)
			}
		}
	})
}
