package join

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
)

var products = refdata.Catalogue{
	7: {ProductID: 7, ProductName: "Handcrafted Marble Kettle", ProductPrice: order.MustDecimal("472.59")},
	8: {ProductID: 8, ProductName: "Durable Walnut Speaker", ProductPrice: order.MustDecimal("7.04")},
}

// ord is an order change of order 1 at version v; status tells images apart.
func ord(op string, v int64, status string) order.Change {
	c := order.Change{RecordType: order.TableOrder, Operation: op, OrderID: 1, Version: v,
		SourceTimestamp: fmt.Sprintf("2024-05-01 10:00:00.%06d", v)}
	if op != order.OpDelete {
		amount := order.MustDecimal("120.50")
		dt, name := "2024-05-01 09:59:58.123", "Ada"
		c.OrderAmount, c.OrderStatus, c.OrderDateTime, c.ShipToName = &amount, &status, &dt, &name
	}
	return c
}

// item is an item change of order 1 at version v; qty tells images apart.
func item(op string, itemID, v, qty int64) order.Change {
	c := order.Change{RecordType: order.TableOrderItem, Operation: op, OrderID: 1, ItemID: &itemID,
		Version: v, SourceTimestamp: fmt.Sprintf("2024-05-01 10:00:00.%06d", v)}
	if op != order.OpDelete {
		amount, status := order.MustDecimal("9.99"), "OPEN"
		c.ItemQuantity, c.ItemAmount, c.ItemStatus = &qty, &amount, &status
	}
	return c
}

// summary renders an emitted row with what tells its images apart.
func summary(e order.Enriched) string {
	if e.IsDelete() {
		return fmt.Sprintf("delete 1/%d v%d", e.ItemID, e.Version)
	}
	product := "none"
	if e.ProductName != nil {
		product = *e.ProductName
	}
	return fmt.Sprintf("upsert 1/%d v%d order=%s qty=%d product=%s", e.ItemID, e.Version, *e.OrderStatus, *e.ItemQuantity, product)
}

func apply(t *testing.T, p *Partition, changes []order.Change) []string {
	t.Helper()
	var out []order.Enriched
	for i := range changes {
		var err error
		if out, err = p.Apply(out, &changes[i], products); err != nil {
			t.Fatalf("Apply(change %d): %v", i, err)
		}
	}
	got := []string{}
	for _, e := range out {
		got = append(got, summary(e))
	}
	return got
}

func TestApplyEmitsTheRowsEachOrderingCompletes(t *testing.T) {
	tests := []struct {
		name    string
		changes []order.Change
		want    []string
	}{
		{
			name:    "an item that arrives before its order waits and is emitted with the order",
			changes: []order.Change{item(order.OpInsert, 7, 1, 2), ord(order.OpInsert, 2, "NEW")},
			want:    []string{"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle"},
		},
		{
			name:    "an item that arrives after its order is emitted at once",
			changes: []order.Change{ord(order.OpLoad, 1, "NEW"), item(order.OpLoad, 7, 2, 2)},
			want:    []string{"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle"},
		},
		{
			name: "an order update re-emits every known item with the new order image",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 2), item(order.OpInsert, 8, 3, 1),
				ord(order.OpUpdate, 4, "SHIPPED"),
			},
			want: []string{
				"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"upsert 1/8 v3 order=NEW qty=1 product=Durable Walnut Speaker",
				"upsert 1/7 v4 order=SHIPPED qty=2 product=Handcrafted Marble Kettle",
				"upsert 1/8 v4 order=SHIPPED qty=1 product=Durable Walnut Speaker",
			},
		},
		{
			name: "an item update re-emits only that item",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 2), item(order.OpInsert, 8, 3, 1),
				item(order.OpUpdate, 8, 4, 5),
			},
			want: []string{
				"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"upsert 1/8 v3 order=NEW qty=1 product=Durable Walnut Speaker",
				"upsert 1/8 v4 order=NEW qty=5 product=Durable Walnut Speaker",
			},
		},
		{
			name: "an item update keeps the later order version when the order changed last",
			changes: []order.Change{
				item(order.OpInsert, 7, 1, 2), ord(order.OpInsert, 5, "NEW"), item(order.OpUpdate, 7, 5, 3),
			},
			want: []string{
				"upsert 1/7 v5 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"upsert 1/7 v5 order=NEW qty=3 product=Handcrafted Marble Kettle",
			},
		},
		{
			name: "an item delete emits a delete for its row only",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 2), item(order.OpInsert, 8, 3, 1),
				item(order.OpDelete, 7, 4, 0),
			},
			want: []string{
				"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"upsert 1/8 v3 order=NEW qty=1 product=Durable Walnut Speaker",
				"delete 1/7 v4",
			},
		},
		{
			name:    "an item delete is emitted even when its order is unknown",
			changes: []order.Change{item(order.OpDelete, 7, 3, 0)},
			want:    []string{"delete 1/7 v3"},
		},
		{
			name: "an order delete emits deletes for its live items and none for deleted ones",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 2), item(order.OpInsert, 8, 3, 1),
				item(order.OpDelete, 8, 4, 0), ord(order.OpDelete, 5, ""),
			},
			want: []string{
				"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"upsert 1/8 v3 order=NEW qty=1 product=Durable Walnut Speaker",
				"delete 1/8 v4",
				"delete 1/7 v5",
			},
		},
		{
			name: "an order inserted again after its delete re-joins the items that stayed",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 2),
				ord(order.OpDelete, 3, ""), ord(order.OpInsert, 4, "REOPENED"),
			},
			want: []string{
				"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"delete 1/7 v3",
				"upsert 1/7 v4 order=REOPENED qty=2 product=Handcrafted Marble Kettle",
			},
		},
		{
			name: "an item of a deleted order waits until the order exists again",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), ord(order.OpDelete, 2, ""), item(order.OpInsert, 7, 3, 2),
				ord(order.OpInsert, 4, "REOPENED"),
			},
			want: []string{"upsert 1/7 v4 order=REOPENED qty=2 product=Handcrafted Marble Kettle"},
		},
		{
			name:    "an item whose product is missing from the reference data joins with no product",
			changes: []order.Change{ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 99, 2, 4)},
			want:    []string{"upsert 1/99 v2 order=NEW qty=4 product=none"},
		},
		{
			name: "a change older than the stored row is ignored",
			changes: []order.Change{
				ord(order.OpInsert, 5, "SHIPPED"), item(order.OpInsert, 7, 6, 2),
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 9), item(order.OpDelete, 7, 3, 0),
			},
			want: []string{"upsert 1/7 v6 order=SHIPPED qty=2 product=Handcrafted Marble Kettle"},
		},
		{
			name:    "an order delete with no known items emits nothing",
			changes: []order.Change{ord(order.OpInsert, 1, "NEW"), ord(order.OpDelete, 2, "")},
			want:    []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := apply(t, NewPartition(1, true), tt.changes)
			if !slices.Equal(got, tt.want) {
				t.Errorf("emitted\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestApplyOfARedeliveredBatch(t *testing.T) {
	batch := []order.Change{
		ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 1), item(order.OpUpdate, 7, 3, 2),
		item(order.OpInsert, 8, 4, 1), item(order.OpDelete, 8, 5, 0), ord(order.OpUpdate, 6, "PAID"),
	}
	tests := []struct {
		name      string
		redeliver []order.Change
		want      []string
	}{
		{
			name:      "the same batch delivered twice re-emits only the latest images",
			redeliver: batch,
			want: []string{
				"upsert 1/7 v6 order=PAID qty=2 product=Handcrafted Marble Kettle",
				"delete 1/8 v6",
				"upsert 1/7 v6 order=PAID qty=2 product=Handcrafted Marble Kettle",
			},
		},
		{
			name:      "a retry from the middle of the batch re-emits only the latest images",
			redeliver: batch[3:],
			want: []string{
				"delete 1/8 v6",
				"upsert 1/7 v6 order=PAID qty=2 product=Handcrafted Marble Kettle",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPartition(1, true)
			apply(t, p, batch)
			if got := apply(t, p, tt.redeliver); !slices.Equal(got, tt.want) {
				t.Errorf("emitted\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestApplyReportsWhatItChanged(t *testing.T) {
	p := NewPartition(1, true)
	apply(t, p, []order.Change{ord(order.OpInsert, 5, "NEW"), item(order.OpInsert, 8, 5, 1), item(order.OpInsert, 7, 5, 1)})

	t.Run("changed rows are reported for writing", func(t *testing.T) {
		if !p.OrderChanged() || !slices.Equal(p.ChangedItems(), []int64{7, 8}) {
			t.Errorf("OrderChanged=%v ChangedItems=%v, want true [7 8]", p.OrderChanged(), p.ChangedItems())
		}
	})
	t.Run("stale changes leave a loaded partition unchanged", func(t *testing.T) {
		q := &Partition{OrderID: 1, Order: p.Order, Items: p.Items, AllItems: true}
		apply(t, q, []order.Change{ord(order.OpUpdate, 4, "OLD"), item(order.OpDelete, 7, 4, 0)})
		if q.OrderChanged() || len(q.ChangedItems()) != 0 {
			t.Errorf("OrderChanged=%v ChangedItems=%v, want false []", q.OrderChanged(), q.ChangedItems())
		}
	})
}

func TestJoinedRowCarriesEveryColumn(t *testing.T) {
	p := NewPartition(1, true)
	o := ord(order.OpInsert, 1714557600123456, "NEW")
	o.SourceTimestamp = "2024-05-01 10:00:00.123456"
	zip, city := "98101", "Seattle"
	o.ShipToZip, o.ShipToCity = &zip, &city
	i := item(order.OpInsert, 7, 1714557600000001, 3)
	out, err := p.Apply(nil, &o, products)
	if err == nil {
		out, err = p.Apply(out, &i, products)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(out)
	want := `[{"event_ts":"2024-05-01 10:00:00.123","orderId":1,"orderAmount":120.5,"orderStatus":"NEW",` +
		`"orderDateTime":"2024-05-01 09:59:58.123","shipToName":"Ada","shipToAddress":null,"shipToCity":"Seattle",` +
		`"shipToState":null,"shipToZip":"98101","itemId":7,"itemAmount":9.99,"itemQuantity":3,"itemStatus":"OPEN",` +
		`"productName":"Handcrafted Marble Kettle","productPrice":472.59,"op":"upsert","version":1714557600123456}]`
	if string(got) != want {
		t.Errorf("joined row\n got %s\nwant %s", got, want)
	}
}

func TestApplyRejects(t *testing.T) {
	noItem := item(order.OpInsert, 7, 1, 1)
	noItem.ItemID = nil
	badOp := ord("truncate", 1, "NEW")
	badType := ord(order.OpInsert, 1, "NEW")
	badType.RecordType = "customer"
	other := ord(order.OpInsert, 1, "NEW")
	other.OrderID = 2
	orderChange := ord(order.OpUpdate, 1, "NEW")
	tests := []struct {
		name     string
		p        *Partition
		c        order.Change
		wantErr  error
		wantText string
	}{
		{"an item change without itemId is invalid", NewPartition(1, true), noItem, ErrInvalidChange, "without itemId"},
		{"an unknown operation is invalid", NewPartition(1, true), badOp, ErrInvalidChange, `"truncate"`},
		{"an unknown record type is invalid", NewPartition(1, true), badType, ErrInvalidChange, `"customer"`},
		{"a change of another order is refused", NewPartition(1, true), other, nil, "order 2 applied to partition of order 1"},
		{"an order change needs every item of its order", NewPartition(1, false), orderChange, ErrIncomplete, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.p.Apply(nil, &tt.c, products)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("Apply error = %v, want %v containing %q", err, tt.wantErr, tt.wantText)
			}
			if len(out) != 0 || tt.p.OrderChanged() || len(tt.p.ChangedItems()) != 0 {
				t.Errorf("a refused change emitted %d rows or changed the partition", len(out))
			}
		})
	}
}

// rekeyed is an item update of order 1 at version v whose before image had
// the key (oldOrder, oldItem).
func rekeyed(itemID, v, qty, oldOrder, oldItem int64) order.Change {
	c := item(order.OpUpdate, itemID, v, qty)
	c.OldOrderID, c.OldItemID = &oldOrder, &oldItem
	return c
}

func TestApplyKeyChanges(t *testing.T) {
	movedOut := rekeyed(7, 3, 2, 1, 7)
	movedOut.OrderID = 2 // the item left order 1 for order 2
	tests := []struct {
		name    string
		changes []order.Change
		want    []string
	}{
		{
			name:    "an itemId change deletes the old row and upserts the new one at the update's version",
			changes: []order.Change{ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 2), rekeyed(8, 3, 2, 1, 7)},
			want: []string{
				"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"delete 1/7 v3",
				"upsert 1/8 v3 order=NEW qty=2 product=Durable Walnut Speaker",
			},
		},
		{
			name: "after an itemId change an order update re-emits only the new row",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 2), rekeyed(8, 3, 2, 1, 7), ord(order.OpUpdate, 4, "SHIPPED"),
			},
			want: []string{
				"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"delete 1/7 v3",
				"upsert 1/8 v3 order=NEW qty=2 product=Durable Walnut Speaker",
				"upsert 1/8 v4 order=SHIPPED qty=2 product=Durable Walnut Speaker",
			},
		},
		{
			name:    "an item moved in from another order is only upserted here",
			changes: []order.Change{ord(order.OpInsert, 1, "NEW"), rekeyed(7, 3, 2, 2, 7)},
			want:    []string{"upsert 1/7 v3 order=NEW qty=2 product=Handcrafted Marble Kettle"},
		},
		{
			name: "the delete an item leaves behind when it moves out removes it from its old order",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 2, 2), movedOut.OldKeyDelete(), ord(order.OpUpdate, 4, "SHIPPED"),
			},
			want: []string{
				"upsert 1/7 v2 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"delete 1/7 v3",
			},
		},
		{
			name: "a key change older than the old key's row leaves that row alone",
			changes: []order.Change{
				ord(order.OpInsert, 1, "NEW"), item(order.OpInsert, 7, 5, 2), rekeyed(8, 3, 2, 1, 7),
			},
			want: []string{
				"upsert 1/7 v5 order=NEW qty=2 product=Handcrafted Marble Kettle",
				"upsert 1/8 v3 order=NEW qty=2 product=Durable Walnut Speaker",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := apply(t, NewPartition(1, true), tc.changes)
			if !slices.Equal(got, tc.want) {
				t.Errorf("emitted\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}

	t.Run("applying an itemId change reads both item rows", func(t *testing.T) {
		c := rekeyed(8, 3, 2, 1, 7)
		if got := ItemsRead(&c); !slices.Equal(got, []int64{8, 7}) {
			t.Errorf("ItemsRead = %v, want [8 7]", got)
		}
		moved := rekeyed(7, 3, 2, 2, 7)
		if got := ItemsRead(&moved); !slices.Equal(got, []int64{7}) {
			t.Errorf("ItemsRead of a move into the order = %v, want [7]", got)
		}
	})
}

// at places a change at a position of shard 0 of the stream.
func at(c order.Change, seq string) order.Change {
	c.Position = "shardId-000000000000:" + seq
	return c
}

// A BatchWriteItem is not atomic: an attempt that fails can leave part of
// a later batch's state stored. The redelivered records must not join an
// image with one the state holds from later in the stream.
func TestApplyAgainstStateAheadOfTheRedeliveredChange(t *testing.T) {
	p := NewPartition(1, true)
	apply(t, p, []order.Change{at(ord(order.OpInsert, 1, "NEW"), "10"), at(item(order.OpInsert, 7, 2, 1), "11")})
	// The failed attempt of [order PAID @12, order SHIPPED @13, item 7
	// qty 2 @14] stored only the item row.
	ahead := at(item(order.OpUpdate, 7, 6, 2), "14")
	p.Items[7] = &ItemRow{ItemID: 7, Version: 6, Position: ahead.Position, Quantity: ahead.ItemQuantity, Amount: ahead.ItemAmount, Status: ahead.ItemStatus}

	// Order PAID and item qty 2 never coexisted: by the time the item
	// had qty 2 the order was SHIPPED.
	if got := apply(t, p, []order.Change{at(ord(order.OpUpdate, 3, "PAID"), "12")}); len(got) != 0 {
		t.Errorf("redelivered order change joined the item row stored ahead of it: %v", got)
	}
	if got := apply(t, p, []order.Change{at(ord(order.OpUpdate, 5, "SHIPPED"), "13")}); len(got) != 0 {
		t.Errorf("redelivered order change joined the item row stored ahead of it: %v", got)
	}
	want := []string{"upsert 1/7 v6 order=SHIPPED qty=2 product=Handcrafted Marble Kettle"}
	if got := apply(t, p, []order.Change{ahead}); !slices.Equal(got, want) {
		t.Errorf("the change that wrote the row emitted %v, want %v", got, want)
	}

	// Deletes are emitted whatever the other side's position: the row the
	// change removes must go.
	q := NewPartition(1, true)
	apply(t, q, []order.Change{at(ord(order.OpInsert, 1, "NEW"), "10"), at(item(order.OpInsert, 7, 2, 1), "11")})
	q.Items[7] = &ItemRow{ItemID: 7, Version: 6, Position: ahead.Position, Quantity: ahead.ItemQuantity, Amount: ahead.ItemAmount, Status: ahead.ItemStatus}
	if got, want := apply(t, q, []order.Change{at(ord(order.OpDelete, 3, ""), "12")}), []string{"delete 1/7 v6"}; !slices.Equal(got, want) {
		t.Errorf("order delete emitted %v, want %v", got, want)
	}
}

// Records that arrive with older versions than stored rows (re-sent rows,
// replays, put-back deletes) still join: positions order them, not
// versions.
func TestApplyJoinsALaterRecordWithAnOlderVersion(t *testing.T) {
	p := NewPartition(1, true)
	apply(t, p, []order.Change{at(item(order.OpInsert, 7, 9, 1), "10")}) // the order's state expired
	want := []string{"upsert 1/7 v9 order=NEW qty=1 product=Handcrafted Marble Kettle"}
	if got := apply(t, p, []order.Change{at(ord(order.OpLoad, 5, "NEW"), "11")}); !slices.Equal(got, want) {
		t.Errorf("re-sent order emitted %v, want %v", got, want)
	}
}

func TestAhead(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"shardId-000000000000:11", "shardId-000000000000:10", true},
		{"shardId-000000000000:10", "shardId-000000000000:10", false},
		{"shardId-000000000000:10", "shardId-000000000000:9", true},
		{"shardId-000000000000:9", "shardId-000000000000:10", false},
		{"shardId-000000000001:11", "shardId-000000000000:10", false}, // resharded: not ordered
		{"", "shardId-000000000000:10", false},                        // written by older code
		{"shardId-000000000000:11", "", false},
	} {
		if got := Ahead(tt.a, tt.b); got != tt.want {
			t.Errorf("Ahead(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
